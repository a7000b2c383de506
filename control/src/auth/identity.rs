//! IKE identities ([RFC 7296 § 3.5](https://www.rfc-editor.org/rfc/rfc7296#section-3.5)):
//! strongSwan's string syntax, the IDi/IDr wire form, and matching a configured identity
//! (possibly with wildcards) against the one a peer sent.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::dn::{DistinguishedName, DnError};
use crate::wire::IdType;
use crate::wire::payload::Identification;

/// An IKE identity, or the `%any` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `%any`: matches every identity; never sent.
    Any,
    /// `ID_IPV4_ADDR`.
    Ipv4(Ipv4Addr),
    /// `ID_IPV6_ADDR`.
    Ipv6(Ipv6Addr),
    /// `ID_FQDN`: `gw.roamgate.test`; a leading `*` makes a suffix pattern (`*.roamgate.test`).
    Fqdn(String),
    /// `ID_RFC822_ADDR`: `rw@roamgate.test`; `*@roamgate.test` is a pattern.
    Rfc822(String),
    /// `ID_DER_ASN1_DN`: `C=CH, O=roamgate, CN=gw`; a value of `*` is a wildcard.
    Dn(DistinguishedName),
    /// `ID_KEY_ID`: opaque octets, written `@#` and hex.
    KeyId(Vec<u8>),
}

/// Why an identity string or IDi/IDr payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Empty string.
    #[error("empty identity")]
    Empty,
    /// A distinguished name that does not parse.
    #[error("invalid distinguished name: {0}")]
    Dn(#[from] DnError),
    /// A typed prefix (`ipv4:`) whose value does not fit it.
    #[error("invalid {kind} identity `{value}`")]
    Invalid {
        /// The type asked for.
        kind: &'static str,
        /// The value.
        value: String,
    },
    /// An IDi/IDr payload of a type we do not handle.
    #[error("unsupported identification type {0}")]
    UnsupportedType(u8),
    /// An IDi/IDr payload whose data does not fit its type.
    #[error("malformed identification data for type {0}")]
    Malformed(u8),
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_control())
}

impl Identity {
    /// Parses an identity the way strongSwan's `identification_create_from_string` does:
    ///
    /// - `%any` (also `%any6`, `0.0.0.0`, `::`): [`Identity::Any`];
    /// - an IPv4 or IPv6 address: `ID_IPV4_ADDR` / `ID_IPV6_ADDR`;
    /// - a string with `=`: a distinguished name (`C=CH, O=x, CN=y`);
    /// - `@#hex`: `ID_KEY_ID`; `@@name`: `ID_RFC822_ADDR`; `@name`: `ID_FQDN` (forced);
    /// - a string with `@`: `ID_RFC822_ADDR`; anything else: `ID_FQDN`;
    /// - typed prefixes force a type: `fqdn:`, `email:`/`rfc822:`/`userfqdn:`, `ipv4:`,
    ///   `ipv6:`, `asn1dn:`, `keyid:` (hex).
    pub fn parse(s: &str) -> Result<Identity, IdentityError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        if let Some((prefix, value)) = s.split_once(':') {
            let invalid = |kind| IdentityError::Invalid {
                kind,
                value: value.to_owned(),
            };
            match prefix {
                "fqdn" => {
                    return valid_name(value)
                        .then(|| Identity::Fqdn(value.to_owned()))
                        .ok_or_else(|| invalid("fqdn"));
                }
                "email" | "rfc822" | "userfqdn" => {
                    return valid_name(value)
                        .then(|| Identity::Rfc822(value.to_owned()))
                        .ok_or_else(|| invalid("rfc822"));
                }
                "ipv4" => {
                    return value
                        .parse()
                        .map(Identity::Ipv4)
                        .map_err(|_| invalid("ipv4"));
                }
                "ipv6" => {
                    return value
                        .parse()
                        .map(Identity::Ipv6)
                        .map_err(|_| invalid("ipv6"));
                }
                "asn1dn" => return Ok(Identity::Dn(DistinguishedName::parse(value)?)),
                "keyid" => {
                    return parse_hex(value.trim_start_matches('#'))
                        .map(Identity::KeyId)
                        .ok_or_else(|| invalid("keyid"));
                }
                _ => {}
            }
        }
        if matches!(s, "%any" | "%any6") {
            return Ok(Identity::Any);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(match ip {
                IpAddr::V4(a) if a.is_unspecified() => Identity::Any,
                IpAddr::V6(a) if a.is_unspecified() => Identity::Any,
                IpAddr::V4(a) => Identity::Ipv4(a),
                IpAddr::V6(a) => Identity::Ipv6(a),
            });
        }
        if let Some(hex) = s.strip_prefix("@#") {
            return parse_hex(hex)
                .map(Identity::KeyId)
                .ok_or_else(|| IdentityError::Invalid {
                    kind: "keyid",
                    value: hex.to_owned(),
                });
        }
        if let Some(name) = s.strip_prefix("@@") {
            return Ok(Identity::Rfc822(name.to_owned()));
        }
        if let Some(name) = s.strip_prefix('@') {
            return Ok(Identity::Fqdn(name.to_owned()));
        }
        if s.contains('=') {
            return Ok(Identity::Dn(DistinguishedName::parse(s)?));
        }
        if !valid_name(s) {
            return Err(IdentityError::Invalid {
                kind: "fqdn",
                value: s.escape_debug().to_string(),
            });
        }
        if s.contains('@') {
            Ok(Identity::Rfc822(s.to_owned()))
        } else {
            Ok(Identity::Fqdn(s.to_owned()))
        }
    }

    /// Decodes a received IDi/IDr payload.
    pub fn from_wire(id: &Identification) -> Result<Identity, IdentityError> {
        let malformed = || IdentityError::Malformed(id.ty.0);
        let text = || {
            std::str::from_utf8(&id.data)
                .ok()
                .filter(|s| valid_name(s))
                .map(str::to_owned)
                .ok_or_else(malformed)
        };
        Ok(match id.ty {
            IdType::IPV4_ADDR => Identity::Ipv4(
                <[u8; 4]>::try_from(&id.data[..])
                    .map_err(|_| malformed())?
                    .into(),
            ),
            IdType::IPV6_ADDR => Identity::Ipv6(
                <[u8; 16]>::try_from(&id.data[..])
                    .map_err(|_| malformed())?
                    .into(),
            ),
            IdType::FQDN => Identity::Fqdn(text()?),
            IdType::RFC822_ADDR => Identity::Rfc822(text()?),
            IdType::DER_ASN1_DN => {
                Identity::Dn(DistinguishedName::from_der(&id.data).map_err(|_| malformed())?)
            }
            IdType::KEY_ID if !id.data.is_empty() => Identity::KeyId(id.data.clone()),
            IdType::KEY_ID => return Err(malformed()),
            other => return Err(IdentityError::UnsupportedType(other.0)),
        })
    }

    /// The IDi/IDr payload for this identity; `None` for [`Identity::Any`], which cannot be
    /// sent.
    pub fn to_wire(&self) -> Option<Identification> {
        Some(match self {
            Identity::Any => return None,
            Identity::Ipv4(a) => Identification::ipv4(*a),
            Identity::Ipv6(a) => Identification::ipv6(*a),
            Identity::Fqdn(n) => Identification::fqdn(n),
            Identity::Rfc822(n) => Identification::rfc822(n),
            Identity::Dn(dn) => Identification {
                ty: IdType::DER_ASN1_DN,
                data: dn.to_der(),
            },
            Identity::KeyId(k) => Identification {
                ty: IdType::KEY_ID,
                data: k.clone(),
            },
        })
    }

    /// Whether this identity contains a wildcard (`%any`, a leading `*`, a `*` DN value), so
    /// that it can only be matched against, not sent.
    pub fn has_wildcard(&self) -> bool {
        match self {
            Identity::Any => true,
            Identity::Fqdn(n) | Identity::Rfc822(n) => n.starts_with('*'),
            Identity::Dn(dn) => dn.has_wildcard(),
            _ => false,
        }
    }

    /// Matches `peer` (what the peer sent) against `self` (a configured identity, possibly a
    /// pattern). Returns how good the match is, or `None`.
    pub fn matches(&self, peer: &Identity) -> Option<IdMatch> {
        match (self, peer) {
            (Identity::Any, _) => Some(IdMatch::Any),
            (Identity::Ipv4(a), Identity::Ipv4(b)) => (a == b).then_some(IdMatch::Exact),
            (Identity::Ipv6(a), Identity::Ipv6(b)) => (a == b).then_some(IdMatch::Exact),
            (Identity::Fqdn(p), Identity::Fqdn(n)) | (Identity::Rfc822(p), Identity::Rfc822(n)) => {
                match_string(p, n)
            }
            (Identity::Dn(p), Identity::Dn(n)) => n.match_pattern(p).map(|w| {
                if w == 0 {
                    IdMatch::Exact
                } else {
                    IdMatch::Wildcard
                }
            }),
            (Identity::KeyId(a), Identity::KeyId(b)) => (a == b).then_some(IdMatch::Exact),
            _ => None,
        }
    }
}

/// How well a configured identity matched a peer's (best first, as in strongSwan's
/// `id_match_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdMatch {
    /// Matched only because the configured identity is `%any`.
    Any,
    /// Matched a `*` pattern.
    Wildcard,
    /// Equal.
    Exact,
}

fn match_string(pattern: &str, name: &str) -> Option<IdMatch> {
    if pattern.eq_ignore_ascii_case(name) {
        return Some(IdMatch::Exact);
    }
    let suffix = pattern.strip_prefix('*')?;
    let n = name.len().checked_sub(suffix.len())?;
    (name.is_char_boundary(n) && name[n..].eq_ignore_ascii_case(suffix))
        .then_some(IdMatch::Wildcard)
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Any => f.write_str("%any"),
            Identity::Ipv4(a) => write!(f, "{a}"),
            Identity::Ipv6(a) => write!(f, "{a}"),
            Identity::Fqdn(n) | Identity::Rfc822(n) => write!(f, "{}", n.escape_debug()),
            Identity::Dn(dn) => write!(f, "{dn}"),
            Identity::KeyId(k) => {
                f.write_str("@#")?;
                k.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

impl std::str::FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Identity, IdentityError> {
        Identity::parse(s)
    }
}
