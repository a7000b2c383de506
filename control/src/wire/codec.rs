//! The byte-level codec under every payload: a bounded [`Reader`] and a length-patching
//! [`Writer`], plus the named caps on everything the peer counts.
//!
//! The reader never reads past its slice: every accessor checks the remaining length and
//! returns [`DecodeError::Truncated`] naming the structure being read. [`Reader::sub`] hands
//! out a reader over exactly the next `len` bytes, so a structure cannot read into its
//! neighbour, and [`Reader::finish`] rejects bytes a structure left unread.
//!
//! Allocation is bounded by the input: every length the peer sends is checked against the
//! bytes actually present before anything is copied, and every count has a cap below.

use super::error::{DecodeError, EncodeError, Structure};

/// At most this many payloads in one chain (a message, or the plaintext of one SK payload).
///
/// The RFC sets no limit. strongSwan's largest ordinary messages carry around fifteen; a
/// MOBIKE address list adds one Notify per address.
pub const MAX_PAYLOADS: usize = 128;

/// At most this many proposals in one SA payload. "Proposal Num (1 octet) - When a proposal
/// is made, the first proposal in an SA payload MUST be 1, and subsequent proposals MUST be one
/// more than the previous proposal" ([RFC 7296 § 3.3.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.1)),
/// so a one-octet number bounds a valid list.
pub const MAX_PROPOSALS: usize = 255;

/// At most this many transforms in one proposal: the field "Num Transforms (1 octet)"
/// ([RFC 7296 § 3.3.1](https://www.rfc-editor.org/rfc/rfc7296#section-3.3.1)).
pub const MAX_TRANSFORMS: usize = 255;

/// At most this many attributes on one transform. The RFC defines one, Key Length, and a
/// transform carries each attribute at most once.
pub const MAX_ATTRIBUTES: usize = 8;

/// At most this many traffic selectors in one TS payload: the field "Number of TSs (1 octet)"
/// ([RFC 7296 § 3.13](https://www.rfc-editor.org/rfc/rfc7296#section-3.13)).
pub const MAX_TRAFFIC_SELECTORS: usize = 255;

/// At most this many SPIs in one Delete payload. "Num of SPIs (2 octets, unsigned integer)"
/// ([RFC 7296 § 3.11](https://www.rfc-editor.org/rfc/rfc7296#section-3.11)); four octets each,
/// they fill a payload whose length field is two octets.
pub const MAX_DELETE_SPIS: usize = (u16::MAX as usize - 8) / 4;

/// At most this many attributes in one CP payload.
pub const MAX_CONFIG_ATTRIBUTES: usize = 128;

/// A reader over untrusted bytes that can only run out, never past.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    offset: usize,
    structure: Structure,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, decoding `structure` (named in errors).
    pub fn new(buf: &'a [u8], structure: Structure) -> Reader<'a> {
        Reader {
            buf,
            offset: 0,
            structure,
        }
    }

    /// The structure this reader decodes.
    pub fn structure(&self) -> Structure {
        self.structure
    }

    /// How many bytes are left.
    pub fn left(&self) -> usize {
        self.buf.len() - self.offset
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// The next `len` bytes.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.left() {
            return Err(DecodeError::Truncated(self.structure));
        }
        let out = &self.buf[self.offset..self.offset + len];
        self.offset += len;
        Ok(out)
    }

    /// Everything that is left, without moving past it.
    pub fn peek_rest(&self) -> &'a [u8] {
        &self.buf[self.offset..]
    }

    /// Everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.offset..];
        self.offset = self.buf.len();
        out
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One octet.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Moves past `len` octets.
    pub fn skip(&mut self, len: usize) -> Result<(), DecodeError> {
        self.take(len).map(|_| ())
    }

    /// Skips `len` reserved octets ("MUST be sent as zero; MUST be ignored on receipt",
    /// [RFC 7296 § 3.2](https://www.rfc-editor.org/rfc/rfc7296#section-3.2)).
    pub fn skip_reserved(&mut self, len: usize) -> Result<(), DecodeError> {
        self.skip(len)
    }

    /// A reader over exactly the next `len` bytes, decoding `structure`; this reader moves past
    /// them. A `len` that runs past the end is [`DecodeError::BadLength`] of `structure`: the
    /// length field lied.
    pub fn sub(&mut self, len: usize, structure: Structure) -> Result<Reader<'a>, DecodeError> {
        if len > self.left() {
            return Err(DecodeError::BadLength(structure));
        }
        let buf = &self.buf[self.offset..self.offset + len];
        self.offset += len;
        Ok(Reader::new(buf, structure))
    }

    /// Ends the structure: bytes left over are [`DecodeError::TrailingBytes`].
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.structure))
        }
    }
}

/// A position in a [`Writer`] where a length field waits to be patched.
#[derive(Debug, Clone, Copy)]
#[must_use = "a length placeholder must be patched with Writer::patch_len"]
pub struct LenMark {
    /// Where the measured structure starts.
    start: usize,
    /// Where its two-octet length field is.
    field: usize,
    /// What it is (named in errors).
    structure: Structure,
}

/// Appends wire bytes to a `Vec`, and patches length fields once the body is written.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { buf }
    }

    /// How many bytes the buffer holds.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends one octet.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Appends `len` zero octets (reserved fields).
    pub fn zeros(&mut self, len: usize) {
        self.buf.resize(self.buf.len() + len, 0);
    }

    /// Appends a two-octet length placeholder for a structure that began at `start`.
    pub fn len_placeholder(&mut self, start: usize, structure: Structure) -> LenMark {
        let field = self.buf.len();
        self.u16(0);
        LenMark {
            start,
            field,
            structure,
        }
    }

    /// Writes the length of everything from the mark's start to the end of the buffer into the
    /// mark's length field.
    pub fn patch_len(&mut self, mark: LenMark) -> Result<(), EncodeError> {
        let len = u16::try_from(self.buf.len() - mark.start)
            .map_err(|_| EncodeError::TooLong(mark.structure))?;
        self.buf[mark.field..mark.field + 2].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Overwrites four octets at `at` (the IKE header's length).
    ///
    /// # Panics
    ///
    /// If `at + 4` is past the end of what has been written: a misuse by the caller.
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

/// Converts a count we are about to write into a field of type `T`.
pub(crate) fn count<T: TryFrom<usize>>(n: usize, structure: Structure) -> Result<T, EncodeError> {
    T::try_from(n).map_err(|_| EncodeError::TooLong(structure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_stops_at_end() {
        let mut r = Reader::new(&[1, 2, 3], Structure::Nonce);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16(), Err(DecodeError::Truncated(Structure::Nonce)));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.u8(), Err(DecodeError::Truncated(Structure::Nonce)));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn sub_reader_is_bounded_and_lengths_that_lie_fail() {
        let mut r = Reader::new(&[1, 2, 3, 4], Structure::PayloadChain);
        let mut s = r.sub(2, Structure::Nonce).unwrap();
        assert_eq!(s.u16(), Ok(0x0102));
        assert_eq!(s.u8(), Err(DecodeError::Truncated(Structure::Nonce)));
        assert_eq!(
            r.sub(3, Structure::Notify).unwrap_err(),
            DecodeError::BadLength(Structure::Notify)
        );
        let s = r.sub(2, Structure::Nonce).unwrap();
        assert_eq!(
            s.finish(),
            Err(DecodeError::TrailingBytes(Structure::Nonce))
        );
        assert!(r.finish().is_ok());
    }

    #[test]
    fn writer_patches_lengths() {
        let mut buf = vec![9];
        let mut w = Writer::new(&mut buf);
        let start = w.len();
        w.u8(7);
        let mark = w.len_placeholder(start, Structure::Nonce);
        w.bytes(&[1, 2, 3]);
        w.patch_len(mark).unwrap();
        assert_eq!(buf, [9, 7, 0, 6, 1, 2, 3]);
    }

    #[test]
    fn writer_refuses_oversized_lengths() {
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf);
        let mark = w.len_placeholder(0, Structure::VendorId);
        w.zeros(70_000);
        assert_eq!(
            w.patch_len(mark),
            Err(EncodeError::TooLong(Structure::VendorId))
        );
    }
}
