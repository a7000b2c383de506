//! The raw-socket half of the exception path: packets the workers cannot send themselves (no
//! MAC for the next hop yet, or a next hop on an interface the gateway does not serve) that
//! cannot go into the TUN device ([`super::tun`]) go to the kernel here, which routes them,
//! resolves the neighbour and sends them. These are ESP packets the workers built (their
//! outer source is the gateway's own address, which the kernel refuses as received on the
//! TUN device) and decapsulated packets of a family the kernel does not forward. Raw IP
//! sockets with the header included (`IPPROTO_RAW`): one `sendto` per packet, off the fast
//! path.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Raw sockets for IPv4 and IPv6 packets, in the namespace of the thread that opened them.
#[derive(Debug)]
pub struct Exception {
    v4: OwnedFd,
    v6: OwnedFd,
}

fn raw_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: no memory preconditions; the result is checked.
    let raw = unsafe {
        libc::socket(
            family,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

impl Exception {
    /// Opens the sockets (needs `CAP_NET_RAW`).
    pub fn open() -> io::Result<Exception> {
        Ok(Exception {
            v4: raw_socket(libc::AF_INET)?,
            v6: raw_socket(libc::AF_INET6)?,
        })
    }

    /// Hands the IP packet `packet` to the kernel for sending.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let dst = match packet.first().map(|b| b >> 4) {
            Some(4) if packet.len() >= 20 => {
                IpAddr::from([packet[16], packet[17], packet[18], packet[19]])
            }
            Some(6) if packet.len() >= 40 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&packet[24..40]);
                IpAddr::from(a)
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not an IP packet",
                ));
            }
        };
        let rc = match dst {
            IpAddr::V4(a) => {
                // SAFETY: sockaddr_in is plain old data.
                let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                sa.sin_family = libc::AF_INET as u16;
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
                // SAFETY: packet and sa are valid for the lengths given.
                unsafe {
                    libc::sendto(
                        self.v4.as_raw_fd(),
                        packet.as_ptr().cast(),
                        packet.len(),
                        libc::MSG_DONTWAIT,
                        (&sa as *const libc::sockaddr_in).cast(),
                        size_of::<libc::sockaddr_in>() as u32,
                    )
                }
            }
            IpAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is plain old data.
                let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sa.sin6_family = libc::AF_INET6 as u16;
                sa.sin6_addr.s6_addr = a.octets();
                // SAFETY: packet and sa are valid for the lengths given.
                unsafe {
                    libc::sendto(
                        self.v6.as_raw_fd(),
                        packet.as_ptr().cast(),
                        packet.len(),
                        libc::MSG_DONTWAIT,
                        (&sa as *const libc::sockaddr_in6).cast(),
                        size_of::<libc::sockaddr_in6>() as u32,
                    )
                }
            }
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
