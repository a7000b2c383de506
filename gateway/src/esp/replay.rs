//! The anti-replay window: an RFC 6479 bitmap ring without shifting, shared by every worker
//! that decapsulates an SA, lock-free.
//!
//! # The algorithm
//!
//! [RFC 6479] keeps the window as a ring of bitmap blocks indexed by `seq / bits_per_block`;
//! when the right edge advances, the blocks it enters are cleared instead of the whole bitmap
//! being shifted. Here each block is one `AtomicU64` holding 32 bits of bitmap and, in its
//! upper half, the low 32 bits of the *block number* it currently describes (a tag). A block
//! entered by the advancing edge is not cleared eagerly: the first packet that lands in it sees
//! a stale tag and replaces tag and bitmap in one compare-and-swap. So every acceptance is a
//! single CAS on the one word that covers the packet, and no thread ever clears bits another
//! thread has just set.
//!
//! Tags are compared modulo 2^32 blocks (2^37 sequence numbers): only a jump of the right edge
//! by more than 2^36 numbers at once — a peer that skipped that many, which authenticated
//! traffic cannot do by accident — could be misjudged, and then as too old.
//!
//! With [`BLOCKS`] = 64 blocks of 32 bits, the window is [`WINDOW`] = 32 × 63 = 2016 packets:
//! one block is left out so that two blocks in the window never share a slot.
//!
//! # Concurrency
//!
//! An SA's packets may arrive on several queues (RSS spreads UDP-encapsulated ESP by port, a
//! failover moves an SA to another NIC). Every worker decapsulating the SA shares one
//! `ReplayWindow` (there is no hand-off of ownership). [`ReplayWindow::check`] runs before the
//! integrity check and only reads; [`ReplayWindow::accept`] runs after it, and is the
//! authoritative step: the CAS on the packet's block decides, so of two workers holding the same
//! sequence number exactly one wins, and a packet whose block was taken over by a newer block in
//! the meantime is rejected as too old. The right edge is a `fetch_max`, so it only moves
//! forward. A check that raced with an acceptance costs at most one wasted decryption.
//!
//! # Extended sequence numbers
//!
//! With ESN ([RFC 4304]) only the low 32 bits travel; [`ReplayWindow::infer_esn`] reconstructs
//! the high half from the window as [RFC 4303 Appendix A2.2] does, and the ICV (which covers the
//! high half) confirms the guess.
//!
//! [RFC 6479]: https://www.rfc-editor.org/rfc/rfc6479
//! [RFC 4304]: https://www.rfc-editor.org/rfc/rfc4304
//! [RFC 4303 Appendix A2.2]: https://www.rfc-editor.org/rfc/rfc4303#appendix-A.2.2

use std::sync::atomic::{AtomicU64, Ordering};

use crate::drop::DropReason;

/// Bits of bitmap per block.
const BITS: u64 = 32;
/// Blocks in the ring (a power of two).
pub const BLOCKS: usize = 64;
/// The window: sequence numbers this far left of the highest accepted one are still accepted
/// once. RFC 4303 § 3.4.3 asks for at least 32 (64 by default); we keep 2016.
pub const WINDOW: u64 = BITS * (BLOCKS as u64 - 1);

/// The shared anti-replay state of one inbound SA.
#[derive(Debug)]
pub struct ReplayWindow {
    /// The highest sequence number accepted so far (0: none).
    top: AtomicU64,
    /// `tag << 32 | bitmap`, where `tag` is the low 32 bits of the block number.
    blocks: [AtomicU64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow::new()
    }
}

#[inline]
fn split(seq: u64) -> (usize, u32, u64) {
    let block = seq / BITS;
    let slot = (block % BLOCKS as u64) as usize;
    (slot, block as u32, 1u64 << (seq % BITS))
}

impl ReplayWindow {
    /// An empty window: nothing received yet.
    pub fn new() -> ReplayWindow {
        ReplayWindow {
            top: AtomicU64::new(0),
            blocks: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The highest sequence number accepted so far (0 when none was).
    #[inline]
    pub fn top(&self) -> u64 {
        self.top.load(Ordering::Acquire)
    }

    /// The full 64-bit sequence number for the low half `low` received with ESN, per
    /// [RFC 4303 Appendix A2.2](https://www.rfc-editor.org/rfc/rfc4303#appendix-A.2.2)
    /// (with W the window size, T the top).
    #[inline]
    pub fn infer_esn(&self, low: u32) -> u64 {
        let top = self.top();
        let th = top >> 32;
        let tl = top as u32;
        let w = WINDOW as u32;
        let high = if tl >= w - 1 {
            // Case A: the window lies within one subspace.
            if low >= tl - (w - 1) { th } else { th + 1 }
        } else {
            // Case B: the window spans two subspaces.
            if low >= tl.wrapping_sub(w - 1) {
                th.saturating_sub(1)
            } else {
                th
            }
        };
        (high << 32) | u64::from(low)
    }

    /// Whether `seq` may be new: run before the integrity check (read-only).
    #[inline]
    pub fn check(&self, seq: u64) -> Result<(), DropReason> {
        if seq == 0 {
            return Err(DropReason::ReplayTooOld);
        }
        let top = self.top();
        if seq > top {
            return Ok(());
        }
        if seq.saturating_add(WINDOW) <= top {
            return Err(DropReason::ReplayTooOld);
        }
        let (slot, tag, bit) = split(seq);
        let word = self.blocks[slot].load(Ordering::Acquire);
        if (word >> 32) as u32 == tag && word & bit != 0 {
            return Err(DropReason::Replay);
        }
        Ok(())
    }

    /// Records `seq` as received: run after the integrity check. Fails when the sequence number
    /// was taken meanwhile (a duplicate decrypted concurrently) or fell out of the window.
    #[inline]
    pub fn accept(&self, seq: u64) -> Result<(), DropReason> {
        if seq == 0 {
            return Err(DropReason::ReplayTooOld);
        }
        if seq.saturating_add(WINDOW) <= self.top() {
            return Err(DropReason::ReplayTooOld);
        }
        let (slot, tag, bit) = split(seq);
        let cell = &self.blocks[slot];
        let mut word = cell.load(Ordering::Acquire);
        loop {
            let have = (word >> 32) as u32;
            let new = if have == tag {
                if word & bit != 0 {
                    return Err(DropReason::Replay);
                }
                word | bit
            } else if (have.wrapping_sub(tag) as i32) > 0 {
                // The slot already describes a newer block: ours left the window.
                return Err(DropReason::ReplayTooOld);
            } else {
                (u64::from(tag) << 32) | bit
            };
            match cell.compare_exchange_weak(word, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        if seq > self.top() {
            self.top.fetch_max(seq, Ordering::AcqRel);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    fn both(w: &ReplayWindow, seq: u64) -> Result<(), DropReason> {
        w.check(seq)?;
        w.accept(seq)
    }

    #[test]
    fn in_order_reorder_and_replay() {
        let w = ReplayWindow::new();
        assert_eq!(both(&w, 0), Err(DropReason::ReplayTooOld));
        for s in 1..=5000 {
            assert_eq!(both(&w, s), Ok(()));
            assert_eq!(both(&w, s), Err(DropReason::Replay));
        }
        assert_eq!(w.top(), 5000);
        // Reordered packets inside the window are accepted once.
        let w = ReplayWindow::new();
        both(&w, 3000).unwrap();
        for s in (3000 - WINDOW + 1..3000).rev() {
            assert_eq!(both(&w, s), Ok(()), "seq {s}");
        }
        assert_eq!(both(&w, 3000 - WINDOW), Err(DropReason::ReplayTooOld));
        assert_eq!(both(&w, 1500), Err(DropReason::Replay));
    }

    #[test]
    fn window_is_at_least_1024() {
        const { assert!(WINDOW >= 1024) };
        let w = ReplayWindow::new();
        both(&w, 100_000).unwrap();
        assert_eq!(both(&w, 100_000 - 1024), Ok(()));
    }

    #[test]
    fn large_jumps_forget_old_bits() {
        let w = ReplayWindow::new();
        both(&w, 10).unwrap();
        // The same slot, 64 blocks later: the tag differs, so the stale bit does not count.
        let later = 10 + BITS * BLOCKS as u64;
        assert_eq!(both(&w, later), Ok(()));
        assert_eq!(both(&w, 10), Err(DropReason::ReplayTooOld));
        assert_eq!(both(&w, later), Err(DropReason::Replay));
        both(&w, 1 << 34).unwrap();
        assert_eq!(both(&w, later), Err(DropReason::ReplayTooOld));
        assert_eq!(both(&w, (1 << 34) - 5), Ok(()));
    }

    #[test]
    fn accept_rejects_a_block_taken_by_a_newer_one() {
        let w = ReplayWindow::new();
        both(&w, 5).unwrap();
        // 5 passes its check, then a packet 64 blocks ahead is accepted before 5's accept.
        w.check(40).unwrap();
        let newer = 40 + BITS * BLOCKS as u64;
        both(&w, newer).unwrap();
        assert_eq!(w.accept(40), Err(DropReason::ReplayTooOld));
    }

    /// Checks the window against a model (a set of every accepted number) on random traffic.
    #[test]
    fn matches_a_model() {
        use proptest::prelude::*;
        proptest!(|(ops in proptest::collection::vec((0u64..6000, any::<bool>()), 1..400))| {
            let w = ReplayWindow::new();
            let mut seen = BTreeSet::new();
            let mut top = 0u64;
            for (seq, jump) in ops {
                let seq = if jump { top + 1 + seq % 64 } else { seq };
                let expect = if seq == 0 || seq + WINDOW <= top {
                    Err(DropReason::ReplayTooOld)
                } else if seen.contains(&seq) {
                    Err(DropReason::Replay)
                } else {
                    Ok(())
                };
                prop_assert_eq!(both(&w, seq), expect, "seq {} top {}", seq, top);
                if expect.is_ok() {
                    seen.insert(seq);
                    top = top.max(seq);
                }
            }
        });
    }

    #[test]
    fn esn_inference_follows_rfc4303_a2() {
        let w = ReplayWindow::new();
        // Before anything: the first subspace.
        assert_eq!(w.infer_esn(1), 1);
        both(&w, (5u64 << 32) | 100).unwrap();
        // Case B: window spans into subspace 4.
        assert_eq!(w.infer_esn(50), (5 << 32) | 50);
        assert_eq!(
            w.infer_esn(u32::MAX - 10),
            (4 << 32) | u64::from(u32::MAX - 10)
        );
        assert_eq!(w.infer_esn(5000), (5 << 32) | 5000);
        let w = ReplayWindow::new();
        both(&w, (7u64 << 32) | u64::from(u32::MAX - 5)).unwrap();
        // Case A: a small low half lies beyond the wrap.
        assert_eq!(w.infer_esn(3), (8 << 32) | 3);
        assert_eq!(
            w.infer_esn(u32::MAX - 100),
            (7 << 32) | u64::from(u32::MAX - 100)
        );
    }

    /// Several threads push the same sequence numbers (each number twice, shuffled): each
    /// number is accepted exactly once overall.
    #[test]
    fn concurrent_workers_accept_each_number_once() {
        let w = Arc::new(ReplayWindow::new());
        let accepted = Arc::new(AtomicU64::new(0));
        let n = 20_000u64;
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = Arc::clone(&w);
                let accepted = Arc::clone(&accepted);
                std::thread::spawn(move || {
                    // Threads 0/1 and 2/3 send the same numbers; odd threads a little reordered.
                    for i in 1..=n {
                        let s = if t % 2 == 1 && i % 8 != 0 { i ^ 1 } else { i };
                        let s = s.max(1);
                        if w.check(s).is_ok() && w.accept(s).is_ok() {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let got = accepted.load(Ordering::Relaxed);
        assert!(got <= n, "{got} accepted out of {n} distinct numbers");
        assert!(got >= n - 2 * WINDOW, "{got}");
        // And every number is now rejected.
        for s in n - WINDOW + 1..=n {
            assert!(both(&w, s).is_err());
        }
    }
}
