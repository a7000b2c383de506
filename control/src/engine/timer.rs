//! An IKE SA's deadlines as data: one [`Timer`] per kind and a [`TimerTable`] holding when
//! each next fires (quinn-proto's `connection/timer.rs` is the shape).
//!
//! Two kinds of entry: the ones an exchange arms and disarms where it happens
//! ([`Timer::Retransmit`], [`Timer::Expire`], [`Timer::RekeyIke`], [`Timer::HardExpiry`]), and
//! the ones that follow from the SA's state — silence, a NAT in front of us, a CHILD_SA's
//! rekey time, a reassembly under way — which `IkeSa::rearm` derives after every input, so
//! no handler can forget them ([`Timer::Dpd`], [`Timer::Keepalive`], [`Timer::RekeyChild`],
//! [`Timer::Reassembly`]). The engine wakes an SA at [`TimerTable::next_timeout`] and runs
//! each entry that [`TimerTable::expire`] reports due.

use std::time::Instant;

/// One kind of deadline of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The outstanding request is sent again, or given up after the last try
    /// ([RFC 7296 § 2.1](https://www.rfc-editor.org/rfc/rfc7296#section-2.1)).
    Retransmit = 0,
    /// A half-open IKE SA, or a rekeyed predecessor that only finishes its Delete, goes.
    Expire = 1,
    /// The fragments of an incomplete message are dropped
    /// ([RFC 7383 § 2.6](https://www.rfc-editor.org/rfc/rfc7383#section-2.6)).
    Reassembly = 2,
    /// The IKE SA is rekeyed.
    RekeyIke = 3,
    /// The IKE SA's keys are worn out (rekey time + over time) and it goes.
    HardExpiry = 4,
    /// The earliest CHILD_SA rekey time.
    RekeyChild = 5,
    /// A liveness check after silence from the peer
    /// ([RFC 7296 § 2.4](https://www.rfc-editor.org/rfc/rfc7296#section-2.4)).
    Dpd = 6,
    /// A NAT keepalive after our own silence behind a NAT
    /// ([RFC 3948 § 4](https://www.rfc-editor.org/rfc/rfc3948#section-4)).
    Keepalive = 7,
    /// A silent MOBIKE peer's hold time ends and its SAs go (the connection's `hold`):
    /// armed while the SA is held.
    Hold = 8,
}

impl Timer {
    /// Every kind, in the order due entries run.
    pub(super) const VALUES: [Timer; 9] = [
        Timer::Hold,
        Timer::Expire,
        Timer::Reassembly,
        Timer::Retransmit,
        Timer::HardExpiry,
        Timer::RekeyIke,
        Timer::RekeyChild,
        Timer::Keepalive,
        Timer::Dpd,
    ];
}

/// When each [`Timer`] of one IKE SA fires next; `None` is disarmed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct TimerTable {
    data: [Option<Instant>; Timer::VALUES.len()],
}

impl TimerTable {
    /// Arms `timer` for `at`, replacing what it was armed for.
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    /// Arms `timer` for `at`, or disarms it with `None`.
    pub(super) fn set_or_stop(&mut self, timer: Timer, at: Option<Instant>) {
        self.data[timer as usize] = at;
    }

    /// When `timer` fires, if it is armed.
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[timer as usize]
    }

    /// Disarms `timer`.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// The earliest armed deadline.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// Whether `timer` is armed and due at `now`.
    pub(super) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// Disarms `timer` if it is due at `now` and says whether it was: each expiry is
    /// handled once.
    pub(super) fn expire(&mut self, timer: Timer, now: Instant) -> bool {
        let due = self.is_expired(timer, now);
        if due {
            self.stop(timer);
        }
        due
    }
}

#[cfg(test)]
// Tests stand in for the daemon: they read the clock.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_armed_entry_is_next_and_expires_once() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Timer::Dpd, t0 + Duration::from_secs(30));
        table.set(Timer::Retransmit, t0 + Duration::from_secs(4));
        table.set_or_stop(Timer::RekeyIke, None);
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(4)));
        assert!(!table.expire(Timer::Retransmit, t0 + Duration::from_secs(3)));
        assert!(table.expire(Timer::Retransmit, t0 + Duration::from_secs(4)));
        assert!(!table.expire(Timer::Retransmit, t0 + Duration::from_secs(5)));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(30)));
        table.stop(Timer::Dpd);
        assert_eq!(table.next_timeout(), None);
    }

    #[test]
    fn every_kind_has_its_own_slot() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        for (i, &t) in Timer::VALUES.iter().enumerate() {
            table.set(t, t0 + Duration::from_secs(i as u64));
        }
        for (i, &t) in Timer::VALUES.iter().enumerate() {
            assert_eq!(
                table.get(t),
                Some(t0 + Duration::from_secs(i as u64)),
                "{t:?}"
            );
        }
    }
}
