//! Why a packet was dropped: one enum that names every drop and indexes the per-worker counters.
//!
//! The same names appear in code, in metrics (the label `reason`) and in the docs: a reason's
//! [`DropReason::name`] is its metric label. Workers count drops in a [`DropCounters`] of their
//! own (no sharing, no atomics on the hot path) and publish them per batch.

use std::fmt;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )+) => {
        /// Why the data plane dropped a packet.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )+
        }

        impl DropReason {
            /// Every reason, in counter-index order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)+];
            /// How many reasons there are (the length of a counter array).
            pub const COUNT: usize = DropReason::ALL.len();

            /// The reason's name in metrics and docs (`snake_case`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)+
                }
            }
        }
    };
}

drop_reasons! {
    /// The packet ends before a header or field it must contain.
    Truncated => "truncated",
    /// The outer packet is not IPv4 or IPv6, or its IP header is malformed.
    BadOuterHeader => "bad_outer_header",
    /// The outer IPv4 header checksum is wrong.
    BadOuterChecksum => "bad_outer_checksum",
    /// The outer packet is a fragment (reassembly belongs to the exception path).
    OuterFragment => "outer_fragment",
    /// The outer packet carries neither ESP nor UDP-encapsulated ESP.
    NotEsp => "not_esp",
    /// No inbound SA has the packet's SPI ([RFC 4303 § 3.4.2]).
    ///
    /// [RFC 4303 § 3.4.2]: https://www.rfc-editor.org/rfc/rfc4303#section-3.4.2
    UnknownSpi => "unknown_spi",
    /// The sequence number is 0 or lies to the left of the anti-replay window.
    ReplayTooOld => "replay_too_old",
    /// The sequence number was already received (a replay or a duplicate).
    Replay => "replay",
    /// The integrity check value does not verify.
    IntegrityFailed => "integrity_failed",
    /// The padding length exceeds the payload or the padding bytes are not 1, 2, 3, …
    BadPadding => "bad_padding",
    /// The next header does not fit the SA's mode: in tunnel mode neither IPv4 (4) nor IPv6
    /// (41); in BEET mode a pseudo-header where none may be (nested, or for IPv6).
    BadNextHeader => "bad_next_header",
    /// The decrypted inner packet is malformed (bad version, header length or total length).
    BadInnerPacket => "bad_inner_packet",
    /// Inner Not-ECT with outer CE: RFC 6040 says drop.
    EcnCeOnNotEct => "ecn_ce_on_not_ect",
    /// The frame lacks the headroom or tailroom the encapsulation needs.
    NoRoom => "no_room",
    /// The inner packet is larger than the path allows and may not be fragmented.
    TooBig => "too_big",
    /// The outbound sequence number space is exhausted (it would wrap).
    SequenceExhausted => "sequence_exhausted",
    /// The SA passed its hard lifetime (bytes or packets).
    HardLifetime => "hard_lifetime",
    /// A LAN packet to no protected prefix (its SA went away after the XDP program steered
    /// it).
    NoOutboundSa => "no_outbound_sa",
    /// The inner addresses are outside the SA's traffic selectors ([RFC 4301 § 5.2]: "the
    /// packet … MUST be discarded").
    ///
    /// [RFC 4301 § 5.2]: https://www.rfc-editor.org/rfc/rfc4301#section-5.2
    TrafficSelector => "traffic_selector",
    /// The outbound SA has no endpoint (no peer address) yet.
    NoEndpoint => "no_endpoint",
    /// The inner TTL or hop limit ran out while forwarding.
    TtlExpired => "ttl_expired",
    /// The frame carries neither IPv4 nor IPv6 (or is VLAN-tagged, which the workers do not
    /// forward).
    NotIp => "not_ip",
    /// The outer IPv4 packet would need fragmenting (inner DF clear, larger than the path
    /// MTU); outer fragmentation is not done by the workers.
    OuterFragmentationNeeded => "outer_fragmentation_needed",
    /// The egress socket's TX ring was full.
    TxRingFull => "tx_ring_full",
    /// The egress socket had no free frame to copy into.
    NoTxFrame => "no_tx_frame",
    /// Handing a packet to the kernel (the exception path) failed.
    ExceptionFailed => "exception_failed",
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for DropReason {}

/// Per-worker drop counters, one per [`DropReason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::COUNT],
}

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters {
            counts: [0; DropReason::COUNT],
        }
    }
}

impl DropCounters {
    /// All counters at zero.
    pub fn new() -> DropCounters {
        DropCounters::default()
    }

    /// Counts one drop for `reason`.
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        self.counts[reason as usize] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Every (reason, count) pair, in counter order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.counts[*r as usize]))
    }

    /// The sum of every counter.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_counters_and_names_are_unique() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }

    #[test]
    fn counters_count() {
        let mut c = DropCounters::new();
        c.count(DropReason::Replay);
        c.count(DropReason::Replay);
        c.count(DropReason::UnknownSpi);
        assert_eq!(c.get(DropReason::Replay), 2);
        assert_eq!(c.get(DropReason::UnknownSpi), 1);
        assert_eq!(c.total(), 3);
        assert_eq!(c.iter().filter(|(_, n)| *n > 0).count(), 2);
    }
}
