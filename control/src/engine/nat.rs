//! NAT detection ([RFC 7296 § 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23)) and
//! stateless cookies ([§ 2.6](https://www.rfc-editor.org/rfc/rfc7296#section-2.6)).

use std::net::{IpAddr, SocketAddr};

use aws_lc_rs::{digest, hmac};

use super::path::AddressPair;
use crate::wire::NotifyType;
use crate::wire::payload::{Notify, Payload};

/// NAT_DETECTION_*_IP data: "SHA-1(SPIi | SPIr | IP | Port)", the IP address in network
/// order, 4 octets for IPv4 and 16 for IPv6.
pub fn nat_detection_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; 20] {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP for a message sent on `pair`
/// ([RFC 7296 § 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23); in
/// UPDATE_SA_ADDRESSES and its answer, [RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)).
pub fn nat_detection_payloads(spi_i: u64, spi_r: u64, pair: AddressPair) -> [Payload; 2] {
    [
        Payload::Notify(Notify::new(
            NotifyType::NAT_DETECTION_SOURCE_IP,
            nat_detection_hash(spi_i, spi_r, pair.local).to_vec(),
        )),
        Payload::Notify(Notify::new(
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            nat_detection_hash(spi_i, spi_r, pair.remote).to_vec(),
        )),
    ]
}

/// What the peer's NAT_DETECTION_* notifications in `payloads`, received on `pair`, say:
/// (a NAT in front of us, a NAT in front of the peer); `None` if they are not both there.
/// The peer may send several NAT_DETECTION_SOURCE_IP (one per address it might use); one
/// that matches the address it came from means no NAT in front of it.
pub fn nat_found(
    spi_i: u64,
    spi_r: u64,
    pair: AddressPair,
    payloads: &[Payload],
) -> Option<(bool, bool)> {
    let notifies = || {
        payloads.iter().filter_map(|p| match p {
            Payload::Notify(n) => Some(n),
            _ => None,
        })
    };
    let mut src = notifies()
        .filter(|n| n.ty == NotifyType::NAT_DETECTION_SOURCE_IP)
        .peekable();
    src.peek()?;
    let want_src = nat_detection_hash(spi_i, spi_r, pair.remote);
    let nat_remote = !src.any(|n| n.data == want_src);
    let dst = notifies().find(|n| n.ty == NotifyType::NAT_DETECTION_DESTINATION_IP)?;
    let nat_local = dst.data != nat_detection_hash(spi_i, spi_r, pair.local);
    Some((nat_local, nat_remote))
}

/// The COOKIE a responder hands out
/// ([RFC 7296 § 2.6](https://www.rfc-editor.org/rfc/rfc7296#section-2.6)):
/// `Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)`; we use HMAC-SHA-256
/// keyed with the secret, truncated to 16 octets, after a one-octet secret version.
pub fn cookie(version: u8, secret: &[u8; 32], ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(ni);
    match ip {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&spi_i.to_be_bytes());
    let tag = ctx.sign();
    let mut out = Vec::with_capacity(17);
    out.push(version);
    out.extend_from_slice(&tag.as_ref()[..16]);
    out
}
