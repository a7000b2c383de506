//! Scalar values of the configuration: durations, addresses, traffic selectors, address
//! pools and secrets, in swanctl.conf's notation.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

use crate::crypto::Secret;

/// A duration as written in the file: `"30s"`, `"5m"`, `"4h"`, `"1d"`, or a bare number of
/// seconds (string or integer), as swanctl.conf takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDuration(pub(crate) String);

impl<'de> serde::Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawDuration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\", \"4h\" or \"1d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `"30s"`, `"5m"`, `"4h"`, `"1d"`, `"1.5h"` or `"90"` (seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => {
            return Err(format!(
                "`{s}` has unit `{unit}`; use s, m, h or d (e.g. \"30s\", \"4h\")"
            ));
        }
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. \"30s\", \"5m\", \"4h\", \"1d\")"))?;
    if !value.is_finite() || value < 0.0 || value * scale > 10.0 * 365.0 * 86_400.0 {
        return Err(format!("`{s}` is out of range (0 to 10 years)"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

/// A configured address: one address, a prefix, a range, or `%any`
/// (`local_addrs`/`remote_addrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrSpec {
    /// `%any` (also `%any4`, `%any6`, `0.0.0.0`, `::`): any address of the family, or both.
    Any(Option<AddressFamily>),
    /// One address.
    Addr(IpAddr),
    /// A prefix: `198.18.0.0/16`.
    Prefix(IpAddr, u8),
    /// An inclusive range: `198.18.1.10-198.18.1.20`.
    Range(IpAddr, IpAddr),
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl AddrSpec {
    /// Whether `addr` falls in this specification.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match *self {
            AddrSpec::Any(None) => true,
            AddrSpec::Any(Some(AddressFamily::V4)) => addr.is_ipv4(),
            AddrSpec::Any(Some(AddressFamily::V6)) => addr.is_ipv6(),
            AddrSpec::Addr(a) => a == addr,
            AddrSpec::Prefix(net, len) => prefix_contains(net, len, addr),
            AddrSpec::Range(from, to) => in_range(from, to, addr),
        }
    }
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn prefix_contains(net: IpAddr, len: u8, addr: IpAddr) -> bool {
    if net.is_ipv4() != addr.is_ipv4() {
        return false;
    }
    let bits = if net.is_ipv4() { 32 } else { 128 };
    let shift = bits - u32::from(len);
    shift >= 128 || (to_u128(net) >> shift) == (to_u128(addr) >> shift)
}

fn in_range(from: IpAddr, to: IpAddr, addr: IpAddr) -> bool {
    from.is_ipv4() == addr.is_ipv4() && (to_u128(from)..=to_u128(to)).contains(&to_u128(addr))
}

fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a prefix"))?;
    let addr: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = l
        .trim()
        .parse()
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| format!("`{l}` is not a prefix length (0 to {max})"))?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let host_bits = bits - u32::from(len);
    let host_mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    if to_u128(addr) & host_mask != 0 {
        return Err(format!("`{s}` has host bits set"));
    }
    Ok((addr, len))
}

fn parse_range(s: &str) -> Result<(IpAddr, IpAddr), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("`{s}` is not a range"))?;
    let from: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not an IP address"))?;
    let to: IpAddr = b
        .trim()
        .parse()
        .map_err(|_| format!("`{b}` is not an IP address"))?;
    if from.is_ipv4() != to.is_ipv4() {
        return Err(format!("`{s}` mixes IPv4 and IPv6"));
    }
    if to_u128(from) > to_u128(to) {
        return Err(format!("`{s}` ends before it starts"));
    }
    Ok((from, to))
}

/// Parses one `local_addrs`/`remote_addrs` entry. Host names are refused: the daemon does not
/// resolve names.
pub(crate) fn parse_addr_spec(s: &str) -> Result<AddrSpec, String> {
    let s = s.trim();
    match s {
        "%any" => return Ok(AddrSpec::Any(None)),
        "%any4" | "0.0.0.0" => return Ok(AddrSpec::Any(Some(AddressFamily::V4))),
        "%any6" | "::" => return Ok(AddrSpec::Any(Some(AddressFamily::V6))),
        _ => {}
    }
    if s.contains('/') {
        let (a, l) = parse_prefix(s)?;
        return Ok(AddrSpec::Prefix(a, l));
    }
    if let Ok(a) = s.parse() {
        return Ok(AddrSpec::Addr(a));
    }
    if s.contains('-') && s.split('-').all(|p| p.trim().parse::<IpAddr>().is_ok()) {
        let (a, b) = parse_range(s)?;
        return Ok(AddrSpec::Range(a, b));
    }
    Err(format!(
        "`{s}` is not an IP address, prefix, range or %any (host names are not resolved)"
    ))
}

/// A traffic selector as configured (`local_ts`, `remote_ts`), with an optional
/// `[protocol/port]` restriction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsSpec {
    /// The addresses.
    pub addrs: TsAddrs,
    /// IP protocol number; 0 for any.
    pub protocol: u8,
    /// Inclusive port range; `(0, 65535)` for any.
    pub ports: (u16, u16),
}

/// The address part of a [`TsSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsAddrs {
    /// `dynamic`: the tunnel's address (or the virtual IP assigned to it).
    Dynamic,
    /// A prefix: `10.101.0.0/24`, or one address as a full-length prefix.
    Prefix(IpAddr, u8),
    /// An inclusive range: `10.0.0.1-10.0.0.9`.
    Range(IpAddr, IpAddr),
}

fn parse_protocol(p: &str) -> Result<u8, String> {
    Ok(match p {
        "" | "%any" | "any" => 0,
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "ipv6-icmp" | "icmpv6" => 58,
        "sctp" => 132,
        n => n
            .parse()
            .map_err(|_| format!("`{n}` is not a protocol name (tcp, udp, icmp, ...) or number"))?,
    })
}

fn parse_ports(p: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{p}` is not a port or port range (e.g. 443 or 1024-2047)");
    Ok(match p {
        "" | "%any" | "any" => (0, u16::MAX),
        _ => match p.split_once('-') {
            Some((a, b)) => {
                let a: u16 = a.parse().map_err(|_| bad())?;
                let b: u16 = b.parse().map_err(|_| bad())?;
                if a > b {
                    return Err(bad());
                }
                (a, b)
            }
            None => {
                let a: u16 = p.parse().map_err(|_| bad())?;
                (a, a)
            }
        },
    })
}

/// Parses a traffic selector: `dynamic`, `10.0.0.0/24`, `10.0.0.1`, `10.0.0.1-10.0.0.9`, any
/// of them followed by `[tcp/443]`, `[udp]`, `[/53]`.
pub(crate) fn parse_ts(s: &str) -> Result<TsSpec, String> {
    let s = s.trim();
    let (addr, restriction) = match s.split_once('[') {
        Some((a, r)) => {
            let r = r
                .strip_suffix(']')
                .ok_or_else(|| format!("`{s}` lacks its closing `]`"))?;
            (a.trim(), Some(r))
        }
        None => (s, None),
    };
    let addrs = if addr == "dynamic" {
        TsAddrs::Dynamic
    } else if addr.contains('/') {
        let (a, l) = parse_prefix(addr)?;
        TsAddrs::Prefix(a, l)
    } else if let Ok(a) = addr.parse::<IpAddr>() {
        TsAddrs::Prefix(a, if a.is_ipv4() { 32 } else { 128 })
    } else if addr.contains('-') {
        let (a, b) = parse_range(addr)?;
        TsAddrs::Range(a, b)
    } else {
        return Err(format!(
            "`{addr}` is not `dynamic`, a prefix, an address or a range"
        ));
    };
    let (protocol, ports) = match restriction {
        None => (0, (0, u16::MAX)),
        Some(r) => {
            let (p, port) = r.split_once('/').unwrap_or((r, ""));
            let protocol = parse_protocol(p.trim())?;
            let ports = parse_ports(port.trim())?;
            if ports != (0, u16::MAX) && !matches!(protocol, 6 | 17 | 132 | 0) {
                return Err(format!("`{s}`: ports need tcp, udp or sctp"));
            }
            (protocol, ports)
        }
    };
    Ok(TsSpec {
        addrs,
        protocol,
        ports,
    })
}

/// Parses a pool's `addrs`: a prefix (network and broadcast addresses of an IPv4 prefix are
/// left out, as strongSwan does) or a range. Returns the first and last address to hand out.
pub(crate) fn parse_pool(s: &str) -> Result<(IpAddr, IpAddr), String> {
    let s = s.trim();
    if s.contains('/') {
        let (net, len) = parse_prefix(s)?;
        let bits: u32 = if net.is_ipv4() { 32 } else { 128 };
        let host_bits = bits - u32::from(len);
        let size_minus_one = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let first = to_u128(net);
        let last = first + size_minus_one;
        let (first, last) = if net.is_ipv4() && host_bits >= 2 {
            (first + 1, last - 1)
        } else {
            (first, last)
        };
        let back = |v: u128| -> IpAddr {
            if net.is_ipv4() {
                IpAddr::V4((v as u32).into())
            } else {
                IpAddr::V6(v.into())
            }
        };
        Ok((back(first), back(last)))
    } else {
        parse_range(s)
    }
}

/// A secret value that never echoes itself in a parse error.
pub(crate) struct RawSecretValue(pub(crate) String);

impl<'de> serde::Deserialize<'de> for RawSecretValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawSecretValue, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawSecretValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecretValue, E> {
                Ok(RawSecretValue(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawSecretValue, E> {
                Ok(RawSecretValue(v))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecretValue, E> {
                Err(E::custom("must be a quoted string"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecretValue, E> {
                Err(E::custom("must be a quoted string"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecretValue, E> {
                Err(E::custom("must be a quoted string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecretValue, E> {
                Err(E::custom("must be a quoted string"))
            }
        }
        d.deserialize_string(V)
    }
}

impl Drop for RawSecretValue {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut n = 0;
    let s = s.trim_end_matches('=');
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((acc >> n) as u8);
        }
    }
    Some(out)
}

/// Decodes a secret as swanctl.conf does: `0x…` is hex, `0s…` is Base64, anything else the
/// string's bytes. Errors never contain the value.
pub(crate) fn decode_secret(s: &str) -> Result<Secret, String> {
    let bytes = if let Some(hex) = s.strip_prefix("0x") {
        if !hex.len().is_multiple_of(2) {
            return Err("hex secret (0x...) has an odd number of digits".into());
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or("hex secret (0x...) has a non-hex digit")?
    } else if let Some(b64) = s.strip_prefix("0s") {
        base64_decode(b64).ok_or("Base64 secret (0s...) is not valid Base64")?
    } else {
        s.as_bytes().to_vec()
    };
    if bytes.is_empty() {
        return Err("secret is empty".into());
    }
    Ok(Secret::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("4h").unwrap(), Duration::from_secs(14_400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["", "2x", "h", "-1s", "1e30d", "NaNs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_decode() {
        assert_eq!(decode_secret("0x0aff").unwrap().expose(), [10, 255]);
        assert_eq!(decode_secret("0sAQID").unwrap().expose(), [1, 2, 3]);
        assert_eq!(decode_secret("abc").unwrap().expose(), b"abc");
        assert!(decode_secret("0x0").is_err());
        assert!(decode_secret("").is_err());
    }

    #[test]
    fn pools_skip_network_and_broadcast() {
        assert_eq!(
            parse_pool("10.200.0.0/24").unwrap(),
            (
                "10.200.0.1".parse().unwrap(),
                "10.200.0.254".parse().unwrap()
            )
        );
    }
}
