//! Below IP: AF_PACKET sockets bound to one interface of a lab namespace, for crafted frames
//! sent as they are and for every frame that passes, and a builder of Ethernet + IPv4 frames.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::netns::Netns;

fn set_option<T>(fd: BorrowedFd<'_>, level: i32, option: i32, value: &T, what: &str) -> Result<()> {
    // SAFETY: value is valid for reads of its size for the call; fd is an open descriptor.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (value as *const T).cast(),
            size_of::<T>() as u32,
        )
    };
    if rc != 0 {
        return Err(os_error(what));
    }
    Ok(())
}

/// Sets the receive buffer of `socket` (any kind) to `bytes`, above the system's limit if
/// need be (`SO_RCVBUFFORCE`, root only): a receiver that is not scheduled for a while on a
/// busy machine then keeps every datagram of a burst instead of dropping them.
pub fn force_recv_buffer(socket: BorrowedFd<'_>, bytes: usize) -> Result<()> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    set_option(
        socket,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &bytes,
        "SO_RCVBUFFORCE",
    )
}

/// `ETH_P_ALL`: a socket that receives every frame of its interface, both ways.
pub const ALL_FRAMES: u16 = libc::ETH_P_ALL as u16;
/// `ETH_P_IP`: a socket that receives the IPv4 frames of its interface.
pub const IPV4_FRAMES: u16 = libc::ETH_P_IP as u16;
/// Protocol 0: a socket that only sends.
pub const SEND_ONLY: u16 = 0;

/// An AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

fn os_error(what: &str) -> LabError {
    LabError::io(what.to_string(), io::Error::last_os_error())
}

impl PacketSocket {
    /// Opens a socket in `ns` bound to `dev`, receiving frames of `protocol` (an ethertype
    /// such as [`ALL_FRAMES`] or [`IPV4_FRAMES`]; [`SEND_ONLY`] for none).
    pub fn open(ns: &Netns, dev: &str, protocol: u16) -> Result<PacketSocket> {
        let ifindex = ns.ifindex(dev)?;
        let fd = ns.enter(|| {
            // SAFETY: no memory preconditions; the result is checked.
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    i32::from(protocol.to_be()),
                )
            };
            if raw < 0 {
                return Err(os_error(&format!("AF_PACKET socket in {}", ns.name())));
            }
            // SAFETY: raw is a fresh descriptor nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(raw) })
        })??;
        // SAFETY: sockaddr_ll is plain old data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the length given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(os_error(&format!("binding to {dev} in {}", ns.name())));
        }
        Ok(PacketSocket {
            fd,
            ifindex: ifindex as i32,
        })
    }

    fn set<T>(&self, level: i32, option: i32, value: &T, what: &str) -> Result<()> {
        set_option(self.fd.as_fd(), level, option, value, what)
    }

    /// Sends straight to the device, past its queueing discipline (`PACKET_QDISC_BYPASS`).
    pub fn bypass_qdisc(&self) -> Result<()> {
        let one: libc::c_int = 1;
        self.set(
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &one,
            "PACKET_QDISC_BYPASS",
        )
    }

    /// Makes [`PacketSocket::recv`] give up after `timeout`.
    pub fn set_recv_timeout(&self, timeout: Duration) -> Result<()> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        self.set(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO")
    }

    /// Sets the receive buffer to `bytes`, above the system's limit if need be, so that a
    /// recording keeps every frame of a burst.
    pub fn set_recv_buffer(&self, bytes: usize) -> Result<()> {
        force_recv_buffer(self.fd.as_fd(), bytes)
    }

    /// Sends one frame (Ethernet header included).
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: sockaddr_ll is plain old data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        // SAFETY: frame and sll are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != frame.len() as isize {
            return Err(os_error("sending a frame"));
        }
        Ok(())
    }

    /// Sends up to 64 frames with one system call; returns how many the device took.
    pub fn send_many(&self, frames: &[&[u8]]) -> usize {
        const MAX: usize = 64;
        let n = frames.len().min(MAX);
        // SAFETY: iovec is plain old data; zero is valid.
        let mut iovs: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
        // SAFETY: mmsghdr is plain old data; zero is valid.
        let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
        for ((iov, msg), frame) in iovs.iter_mut().zip(msgs.iter_mut()).zip(frames) {
            iov.iov_base = frame.as_ptr() as *mut libc::c_void;
            iov.iov_len = frame.len();
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs and the iovecs and frames they point to stay live and unchanged for
        // the call; the kernel only reads the frames.
        let sent = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        usize::try_from(sent).unwrap_or(0)
    }

    /// The next frame into `buf`: its length and whether the interface sent it (rather than
    /// received it); `None` after the receive timeout or on an error.
    pub fn recv(&self, buf: &mut [u8]) -> Option<(usize, bool)> {
        // SAFETY: sockaddr_ll is plain old data; zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: buf, sll and len are valid and writable for the lengths given.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        let n = usize::try_from(n).ok()?;
        Some((n, sll.sll_pkttype == libc::PACKET_OUTGOING))
    }

    /// The next frame the interface received (frames it sent are skipped).
    pub fn recv_incoming(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let (n, outgoing) = self.recv(buf)?;
            if !outgoing {
                return Some(n);
            }
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// `mac` as `ip` writes it (`02:00:5e:00:00:01`).
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum::<u32>();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame carrying an IPv4 packet from `src` to `dst` of protocol `proto` around
/// `payload` (TTL 64, header checksum filled in).
pub fn ipv4_frame(
    (dst_mac, src_mac): ([u8; 6], [u8; 6]),
    (src, dst): ([u8; 4], [u8; 4]),
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_of_a_header_with_its_checksum_is_zero() {
        let f = ipv4_frame(
            ([1; 6], [2; 6]),
            ([10, 0, 0, 1], [10, 0, 0, 2]),
            17,
            &[0; 9],
        );
        assert_eq!(internet_checksum(&f[14..34]), 0);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 29);
        assert_eq!(internet_checksum(&[0x45, 0x00, 0x00, 0x1c]), !0x451c);
    }
}
