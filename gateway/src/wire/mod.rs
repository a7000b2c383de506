//! Wire formats the ESP transforms read and write: checked views over byte slices.
//!
//! Each fixed header follows the same contract (after smoltcp's `wire` modules): a
//! `Packet<T: AsRef<[u8]>>` view whose `new_checked` verifies, once, that the buffer holds the
//! whole header; after that every getter is infallible and cannot panic. Setters exist only when
//! `T: AsMut<[u8]>`. A `Repr` is the parsed, owned form with `parse`, `buffer_len` and `emit`.
//! Untrusted input always enters through `new_checked`.

pub mod esp;
pub mod ip;
pub mod udp;

pub use esp::{EspPacket, EspRepr};
pub use ip::{IpProtocol, Ipv4Packet, Ipv6Packet};
pub use udp::{UdpEncap, UdpPacket};

/// A parse error: the buffer is too short, or a field holds a value the format forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the header (or the length a header announces) does.
    #[error("truncated")]
    Truncated,
    /// A field holds a value the format does not allow.
    #[error("malformed")]
    Malformed,
}

/// The result of a parse.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` at `at`; the caller has checked the length.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian `u32` at `at`; the caller has checked the length.
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The Internet checksum ([RFC 1071]): the ones' complement sum of 16-bit words, folded.
///
/// Returns the unfolded-then-folded sum (not complemented) so sums can be chained; see
/// [`checksum_finish`].
///
/// [RFC 1071]: https://www.rfc-editor.org/rfc/rfc1071
#[inline]
pub fn checksum_add(sum: u32, data: &[u8]) -> u32 {
    // Sum 32-bit big-endian words into 64 bits (no carry is lost below 2^32 words), then fold:
    // the ones' complement sum of 32-bit words folds to that of 16-bit words.
    let mut acc = u64::from(sum);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    match *words.remainder() {
        [a] => acc += u64::from(a) << 8,
        [a, b] => acc += u64::from(u16::from_be_bytes([a, b])),
        [a, b, c] => acc += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        _ => {}
    }
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let mut s = acc as u32;
    s = (s & 0xffff) + (s >> 16);
    (s & 0xffff) + (s >> 16)
}

/// Folds a sum from [`checksum_add`] to 16 bits and complements it.
#[inline]
pub fn checksum_finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The Internet checksum of `data`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    checksum_finish(checksum_add(0, data))
}

/// Incremental update of a checksum when one 16-bit word changes from `old` to `new`
/// ([RFC 1624] eqn. 3: `HC' = ~(~HC + ~m + m')`).
///
/// [RFC 1624]: https://www.rfc-editor.org/rfc/rfc1624
#[inline]
pub fn checksum_update(check: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    checksum_finish(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 § 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        let mut data = [
            0x45u8, 0, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
        let old = be16(&data, 0);
        data[1] = 0x03;
        let new = be16(&data, 0);
        let c2 = checksum_update(c, old, new);
        data[10..12].copy_from_slice(&c2.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn matches_a_plain_16_bit_sum() {
        use proptest::prelude::*;
        proptest!(|(data in proptest::collection::vec(any::<u8>(), 0..300), seed in 0u32..0x2_0000)| {
            let mut sum = seed;
            for c in data.chunks(2) {
                let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
                sum += u32::from(w);
            }
            prop_assert_eq!(checksum_finish(checksum_add(seed, &data)), checksum_finish(sum));
        });
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0])
        );
    }
}
