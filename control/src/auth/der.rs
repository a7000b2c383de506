//! A minimal DER reader and writer for the few ASN.1 structures authentication handles itself:
//! RFC 7427 AlgorithmIdentifiers, RSASSA-PSS parameters and X.500 Distinguished Names.
//!
//! The reader is bounded by its input: every length is checked against the bytes that remain
//! before it is used, so parsing peer data cannot panic or over-allocate.

/// ASN.1 universal tags used here.
pub(crate) mod tag {
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const NULL: u8 = 0x05;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const UTF8_STRING: u8 = 0x0c;
    pub(crate) const PRINTABLE_STRING: u8 = 0x13;
    pub(crate) const T61_STRING: u8 = 0x14;
    pub(crate) const IA5_STRING: u8 = 0x16;
    pub(crate) const UNIVERSAL_STRING: u8 = 0x1c;
    pub(crate) const BMP_STRING: u8 = 0x1e;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
    /// `[n]` constructed, context-specific.
    pub(crate) const fn context(n: u8) -> u8 {
        0xa0 | n
    }
}

/// Malformed DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError;

/// A cursor over DER bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DerReader<'a> {
    rest: &'a [u8],
}

impl<'a> DerReader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> DerReader<'a> {
        DerReader { rest: input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next element, without consuming it.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one element: its tag and its contents.
    pub(crate) fn read_any(&mut self) -> Result<(u8, &'a [u8]), DerError> {
        let (&t, rest) = self.rest.split_first().ok_or(DerError)?;
        if t & 0x1f == 0x1f {
            // High tag numbers never occur in the structures read here.
            return Err(DerError);
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(DerError);
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 || bytes[0] == 0 {
                // Not the minimal encoding DER demands.
                return Err(DerError);
            }
            len
        };
        if rest.len() < len {
            return Err(DerError);
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Ok((t, value))
    }

    /// Reads one element that must carry `expected`.
    pub(crate) fn read(&mut self, expected: u8) -> Result<&'a [u8], DerError> {
        match self.read_any()? {
            (t, v) if t == expected => Ok(v),
            _ => Err(DerError),
        }
    }

    /// Reads an element with tag `expected` if it comes next.
    pub(crate) fn read_optional(&mut self, expected: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(expected) {
            self.read(expected).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError)
        }
    }
}

/// Appends one DER element.
pub(crate) fn write(out: &mut Vec<u8>, t: u8, value: &[u8]) {
    out.push(t);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

/// One DER element as a new vector.
pub(crate) fn element(t: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write(&mut out, t, value);
    out
}

/// The contents octets of an OBJECT IDENTIFIER written in dotted form (`2.5.4.3`).
/// Returns `None` for a malformed string.
pub(crate) fn oid_from_dotted(s: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = s
        .split('.')
        .map(|a| a.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
        return None;
    }
    let mut out = Vec::new();
    let first = arcs[0].checked_mul(40)?.checked_add(arcs[1])?;
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    Some(out)
}

/// The dotted form of OBJECT IDENTIFIER contents octets, or `None` if malformed.
pub(crate) fn oid_to_dotted(oid: &[u8]) -> Option<String> {
    let mut arcs = Vec::new();
    let mut v: u64 = 0;
    let mut in_arc = false;
    for &b in oid {
        if !in_arc && b == 0x80 {
            return None;
        }
        v = v.checked_mul(128)? | u64::from(b & 0x7f);
        in_arc = b & 0x80 != 0;
        if !in_arc {
            arcs.push(v);
            v = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut s = format!("{a}.{b}");
    for arc in &arcs[1..] {
        s.push('.');
        s.push_str(&arc.to_string());
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_round_trip() {
        for s in [
            "2.5.4.3",
            "1.2.840.113549.1.1.11",
            "0.9.2342.19200300.100.1.25",
        ] {
            let der = oid_from_dotted(s).unwrap();
            assert_eq!(oid_to_dotted(&der).unwrap(), s);
        }
        assert_eq!(oid_from_dotted("2.5.4.3").unwrap(), [0x55, 0x04, 0x03]);
    }

    #[test]
    fn long_lengths_round_trip_and_truncation_fails() {
        let value = vec![7u8; 300];
        let der = element(tag::SEQUENCE, &value);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x2c]);
        let mut r = DerReader::new(&der);
        assert_eq!(r.read(tag::SEQUENCE).unwrap(), &value[..]);
        r.finish().unwrap();
        for cut in 0..der.len() {
            assert!(
                DerReader::new(&der[..cut]).read_any().is_err(),
                "prefix {cut}"
            );
        }
    }

    #[test]
    fn non_minimal_length_is_rejected() {
        assert!(
            DerReader::new(&[0x30, 0x81, 0x01, 0x00])
                .read_any()
                .is_err()
        );
    }
}
