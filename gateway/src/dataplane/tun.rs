//! The exception path for traffic of the gateway itself: a TUN device, read and written
//! through io_uring.
//!
//! - Decapsulated packets addressed to one of the gateway's own addresses are written into
//!   the TUN device by the worker that decapsulated them: the kernel receives them as if they
//!   had arrived on the TUN interface. Each worker has its own ring and a fixed pool of
//!   buffers; a packet is one submission queue entry, and the entries of a batch are submitted
//!   with one system call.
//! - The kernel routes the protected remote prefixes into the TUN device (the gateway adds
//!   those routes, with the gateway's LAN address as preferred source), so what the gateway
//!   itself sends to the far side arrives here; one reader thread encapsulates it with the
//!   SA's current endpoint and hands the ESP packet back to the kernel through a raw socket
//!   (its outer source is one of our addresses, which the kernel would refuse as "received"
//!   on the TUN device).

use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use io_uring::{IoUring, opcode, types};
use roamgate_ebpf::{Endpoint, Prefix};

use super::Shared;
use super::exception::Exception;
use super::registry::selected;
use super::worker::Forward;
use crate::drop::{DropCounters, DropReason};
use crate::esp::{HEADROOM, SaPath, UdpPorts};
use crate::netlink::Netlink;

/// `TUNSETIFF` from `linux/if_tun.h`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
/// Buffer size of one packet.
const BUF: usize = 2048;
/// Room in front of a packet read from the TUN device, for the outer headers.
const READ_OFFSET: usize = 128;
/// The TUN device's MTU: room for the outer IPv6 header, UDP, ESP and padding inside 1500.
pub const TUN_MTU: u32 = 1400;

const _: () = assert!(READ_OFFSET >= HEADROOM);

/// The worker counter slot set of the TUN reader (the last worker index).
pub const TUN_COUNTER_SLOT: u32 = roamgate_ebpf::abi::WORKERS_MAX - 1;

/// An open TUN device (it disappears when the descriptor closes).
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
    ifindex: u32,
    forwarding: KernelForwarding,
}

/// Whether the kernel forwards packets received on the TUN device, per family (the
/// `forwarding` sysctls of the device, read when it is opened). Neighbour misses of
/// decapsulated packets go into the TUN device only for a family the kernel forwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelForwarding {
    /// `net.ipv4.conf.<tun>.forwarding`.
    pub v4: bool,
    /// `net.ipv6.conf.<tun>.forwarding`.
    pub v6: bool,
}

impl KernelForwarding {
    /// Reads the sysctls of device `name` in the calling thread's network namespace; a
    /// sysctl that cannot be read counts as off.
    fn read(name: &str) -> KernelForwarding {
        let on = |family: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/{family}/conf/{name}/forwarding"))
                .is_ok_and(|v| v.trim() == "1")
        };
        KernelForwarding {
            v4: on("ipv4"),
            v6: on("ipv6"),
        }
    }

    /// Whether packets to `dst` are forwarded.
    pub fn forwards(&self, dst: &IpAddr) -> bool {
        match dst {
            IpAddr::V4(_) => self.v4,
            IpAddr::V6(_) => self.v6,
        }
    }
}

fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    req
}

impl Tun {
    /// Creates TUN device `name` (no packet information header), sets its MTU to
    /// [`TUN_MTU`] and brings it up.
    pub fn open(name: &str) -> io::Result<Tun> {
        // SAFETY: a NUL-terminated literal path; the result is checked.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = ifreq_for(name);
        req.ifr_ifru.ifru_flags = IFF_TUN | IFF_NO_PI;
        // SAFETY: req is a valid ifreq for TUNSETIFF, which reads the name and flags.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: no memory preconditions; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor nothing else owns.
        let ctl = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = ifreq_for(name);
        req.ifr_ifru.ifru_mtu = TUN_MTU as libc::c_int;
        // SAFETY: req names the device and carries the MTU to set.
        if unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCSIFMTU, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req = ifreq_for(name);
        // SAFETY: req names the device; the kernel fills in its flags.
        if unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        // SAFETY: req names the device and carries the flags to set.
        if unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let c = std::ffi::CString::new(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: c is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        Ok(Tun {
            fd,
            name: name.to_string(),
            ifindex,
            forwarding: KernelForwarding::read(name),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether the kernel forwards what is written into the device, per family.
    pub fn forwarding(&self) -> KernelForwarding {
        self.forwarding
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One worker's writer into the TUN device: an io_uring and a fixed pool of buffers.
pub(crate) struct TunWriter {
    ring: IoUring,
    fd: RawFd,
    bufs: Vec<Box<[u8]>>,
    free: Vec<u32>,
    queued: u32,
    /// Writes the kernel refused (counted as `exception_failed`).
    pub(crate) failed: u64,
}

impl TunWriter {
    /// A writer with `slots` buffers for the TUN device `fd` (which must outlive it).
    pub(crate) fn new(fd: RawFd, slots: u32) -> io::Result<TunWriter> {
        Ok(TunWriter {
            ring: IoUring::new(slots.next_power_of_two())?,
            fd,
            bufs: (0..slots)
                .map(|_| vec![0u8; BUF].into_boxed_slice())
                .collect(),
            free: (0..slots).rev().collect(),
            queued: 0,
            failed: 0,
        })
    }

    fn reap(&mut self) {
        for cqe in self.ring.completion() {
            if cqe.result() < 0 {
                self.failed += 1;
            }
            self.free.push(cqe.user_data() as u32);
        }
    }

    /// Queues `packet` for writing; `false` if no buffer is free (or it is too long).
    pub(crate) fn push(&mut self, packet: &[u8]) -> bool {
        self.reap();
        if packet.len() > BUF {
            return false;
        }
        let Some(slot) = self.free.pop() else {
            return false;
        };
        let buf = &mut self.bufs[slot as usize];
        buf[..packet.len()].copy_from_slice(packet);
        let entry = opcode::Write::new(types::Fd(self.fd), buf.as_ptr(), packet.len() as u32)
            .build()
            .user_data(u64::from(slot));
        // SAFETY: the buffer is a heap allocation owned by self that is neither moved nor
        // touched until its completion is reaped (the slot is off the free list until then),
        // and the descriptor outlives the writer.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.free.push(slot);
            return false;
        }
        self.queued += 1;
        true
    }

    /// Submits what was queued (one system call for the batch).
    pub(crate) fn submit(&mut self) {
        if self.queued > 0 {
            if self.ring.submit().is_err() {
                self.failed += u64::from(self.queued);
            }
            self.queued = 0;
        }
    }
}

/// Adds or replaces the route of `prefix` into the TUN device (`ip route replace PREFIX dev
/// TUN src SRC`).
fn route_into(nl: &mut Netlink, tun: u32, prefix: &Prefix, src: Option<IpAddr>) -> io::Result<()> {
    nl.route_replace(prefix.addr(), prefix.len(), tun, src)
}

/// Reads what the kernel routes into the TUN device, encapsulates it and sends it, until the
/// gateway stops. Also keeps the routes of the protected remote prefixes pointing at the
/// device.
pub(crate) fn serve(tun: &Tun, shared: &Shared, lan: (Option<IpAddr>, Option<IpAddr>)) {
    let exception = match Exception::open() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("TUN reader: no raw socket: {e}");
            return;
        }
    };
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => {
            tracing::error!("TUN reader: no netlink socket: {e}");
            return;
        }
    };
    const SLOTS: u32 = 32;
    let Ok(mut ring) = IoUring::new(SLOTS) else {
        tracing::error!("TUN reader: io_uring unavailable");
        return;
    };
    let mut bufs: Vec<Box<[u8]>> = (0..SLOTS)
        .map(|_| vec![0u8; BUF].into_boxed_slice())
        .collect();
    let post = |ring: &mut IoUring, bufs: &mut [Box<[u8]>], slot: u32| {
        let b = &mut bufs[slot as usize][READ_OFFSET..];
        let entry = opcode::Read::new(types::Fd(tun.raw_fd()), b.as_mut_ptr(), b.len() as u32)
            .build()
            .user_data(u64::from(slot));
        // SAFETY: the buffer is owned by this function, neither moved nor touched until the
        // read completes (its slot is posted once at a time), and the device outlives it.
        let _ = unsafe { ring.submission().push(&entry) };
    };
    for slot in 0..SLOTS {
        post(&mut ring, &mut bufs, slot);
    }
    let mut drops = DropCounters::new();
    let mut sent = 0u64;
    let mut routed: HashSet<Prefix> = HashSet::new();
    let mut version = u64::MAX;
    let ts = types::Timespec::from(Duration::from_millis(20));
    let args = types::SubmitArgs::new().timespec(&ts);
    while !shared.stop.load(Ordering::Acquire) {
        // Routes for new protected prefixes.
        let v = shared.registry.version();
        if v != version {
            version = v;
            let snap = shared.registry.snapshot();
            for e in snap.outbound.values() {
                for p in &e.remote_ts {
                    if routed.contains(p) {
                        continue;
                    }
                    let src = if p.addr().is_ipv4() { lan.0 } else { lan.1 };
                    match route_into(&mut nl, tun.ifindex(), p, src) {
                        Ok(()) => {
                            routed.insert(*p);
                        }
                        Err(e) => tracing::warn!(prefix = %p, "route into {}: {e}", tun.name()),
                    }
                }
            }
        }
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e)
                if e.raw_os_error() == Some(libc::ETIME)
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::error!("TUN reader: io_uring: {e}");
                return;
            }
        }
        let done: Vec<(u32, i32)> = ring
            .completion()
            .map(|c| (c.user_data() as u32, c.result()))
            .collect();
        if done.is_empty() {
            continue;
        }
        let snap = shared.registry.snapshot();
        for (slot, n) in done {
            if n > 0 {
                let buf = &mut bufs[slot as usize];
                match encapsulate(shared, &snap, buf, n as usize) {
                    Ok((start, len)) => {
                        if exception.send(&buf[start..start + len]).is_ok() {
                            sent += 1;
                        } else {
                            drops.count(DropReason::ExceptionFailed);
                        }
                    }
                    Err(r) => drops.count(r),
                }
            }
            post(&mut ring, &mut bufs, slot);
        }
        for (reason, count) in drops.iter() {
            shared
                .counters
                .store(TUN_COUNTER_SLOT, reason as u32, count);
        }
        shared
            .counters
            .store(TUN_COUNTER_SLOT, Forward::FromTun.slot(), sent);
    }
}

/// Encapsulates the packet at `buf[READ_OFFSET..READ_OFFSET + len]` in place; returns where
/// the outer packet lies.
fn encapsulate(
    shared: &Shared,
    snap: &super::registry::SaSnapshot,
    buf: &mut [u8],
    len: usize,
) -> Result<(usize, usize), DropReason> {
    let (src, dst) = match buf[READ_OFFSET..READ_OFFSET + len].first().map(|b| b >> 4) {
        Some(4) => {
            let p = crate::wire::Ipv4Packet::new_checked(&buf[READ_OFFSET..READ_OFFSET + len])
                .map_err(|_| DropReason::BadInnerPacket)?;
            (IpAddr::V4(p.src()), IpAddr::V4(p.dst()))
        }
        Some(6) => {
            let p = crate::wire::Ipv6Packet::new_checked(&buf[READ_OFFSET..READ_OFFSET + len])
                .map_err(|_| DropReason::BadInnerPacket)?;
            (IpAddr::V6(p.src()), IpAddr::V6(p.dst()))
        }
        _ => return Err(DropReason::NotIp),
    };
    let entry = snap.outbound_for(dst).ok_or(DropReason::NoOutboundSa)?;
    if !selected(&entry.local_ts, src) {
        return Err(DropReason::TrafficSelector);
    }
    let endpoint = shared
        .endpoints
        .read(entry.slot)
        .as_ref()
        .and_then(Endpoint::from_record)
        .ok_or(DropReason::NoEndpoint)?;
    let path = SaPath::new(
        endpoint.local,
        endpoint.remote,
        endpoint.udp.map(|(src, dst)| UdpPorts { src, dst }),
    )
    .map_err(|_| DropReason::NoEndpoint)?;
    let e = entry
        .sa
        .encapsulate(&path, buf, READ_OFFSET, len)
        .map_err(|e| e.reason())?;
    Ok((e.start, e.len))
}
