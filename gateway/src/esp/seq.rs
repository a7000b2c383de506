//! Outbound sequence numbers and SA lifetimes.
//!
//! # Uniqueness across workers
//!
//! Every worker that encapsulates for an SA takes its sequence number from the SA's one
//! `AtomicU64` with `fetch_add`, so no two packets of an SA ever carry the same number, and since
//! the AES-GCM IV *is* the 64-bit sequence number ([RFC 4106 § 3.1]: the IV "MUST NOT repeat for
//! a given key"; we use the counter), no (key, IV) pair repeats. Packets of different workers may
//! leave slightly out of order, which the peer's replay window absorbs.
//!
//! # Wrap and lifetimes
//!
//! A 32-bit sequence number "MUST NOT cycle" ([RFC 4303 § 3.3.3]); with ESN the limit is 2^64 − 1
//! in theory, and we stop at 2^63 so the counter itself can never wrap however many workers
//! keep asking after the end. A sequence number beyond the limit is refused
//! ([`DropReason::SequenceExhausted`]). Lifetimes in packets and bytes ([RFC 4301 § 4.4.2.1])
//! have a soft limit (control rekeys) and a hard limit (control deletes; the data plane refuses).
//! Each limit raises its [`SaEvent`] exactly once: the worker whose packet crosses it gets the
//! event, because only one `fetch_add` can return the value just below a threshold. The sequence
//! limit has a soft threshold of its own 1/16 before the end, so control rekeys in time.
//!
//! [RFC 4106 § 3.1]: https://www.rfc-editor.org/rfc/rfc4106#section-3.1
//! [RFC 4303 § 3.3.3]: https://www.rfc-editor.org/rfc/rfc4303#section-3.3.3
//! [RFC 4301 § 4.4.2.1]: https://www.rfc-editor.org/rfc/rfc4301#section-4.4.2.1

use std::sync::atomic::{AtomicU64, Ordering};

use crate::drop::DropReason;

/// The last sequence number of an SA without ESN.
pub const SEQ_LIMIT_32: u64 = u32::MAX as u64;
/// The last sequence number we use with ESN (see the module docs).
pub const SEQ_LIMIT_ESN: u64 = 1 << 63;

/// What crossed a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// The packet count.
    Packets,
    /// The byte count.
    Bytes,
    /// The sequence number space (rekey before it wraps).
    Sequence,
}

/// What an SA tells control when it crosses a limit; each is raised once per SA and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaEvent {
    /// A soft limit: rekey.
    Soft(LimitKind),
    /// A hard limit: delete the SA (the data plane refuses further packets).
    Hard(LimitKind),
}

/// Soft and hard lifetimes of an SA in packets and bytes; `u64::MAX` means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Rekey after this many packets.
    pub soft_packets: u64,
    /// Refuse packets after this many.
    pub hard_packets: u64,
    /// Rekey after this many bytes (of inner packets).
    pub soft_bytes: u64,
    /// Refuse packets once this many bytes have passed.
    pub hard_bytes: u64,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime::UNLIMITED
    }
}

impl Lifetime {
    /// No limits (the sequence number space still is one).
    pub const UNLIMITED: Lifetime = Lifetime {
        soft_packets: u64::MAX,
        hard_packets: u64::MAX,
        soft_bytes: u64::MAX,
        hard_bytes: u64::MAX,
    };
}

/// Counts bytes or packets against a soft and a hard limit; shared by workers.
#[derive(Debug)]
pub(crate) struct Meter {
    count: AtomicU64,
    soft: u64,
    hard: u64,
    kind: LimitKind,
}

impl Meter {
    pub(crate) const fn new(soft: u64, hard: u64, kind: LimitKind) -> Meter {
        Meter {
            count: AtomicU64::new(0),
            soft,
            hard,
            kind,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Adds `n`: refuses when the hard limit was already reached, and returns the event when
    /// this packet is the one that crosses a limit.
    #[inline]
    pub(crate) fn add(&self, n: u64) -> Result<Option<SaEvent>, DropReason> {
        let before = self.count.fetch_add(n, Ordering::Relaxed);
        if self.soft == u64::MAX && self.hard == u64::MAX {
            return Ok(None);
        }
        let after = before.saturating_add(n);
        if before >= self.hard {
            return Err(DropReason::HardLifetime);
        }
        if after >= self.hard {
            return Ok(Some(SaEvent::Hard(self.kind)));
        }
        if before < self.soft && after >= self.soft {
            return Ok(Some(SaEvent::Soft(self.kind)));
        }
        Ok(None)
    }
}

/// The outbound sequence counter of an SA, shared by every worker.
#[derive(Debug)]
pub struct SeqCounter {
    /// The next sequence number to hand out.
    next: AtomicU64,
    limit: u64,
    soft: u64,
    hard_packets: u64,
    soft_packets: u64,
}

impl SeqCounter {
    /// A counter starting at 1, limited to 32 bits without `esn`, and by `life`'s packet counts.
    pub fn new(esn: bool, life: &Lifetime) -> SeqCounter {
        SeqCounter::starting_at(1, esn, life)
    }

    /// A counter whose next number is `next` (after a restart with a safe jump, and in tests).
    pub fn starting_at(next: u64, esn: bool, life: &Lifetime) -> SeqCounter {
        let limit = if esn { SEQ_LIMIT_ESN } else { SEQ_LIMIT_32 };
        SeqCounter {
            next: AtomicU64::new(next.max(1)),
            limit,
            soft: limit - limit / 16,
            hard_packets: life.hard_packets,
            soft_packets: life.soft_packets,
        }
    }

    /// The last number handed out (0 before the first).
    pub fn last(&self) -> u64 {
        self.next.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Takes the next sequence number, with the event when this packet crosses a limit.
    #[inline]
    pub fn next(&self) -> Result<(u64, Option<SaEvent>), DropReason> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        if seq > self.limit {
            return Err(DropReason::SequenceExhausted);
        }
        if seq > self.hard_packets {
            return Err(DropReason::HardLifetime);
        }
        let event = if seq == self.limit {
            Some(SaEvent::Hard(LimitKind::Sequence))
        } else if seq == self.hard_packets {
            Some(SaEvent::Hard(LimitKind::Packets))
        } else if seq == self.soft {
            Some(SaEvent::Soft(LimitKind::Sequence))
        } else if seq == self.soft_packets {
            Some(SaEvent::Soft(LimitKind::Packets))
        } else {
            None
        };
        Ok((seq, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn wrap_is_refused_with_one_event() {
        let c = SeqCounter::starting_at(SEQ_LIMIT_32 - 1, false, &Lifetime::UNLIMITED);
        assert_eq!(c.next(), Ok((SEQ_LIMIT_32 - 1, None)));
        assert_eq!(
            c.next(),
            Ok((SEQ_LIMIT_32, Some(SaEvent::Hard(LimitKind::Sequence))))
        );
        assert_eq!(c.next(), Err(DropReason::SequenceExhausted));
        assert_eq!(c.next(), Err(DropReason::SequenceExhausted));
        let soft = SEQ_LIMIT_32 - SEQ_LIMIT_32 / 16;
        let c = SeqCounter::starting_at(soft, false, &Lifetime::UNLIMITED);
        assert_eq!(
            c.next(),
            Ok((soft, Some(SaEvent::Soft(LimitKind::Sequence))))
        );
        let c = SeqCounter::starting_at(SEQ_LIMIT_ESN, true, &Lifetime::UNLIMITED);
        assert_eq!(
            c.next(),
            Ok((SEQ_LIMIT_ESN, Some(SaEvent::Hard(LimitKind::Sequence))))
        );
        assert_eq!(c.next(), Err(DropReason::SequenceExhausted));
        // ESN goes past 2^32.
        let c = SeqCounter::starting_at(SEQ_LIMIT_32, true, &Lifetime::UNLIMITED);
        assert_eq!(c.next(), Ok((SEQ_LIMIT_32, None)));
        assert_eq!(c.next(), Ok((SEQ_LIMIT_32 + 1, None)));
    }

    #[test]
    fn packet_lifetimes() {
        let life = Lifetime {
            soft_packets: 3,
            hard_packets: 5,
            ..Lifetime::UNLIMITED
        };
        let c = SeqCounter::new(false, &life);
        let events: Vec<_> = (0..7).map(|_| c.next()).collect();
        assert_eq!(
            events,
            vec![
                Ok((1, None)),
                Ok((2, None)),
                Ok((3, Some(SaEvent::Soft(LimitKind::Packets)))),
                Ok((4, None)),
                Ok((5, Some(SaEvent::Hard(LimitKind::Packets)))),
                Err(DropReason::HardLifetime),
                Err(DropReason::HardLifetime),
            ]
        );
    }

    #[test]
    fn byte_lifetimes() {
        let life = Lifetime {
            soft_bytes: 1000,
            hard_bytes: 2000,
            ..Lifetime::UNLIMITED
        };
        let m = Meter::new(life.soft_bytes, life.hard_bytes, LimitKind::Bytes);
        assert_eq!(m.add(900), Ok(None));
        assert_eq!(m.add(200), Ok(Some(SaEvent::Soft(LimitKind::Bytes))));
        assert_eq!(m.add(800), Ok(None));
        assert_eq!(m.add(100), Ok(Some(SaEvent::Hard(LimitKind::Bytes))));
        assert_eq!(m.add(1), Err(DropReason::HardLifetime));
        assert_eq!(m.total(), 2001);
    }

    #[test]
    fn unique_across_threads() {
        let c = Arc::new(SeqCounter::new(true, &Lifetime::UNLIMITED));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    (0..10_000).map(|_| c.next().unwrap().0).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for s in h.join().unwrap() {
                assert!(all.insert(s), "sequence number {s} handed out twice");
            }
        }
        assert_eq!(all.len(), 40_000);
        assert_eq!(c.last(), 40_000);
    }
}
