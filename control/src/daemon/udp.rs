//! UDP sockets for IKE on ports 500 and 4500 that know which local address a datagram arrived
//! on and send from a chosen local address.
//!
//! A multihomed gateway must answer each request from the address it was sent to, and MOBIKE
//! (RFC 4555 § 3.5) sends path probes from every local address: a socket bound to the wildcard
//! address learns the destination of each datagram from `IP_PKTINFO` / `IPV6_RECVPKTINFO` and
//! picks the source of each datagram it sends with the same control message. IPv4 and IPv6
//! get separate sockets (`IPV6_V6ONLY`), so no address is ever seen in its v4-mapped form.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A datagram's addresses as [`IkeSocket::recv`] reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The local address and port it was sent to.
    pub local: SocketAddr,
    /// The sender.
    pub remote: SocketAddr,
    /// Its length in the caller's buffer.
    pub len: usize,
}

/// One non-blocking UDP socket bound to a port on the wildcard (or a given) address of one
/// family.
#[derive(Debug)]
pub struct IkeSocket {
    fd: OwnedFd,
    bound: SocketAddr,
}

/// Room for one `in6_pktinfo` control message (the larger of the two families).
const CMSG_SPACE: usize = 64;

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_SPACE]);

impl IkeSocket {
    /// Opens a socket bound to `addr` (for example `0.0.0.0:500` or `[::]:4500`).
    pub fn bind(addr: SocketAddr) -> io::Result<IkeSocket> {
        let family = match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                family,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::IPPROTO_UDP,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        match addr {
            SocketAddr::V4(_) => setsockopt(&fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?,
            SocketAddr::V6(_) => {
                setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
                setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
            }
        }
        let (storage, len) = sockaddr_from(addr);
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes for this family.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&storage as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let bound = local_addr(&fd)?;
        Ok(IkeSocket { fd, bound })
    }

    /// The address the socket is bound to (the wildcard address and the port).
    pub fn bound(&self) -> SocketAddr {
        self.bound
    }

    /// Receives one datagram into `buf`; `Ok(None)` when nothing is waiting. A datagram longer
    /// than `buf` is reported with `len == buf.len() + 1` so the caller can count it as
    /// oversized rather than parse a truncated copy.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut from: libc::sockaddr_storage = unsafe { zeroed() };
        let mut cmsg = CmsgBuf([0; CMSG_SPACE]);
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr; the fields that matter are set below.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        msg.msg_controllen = CMSG_SPACE;
        // SAFETY: every pointer in `msg` refers to a live buffer of the stated length.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(err),
            };
        }
        let len = if msg.msg_flags & libc::MSG_TRUNC != 0 {
            buf.len() + 1
        } else {
            n as usize
        };
        let remote = sockaddr_to(&from).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "datagram without a source address",
            )
        })?;
        let local_ip = pktinfo_destination(&msg).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "datagram without its destination address (no pktinfo)",
            )
        })?;
        Ok(Some(Received {
            local: SocketAddr::new(local_ip, self.bound.port()),
            remote,
            len,
        }))
    }

    /// Sends `data` to `remote` from local address `local` (of this socket's family; the
    /// unspecified address lets the kernel choose).
    pub fn send(&self, local: IpAddr, remote: SocketAddr, data: &[u8]) -> io::Result<()> {
        let (to, to_len) = sockaddr_from(remote);
        let mut cmsg = CmsgBuf([0; CMSG_SPACE]);
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: all-zero is a valid msghdr; the fields that matter are set below.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&to as *const libc::sockaddr_storage as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = to_len;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !local.is_unspecified() {
            msg.msg_control = cmsg.0.as_mut_ptr().cast();
            msg.msg_controllen = CMSG_SPACE;
            set_pktinfo_source(&mut msg, local)?;
        }
        // SAFETY: every pointer in `msg` refers to a live buffer of the stated length.
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsRawFd for IkeSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn setsockopt(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` has room for `len` bytes.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    sockaddr_to(&storage)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))
}

fn sockaddr_from(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            (storage, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe {
                (&mut storage as *mut libc::sockaddr_storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            (storage, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

fn sockaddr_to(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn pktinfo_destination(msg: &libc::msghdr) -> Option<IpAddr> {
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/NXTHDR stay within msg_controllen.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points into the control buffer.
        let hdr = unsafe { &*cmsg };
        match (hdr.cmsg_level, hdr.cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                // SAFETY: the kernel wrote an in_pktinfo as this message's data; it may be
                // unaligned, so it is read unaligned.
                let info =
                    unsafe { (libc::CMSG_DATA(cmsg) as *const libc::in_pktinfo).read_unaligned() };
                return Some(IpAddr::V4(Ipv4Addr::from(
                    info.ipi_addr.s_addr.to_ne_bytes(),
                )));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                // SAFETY: as above, for in6_pktinfo.
                let info =
                    unsafe { (libc::CMSG_DATA(cmsg) as *const libc::in6_pktinfo).read_unaligned() };
                return Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            _ => {}
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}

fn set_pktinfo_source(msg: &mut libc::msghdr, local: IpAddr) -> io::Result<()> {
    // SAFETY: msg_control points at CMSG_SPACE aligned bytes, enough for one in6_pktinfo.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    if cmsg.is_null() {
        return Err(io::Error::other("no room for the pktinfo control message"));
    }
    match local {
        IpAddr::V4(a) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            // SAFETY: CMSG_LEN/CMSG_SPACE of an in_pktinfo fit in the buffer (checked by the
            // assertion in the tests); the data pointer is inside it.
            unsafe {
                (*cmsg).cmsg_level = libc::IPPROTO_IP;
                (*cmsg).cmsg_type = libc::IP_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize;
                (libc::CMSG_DATA(cmsg) as *mut libc::in_pktinfo).write_unaligned(info);
                msg.msg_controllen =
                    libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize;
            }
        }
        IpAddr::V6(a) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                ipi6_ifindex: 0,
            };
            // SAFETY: as above, for in6_pktinfo.
            unsafe {
                (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
                (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize;
                (libc::CMSG_DATA(cmsg) as *mut libc::in6_pktinfo).write_unaligned(info);
                msg.msg_controllen =
                    libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Receives one datagram on loopback, failing after 5 s.
    fn recv_within(socket: &IkeSocket, buf: &mut [u8]) -> Received {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Some(r) = socket.recv(buf).unwrap() {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no datagram arrived on loopback within 5 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn control_buffer_fits_both_pktinfo_messages() {
        // SAFETY: CMSG_SPACE is a pure size computation.
        let (v4, v6) = unsafe {
            (
                libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize,
                libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize,
            )
        };
        assert!(v4 <= CMSG_SPACE && v6 <= CMSG_SPACE, "{v4} {v6}");
    }

    #[test]
    fn loopback_round_trip_reports_both_addresses() {
        for any in ["127.0.0.1:0", "[::1]:0"] {
            let a = IkeSocket::bind(any.parse().unwrap()).unwrap();
            let b = IkeSocket::bind(any.parse().unwrap()).unwrap();
            let b_addr = b.bound();
            a.send(b_addr.ip(), b_addr, b"ike").unwrap();
            let mut buf = [0u8; 16];
            let got = recv_within(&b, &mut buf);
            assert_eq!(&buf[..got.len], b"ike");
            assert_eq!(got.local, b_addr);
            assert_eq!(got.remote, a.bound());
        }
    }

    #[test]
    fn oversized_datagrams_are_flagged() {
        let a = IkeSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = IkeSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        a.send(IpAddr::V4(Ipv4Addr::UNSPECIFIED), b.bound(), &[7u8; 100])
            .unwrap();
        let mut buf = [0u8; 10];
        let got = recv_within(&b, &mut buf);
        assert_eq!(got.len, 11);
    }
}
