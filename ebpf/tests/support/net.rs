//! Sockets for sending crafted traffic: a raw IP socket for ESP (protocol 50) and an AF_PACKET
//! socket for whole Ethernet frames.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A socket that sends, made in the calling thread's network namespace.
pub struct Sender {
    fd: OwnedFd,
    kind: Kind,
}

enum Kind {
    RawIpv4,
    Packet { ifindex: u32 },
}

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket has no memory preconditions; the result is checked.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly created descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Sender {
    /// A raw IPv4 socket for IP protocol `proto` (the kernel writes the IP header).
    pub fn raw_ipv4(proto: u8) -> io::Result<Sender> {
        Ok(Sender {
            fd: socket(libc::AF_INET, libc::SOCK_RAW, libc::c_int::from(proto))?,
            kind: Kind::RawIpv4,
        })
    }

    /// An AF_PACKET socket that sends whole frames out of interface `ifindex`.
    pub fn packet(ifindex: u32) -> io::Result<Sender> {
        Ok(Sender {
            fd: socket(libc::AF_PACKET, libc::SOCK_RAW, 0)?,
            kind: Kind::Packet { ifindex },
        })
    }

    /// Sends `payload` to `dst` (raw IPv4 sockets).
    pub fn send_ip(&self, dst: Ipv4Addr, payload: &[u8]) -> io::Result<()> {
        assert!(matches!(self.kind, Kind::RawIpv4));
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(dst.octets()),
            },
            sin_zero: [0; 8],
        };
        self.send_to(payload, &addr)
    }

    /// Sends the Ethernet frame `frame` as it is (AF_PACKET sockets).
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<()> {
        let Kind::Packet { ifindex } = self.kind else {
            panic!("send_frame on a raw IP socket");
        };
        let mut addr_bytes = [0u8; 8];
        addr_bytes[..6].copy_from_slice(&frame[..6]);
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: 0,
            sll_ifindex: ifindex as i32,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: addr_bytes,
        };
        self.send_to(frame, &addr)
    }

    fn send_to<A>(&self, bytes: &[u8], addr: &A) -> io::Result<()> {
        // SAFETY: bytes and addr are valid for the lengths passed; the kernel only reads them.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (addr as *const A).cast(),
                size_of::<A>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != bytes.len() {
            return Err(io::Error::other(format!(
                "sent {n} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }
}

/// The MAC address of `dev` in namespace `ns`.
pub fn mac_of(ns: &roamgate_lab::Netns, dev: &str) -> [u8; 6] {
    ns.mac(dev).unwrap_or_else(|e| panic!("{e}"))
}
