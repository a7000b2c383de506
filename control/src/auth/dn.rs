//! X.500 Distinguished Names ([RFC 5280 § 4.1.2.4](https://www.rfc-editor.org/rfc/rfc5280#section-4.1.2.4)):
//! parsed from DER (certificates, `ID_DER_ASN1_DN` identities) and from strongSwan's string
//! form (`C=CH, O=roamgate, CN=gw.roamgate.test`), written back as DER, compared.
//!
//! Comparison follows strongSwan's: the same attribute types in the same order, values equal
//! ignoring ASCII case and the ASN.1 string type; in a pattern, a value of `*` matches any value
//! of its attribute type.

use std::fmt;

use super::der::{self, DerError, DerReader, tag};

/// One attribute of a relative distinguished name (`CN=gw.roamgate.test`).
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Contents octets of the attribute type's OBJECT IDENTIFIER.
    oid: Vec<u8>,
    /// The ASN.1 string type of the value.
    string_tag: u8,
    /// The value's contents octets, as encoded.
    raw: Vec<u8>,
    /// The value as text (for comparison and display).
    text: String,
}

impl Attribute {
    /// The attribute's short name (`CN`) or, for an unknown type, its dotted OID.
    pub fn name(&self) -> String {
        ATTRIBUTE_NAMES
            .iter()
            .find(|(_, dotted, _)| der::oid_from_dotted(dotted).as_deref() == Some(&self.oid[..]))
            .map(|(name, _, _)| (*name).to_owned())
            .or_else(|| der::oid_to_dotted(&self.oid))
            .unwrap_or_else(|| "?".to_owned())
    }

    /// The value as text.
    pub fn value(&self) -> &str {
        &self.text
    }

    fn equals(&self, other: &Attribute) -> bool {
        self.oid == other.oid && self.text.eq_ignore_ascii_case(&other.text)
    }
}

/// A Distinguished Name: a sequence of relative distinguished names, each a set of attributes.
#[derive(Debug, Clone)]
pub struct DistinguishedName {
    rdns: Vec<Vec<Attribute>>,
}

/// Why a DN string or DER encoding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// The DER is malformed.
    #[error("malformed DER distinguished name")]
    Der,
    /// A `key=value` part lacks its `=`.
    #[error("`{0}` is not of the form TYPE=value")]
    NoEquals(String),
    /// An attribute type we do not know.
    #[error("unknown distinguished name attribute type `{0}`")]
    UnknownType(String),
    /// The string names no attribute at all.
    #[error("empty distinguished name")]
    Empty,
}

impl From<DerError> for DnError {
    fn from(_: DerError) -> DnError {
        DnError::Der
    }
}

/// Short names strongSwan accepts, their OIDs, and the string type its `atodn` prefers.
const ATTRIBUTE_NAMES: &[(&str, &str, u8)] = &[
    ("CN", "2.5.4.3", tag::PRINTABLE_STRING),
    ("C", "2.5.4.6", tag::PRINTABLE_STRING),
    ("L", "2.5.4.7", tag::PRINTABLE_STRING),
    ("ST", "2.5.4.8", tag::PRINTABLE_STRING),
    ("O", "2.5.4.10", tag::PRINTABLE_STRING),
    ("OU", "2.5.4.11", tag::PRINTABLE_STRING),
    ("SN", "2.5.4.4", tag::PRINTABLE_STRING),
    ("serialNumber", "2.5.4.5", tag::PRINTABLE_STRING),
    ("street", "2.5.4.9", tag::PRINTABLE_STRING),
    ("T", "2.5.4.12", tag::PRINTABLE_STRING),
    ("postalCode", "2.5.4.17", tag::PRINTABLE_STRING),
    ("G", "2.5.4.42", tag::PRINTABLE_STRING),
    ("I", "2.5.4.43", tag::PRINTABLE_STRING),
    ("dnQualifier", "2.5.4.46", tag::PRINTABLE_STRING),
    ("pseudonym", "2.5.4.65", tag::PRINTABLE_STRING),
    ("E", "1.2.840.113549.1.9.1", tag::IA5_STRING),
    ("UID", "0.9.2342.19200300.100.1.1", tag::PRINTABLE_STRING),
    ("DC", "0.9.2342.19200300.100.1.25", tag::PRINTABLE_STRING),
];

/// Aliases, compared case-insensitively.
const ATTRIBUTE_ALIASES: &[(&str, &str)] = &[
    ("commonName", "CN"),
    ("countryName", "C"),
    ("localityName", "L"),
    ("S", "ST"),
    ("stateOrProvinceName", "ST"),
    ("organizationName", "O"),
    ("organizationalUnitName", "OU"),
    ("surname", "SN"),
    ("title", "T"),
    ("givenName", "G"),
    ("initials", "I"),
    ("Email", "E"),
    ("emailAddress", "E"),
    ("userId", "UID"),
];

fn is_printable_string(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b))
}

fn decode_string(t: u8, raw: &[u8]) -> String {
    match t {
        tag::UTF8_STRING | tag::PRINTABLE_STRING | tag::IA5_STRING => {
            String::from_utf8_lossy(raw).into_owned()
        }
        // Teletex in practice holds Latin-1.
        tag::T61_STRING => raw.iter().map(|&b| char::from(b)).collect(),
        tag::BMP_STRING if raw.len().is_multiple_of(2) => char::decode_utf16(
            raw.chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        tag::UNIVERSAL_STRING if raw.len().is_multiple_of(4) => raw
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        _ => {
            let mut s = String::from("#");
            for b in raw {
                s.push_str(&format!("{b:02x}"));
            }
            s
        }
    }
}

impl DistinguishedName {
    /// Parses the DER encoding of a `Name` (an RDNSequence).
    pub fn from_der(bytes: &[u8]) -> Result<DistinguishedName, DnError> {
        let mut outer = DerReader::new(bytes);
        let seq = outer.read(tag::SEQUENCE)?;
        outer.finish()?;
        let mut rdns = Vec::new();
        let mut r = DerReader::new(seq);
        while !r.is_empty() {
            let mut set = DerReader::new(r.read(tag::SET)?);
            let mut rdn = Vec::new();
            while !set.is_empty() {
                let mut atv = DerReader::new(set.read(tag::SEQUENCE)?);
                let oid = atv.read(tag::OID)?.to_vec();
                let (string_tag, raw) = atv.read_any()?;
                atv.finish()?;
                rdn.push(Attribute {
                    oid,
                    string_tag,
                    text: decode_string(string_tag, raw),
                    raw: raw.to_vec(),
                });
            }
            if rdn.is_empty() {
                return Err(DnError::Der);
            }
            rdns.push(rdn);
        }
        Ok(DistinguishedName { rdns })
    }

    /// The DER encoding of the `Name`.
    pub fn to_der(&self) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in &self.rdns {
            let mut set = Vec::new();
            for a in rdn {
                let mut atv = der::element(tag::OID, &a.oid);
                der::write(&mut atv, a.string_tag, &a.raw);
                der::write(&mut set, tag::SEQUENCE, &atv);
            }
            der::write(&mut seq, tag::SET, &set);
        }
        der::element(tag::SEQUENCE, &seq)
    }

    /// Parses strongSwan's string form: `TYPE=value` parts separated by `,` (a `\,` or a
    /// double-quoted value keeps a comma in a value), types by short name (`C`, `O`, `OU`, `CN`,
    /// `E`, `DC`, ...), long name or dotted OID. Each part becomes its own RDN, in the order
    /// written, as strongSwan's `atodn` does.
    pub fn parse(s: &str) -> Result<DistinguishedName, DnError> {
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut chars = s.chars();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                '"' => quoted = !quoted,
                ',' if !quoted => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        let mut rdns = Vec::new();
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| DnError::NoEquals(part.to_owned()))?;
            let key = key.trim();
            let value = value.trim();
            let canonical = ATTRIBUTE_ALIASES
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(key))
                .map_or(key, |(_, name)| name);
            let (oid, preferred) = match ATTRIBUTE_NAMES
                .iter()
                .find(|(name, _, _)| name.eq_ignore_ascii_case(canonical))
            {
                Some((_, dotted, t)) => (der::oid_from_dotted(dotted), *t),
                None => (der::oid_from_dotted(key), tag::PRINTABLE_STRING),
            };
            let oid = oid.ok_or_else(|| DnError::UnknownType(key.to_owned()))?;
            let string_tag = if preferred == tag::IA5_STRING && value.is_ascii() {
                tag::IA5_STRING
            } else if is_printable_string(value) {
                tag::PRINTABLE_STRING
            } else {
                tag::UTF8_STRING
            };
            rdns.push(vec![Attribute {
                oid,
                string_tag,
                raw: value.as_bytes().to_vec(),
                text: value.to_owned(),
            }]);
        }
        if rdns.is_empty() {
            return Err(DnError::Empty);
        }
        Ok(DistinguishedName { rdns })
    }

    /// The attributes, RDN by RDN.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.rdns.iter().flatten()
    }

    /// Whether `self` matches `pattern`: same shape, equal values, where a pattern value of
    /// `*` matches anything. Returns the number of wildcards used, or `None` for no match
    /// (fewer wildcards make a better match, as in strongSwan).
    pub fn match_pattern(&self, pattern: &DistinguishedName) -> Option<usize> {
        if self.rdns.len() != pattern.rdns.len() {
            return None;
        }
        let mut wildcards = 0;
        for (a, p) in self.rdns.iter().zip(&pattern.rdns) {
            if a.len() != p.len() {
                return None;
            }
            for (x, y) in a.iter().zip(p) {
                if x.oid != y.oid {
                    return None;
                }
                if y.text == "*" {
                    wildcards += 1;
                } else if !x.equals(y) {
                    return None;
                }
            }
        }
        Some(wildcards)
    }

    /// Whether the name contains a `*` wildcard value.
    pub fn has_wildcard(&self) -> bool {
        self.attributes().any(|a| a.text == "*")
    }
}

impl PartialEq for DistinguishedName {
    fn eq(&self, other: &DistinguishedName) -> bool {
        self.rdns.len() == other.rdns.len()
            && self
                .rdns
                .iter()
                .zip(&other.rdns)
                .all(|(a, b)| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y)))
    }
}

impl Eq for DistinguishedName {}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for a in self.attributes() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={}", a.name(), a.text.replace(',', "\\,"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_der_round_trip() {
        let dn = DistinguishedName::parse("C=CH, O=roamgate, CN=gw.roamgate.test").unwrap();
        let der = dn.to_der();
        let back = DistinguishedName::from_der(&der).unwrap();
        assert_eq!(back.to_der(), der);
        assert_eq!(back.to_string(), "C=CH, O=roamgate, CN=gw.roamgate.test");
    }

    #[test]
    fn escaped_comma_stays_in_value() {
        let dn = DistinguishedName::parse(r"O=Acme\, Inc., CN=x").unwrap();
        assert_eq!(dn.attributes().next().unwrap().value(), "Acme, Inc.");
        assert_eq!(dn.attributes().count(), 2);
    }

    #[test]
    fn malformed_der_is_rejected() {
        let der = DistinguishedName::parse("CN=x").unwrap().to_der();
        for cut in 0..der.len() {
            assert!(DistinguishedName::from_der(&der[..cut]).is_err());
        }
    }
}
