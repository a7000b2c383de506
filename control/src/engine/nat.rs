//! NAT detection ([RFC 7296 § 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23)) and
//! stateless cookies ([§ 2.6](https://www.rfc-editor.org/rfc/rfc7296#section-2.6)).

use std::net::{IpAddr, SocketAddr};

use aws_lc_rs::{digest, hmac};

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
