//! Just enough rtnetlink ([RFC 3549]) to mirror the kernel's forwarding decision: the route to
//! an address (`RTM_GETROUTE`, as `ip route get` does: egress interface and gateway) and the
//! neighbour table (`RTM_GETNEIGH` dump: IP → MAC per interface), plus an interface's MAC and
//! MTU; the host's addresses and which of them can carry traffic, and notifications when
//! links, addresses or routes change ([`ChangeEvents`]: the gateway's address watcher and the
//! control daemon's both use them). Raw netlink over libc: a few fixed records, parsed with
//! bounds checks.
//!
//! [RFC 3549]: https://www.rfc-editor.org/rfc/rfc3549

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWROUTE: u16 = 24;
const RTA_PREFSRC: u16 = 7;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const RTM_GETROUTE: u16 = 26;
const RTM_GETNEIGH: u16 = 30;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// Neighbour states with a usable link-layer address (`NUD_REACHABLE | NUD_STALE | NUD_DELAY |
/// NUD_PROBE | NUD_PERMANENT | NUD_NOARP`).
const NUD_VALID: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80 | 0x40;

/// Where the kernel would send a packet to some destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The egress interface.
    pub ifindex: u32,
    /// The next hop: the route's gateway, or the destination itself when on-link.
    pub next_hop: IpAddr,
}

/// A neighbour entry with a link-layer address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// The interface.
    pub ifindex: u32,
    /// The neighbour's IP address.
    pub addr: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
}

/// A netlink route socket.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn family(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    }
}

fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn addr_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// The attributes after a fixed header: (type, payload) pairs, bounds-checked.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = b.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
        Some((kind, data))
    })
}

/// A route netlink socket (`NETLINK_ROUTE`) in the calling thread's network namespace, with
/// the socket `flags` given besides `SOCK_CLOEXEC`.
fn route_socket(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: no memory preconditions; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

impl Netlink {
    /// Opens a route netlink socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let fd = route_socket(0)?;
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: tv is a valid timeval for the call.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as u32,
            )
        };
        Ok(Netlink { fd, seq: 1 })
    }

    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(NLMSG_HDR + body.len());
        msg.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: sockaddr_nl is plain old data.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: msg and sa are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let dump = flags & NLM_F_DUMP != 0;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: buf is valid and writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut b = &buf[..n as usize];
            while b.len() >= NLMSG_HDR {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                let seq = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                if len < NLMSG_HDR || len > b.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let payload = &b[NLMSG_HDR..len];
                b = b.get(len.div_ceil(4) * 4..).unwrap_or(&[]);
                if seq != self.seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map_or(0, |e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]));
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => {
                        out.push(payload.to_vec());
                        if !dump {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }

    /// The route the kernel picks for `dst` from source `src` (`ip route get dst from src`),
    /// honouring policy rules.
    pub fn route_get(&mut self, dst: IpAddr, src: Option<IpAddr>) -> io::Result<Route> {
        let bits = if dst.is_ipv4() { 32u8 } else { 128 };
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let mut body = vec![
            family(dst),
            bits,
            if src.is_some() { bits } else { 0 },
            0,
            0,
            0,
            0,
            0,
        ];
        body.extend_from_slice(&0u32.to_ne_bytes());
        push_attr(&mut body, RTA_DST, &octets(dst));
        if let Some(src) = src {
            push_attr(&mut body, RTA_SRC, &octets(src));
        }
        let replies = self.request(RTM_GETROUTE, 0, &body)?;
        let reply = replies
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no route to {dst}")))?;
        let mut ifindex = 0;
        let mut gateway = None;
        for (kind, data) in attrs(reply.get(12..).unwrap_or(&[])) {
            match kind {
                RTA_OIF if data.len() == 4 => {
                    ifindex = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
                }
                RTA_GATEWAY => gateway = addr_from(data),
                _ => {}
            }
        }
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the route to {dst} has no egress interface"),
            ));
        }
        Ok(Route {
            ifindex,
            next_hop: gateway.unwrap_or(dst),
        })
    }

    /// Adds or replaces the route `dst/len dev oif [src prefsrc]` in the main table (`ip route
    /// replace`).
    pub fn route_replace(
        &mut self,
        dst: IpAddr,
        len: u8,
        oif: u32,
        prefsrc: Option<IpAddr>,
    ) -> io::Result<()> {
        let mut body = vec![
            family(dst),
            len,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_STATIC,
            RT_SCOPE_LINK,
            RTN_UNICAST,
        ];
        body.extend_from_slice(&0u32.to_ne_bytes());
        push_attr(&mut body, RTA_DST, &octets(dst));
        push_attr(&mut body, RTA_OIF, &oif.to_ne_bytes());
        if let Some(src) = prefsrc.filter(|s| s.is_ipv4() == dst.is_ipv4()) {
            push_attr(&mut body, RTA_PREFSRC, &octets(src));
        }
        self.request(
            RTM_NEWROUTE,
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            &body,
        )?;
        Ok(())
    }

    /// Every neighbour entry with a usable MAC address, IPv4 and IPv6.
    pub fn neighbours(&mut self) -> io::Result<Vec<Neighbour>> {
        // struct ndmsg: family, pad1, pad2, ifindex, state, flags, type.
        let body = [0u8; 12];
        let replies = self.request(RTM_GETNEIGH, NLM_F_DUMP, &body)?;
        let mut out = Vec::new();
        for r in replies {
            if r.len() < 12 {
                continue;
            }
            let ifindex = i32::from_ne_bytes([r[4], r[5], r[6], r[7]]);
            let state = u16::from_ne_bytes([r[8], r[9]]);
            if state & NUD_VALID == 0 || ifindex <= 0 {
                continue;
            }
            let mut addr = None;
            let mut mac = None;
            for (kind, data) in attrs(&r[12..]) {
                match kind {
                    NDA_DST => addr = addr_from(data),
                    NDA_LLADDR if data.len() == 6 => {
                        let mut m = [0u8; 6];
                        m.copy_from_slice(data);
                        mac = Some(m);
                    }
                    _ => {}
                }
            }
            if let (Some(addr), Some(mac)) = (addr, mac) {
                out.push(Neighbour {
                    ifindex: ifindex as u32,
                    addr,
                    mac,
                });
            }
        }
        Ok(out)
    }
}

/// The name of interface `ifindex`.
pub fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// The MAC address and MTU of interface `ifindex`.
pub fn link_info(ifindex: u32) -> io::Result<([u8; 6], u32)> {
    let name = ifname(ifindex).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("no interface {ifindex}"))
    })?;
    // SAFETY: no memory preconditions; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq naming the interface; the kernel fills ifru_hwaddr.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut mac = [0u8; 6];
    // SAFETY: SIOCGIFHWADDR filled the ifru_hwaddr member of the union.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    for (m, b) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *m = *b as u8;
    }
    // SAFETY: as above; the kernel fills ifru_mtu.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFMTU filled the ifru_mtu member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok((mac, mtu.max(0) as u32))
}

/// What a [`ChangeEvents`] socket hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Addresses added or removed (`RTMGRP_IPV4_IFADDR`, `RTMGRP_IPV6_IFADDR`).
    Addresses,
    /// Links up, down, carrier lost or back (`RTMGRP_LINK`).
    Links,
    /// Routes added or removed (`RTMGRP_IPV4_ROUTE`, `RTMGRP_IPV6_ROUTE`).
    Routes,
}

impl Change {
    fn groups(self) -> u32 {
        let g = match self {
            Change::Addresses => libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR,
            Change::Links => libc::RTMGRP_LINK,
            Change::Routes => libc::RTMGRP_IPV4_ROUTE | libc::RTMGRP_IPV6_ROUTE,
        };
        g as u32
    }
}

/// A route netlink socket subscribed to some kinds of [`Change`]: it only says that something
/// changed; the caller re-reads. Its descriptor can be polled with others ([`AsRawFd`]).
#[derive(Debug)]
pub struct ChangeEvents {
    fd: OwnedFd,
}

impl AsRawFd for ChangeEvents {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl ChangeEvents {
    /// Subscribes to `changes`, in the calling thread's network namespace.
    pub fn open(changes: &[Change]) -> io::Result<ChangeEvents> {
        let fd = route_socket(libc::SOCK_NONBLOCK)?;
        // SAFETY: sockaddr_nl is plain old data; zero is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = changes.iter().fold(0, |g, c| g | c.groups());
        // SAFETY: sa is a valid sockaddr_nl of the length given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ChangeEvents { fd })
    }

    /// Waits up to `timeout` for notifications and drains them; returns whether any came (an
    /// overrun of the socket's buffer counts as one: changes were lost, so re-read).
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: pfd is one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            return false;
        }
        self.drain()
    }

    /// Reads every pending notification without waiting; returns whether there was any (an
    /// overrun of the socket's buffer counts as one: changes were lost, so re-read).
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        loop {
            // SAFETY: buf is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                any = true;
                continue;
            }
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOBUFS) {
                any = true;
                continue;
            }
            return any;
        }
    }
}

/// The IP addresses of interface `name` (`getifaddrs`), in the calling thread's namespace.
pub fn addresses(name: &str) -> Vec<IpAddr> {
    interface_addresses()
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, a)| a)
        .collect()
}

/// Every IP address of every interface of the calling thread's namespace, with the
/// interface's name: one `getifaddrs` call.
pub fn interface_addresses() -> Vec<(String, IpAddr)> {
    walk_addresses(|_| true)
}

/// The IP addresses that can carry traffic now, with their interface's name: those of the
/// interfaces that are up and have carrier (`IFF_UP` and `IFF_RUNNING`). An interface whose
/// cable is pulled keeps its addresses but loses `IFF_RUNNING`.
pub fn usable_addresses() -> Vec<(String, IpAddr)> {
    let want = (libc::IFF_UP | libc::IFF_RUNNING) as u32;
    walk_addresses(|flags| flags & want == want)
}

/// The addresses of the interfaces whose flags pass `keep`.
fn walk_addresses(keep: impl Fn(u32) -> bool) -> Vec<(String, IpAddr)> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: head is a valid out-pointer; the list is freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() || !keep(ifa.ifa_flags) {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        let addr = if family == libc::AF_INET {
            // SAFETY: the family is AF_INET, so this is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            IpAddr::V4(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()))
        } else if family == libc::AF_INET6 {
            // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
            let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
            IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
        } else {
            continue;
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        out.push((name.to_string_lossy().into_owned(), addr));
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_parsed_with_bounds() {
        let mut b = Vec::new();
        push_attr(&mut b, RTA_OIF, &7u32.to_ne_bytes());
        push_attr(&mut b, RTA_GATEWAY, &[10, 0, 0, 1]);
        push_attr(&mut b, 9, &[1, 2, 3]);
        let got: Vec<_> = attrs(&b).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], (RTA_GATEWAY, &[10u8, 0, 0, 1][..]));
        // A length beyond the buffer ends the walk instead of reading past it.
        let mut bad = b.clone();
        bad[0] = 200;
        assert_eq!(attrs(&bad).count(), 0);
        for cut in 0..b.len() {
            let _ = attrs(&b[..cut]).count();
        }
    }

    #[test]
    fn loopback_routes_and_has_a_link() {
        let mut nl = Netlink::open().unwrap();
        let r = nl.route_get("127.0.0.1".parse().unwrap(), None).unwrap();
        assert_eq!(r.ifindex, 1);
        assert_eq!(ifname(1).as_deref(), Some("lo"));
        assert!(addresses("lo").contains(&"127.0.0.1".parse().unwrap()));
        assert!(usable_addresses().contains(&("lo".into(), "127.0.0.1".parse().unwrap())));
        let (_, mtu) = link_info(1).unwrap();
        assert!(mtu >= 1500);
        nl.neighbours().unwrap();
    }
}
