//! The IKE SAs of an engine, in a slab, so that a handler works on one SA in place and
//! still sees every other ([`SaTable::split`]): nothing is taken out of the table while an
//! exchange runs, so no engine-wide scan (the CHILD_SA SPI rebuild, INITIAL_CONTACT, the
//! status listing) can miss an SA.

use std::collections::HashMap;

use super::IkeSaHandle;
use super::ike_sa::IkeSa;

/// Every IKE SA, by handle.
#[derive(Default)]
pub(super) struct SaTable {
    slots: Vec<Option<IkeSa>>,
    /// Handle → slot. An entry whose slot was emptied through [`Others::remove`] is ignored
    /// by [`SaTable::get`] and dropped by [`SaTable::reap`].
    index: HashMap<IkeSaHandle, usize>,
    /// Empty slots.
    free: Vec<usize>,
    /// The SAs taken out through [`Others::remove`] since the last [`SaTable::reap`], with
    /// their slots.
    removed: Vec<(IkeSaHandle, usize)>,
}

/// Every SA of a table but the one a handler holds (see [`SaTable::split`]).
pub(super) struct Others<'a> {
    before: &'a mut [Option<IkeSa>],
    after: &'a mut [Option<IkeSa>],
    removed: &'a mut Vec<(IkeSaHandle, usize)>,
}

impl SaTable {
    fn slot(&self, handle: IkeSaHandle) -> Option<usize> {
        let &i = self.index.get(&handle)?;
        self.slots[i]
            .as_ref()
            .is_some_and(|sa| sa.handle == handle)
            .then_some(i)
    }

    pub(super) fn get(&self, handle: IkeSaHandle) -> Option<&IkeSa> {
        self.slot(handle).and_then(|i| self.slots[i].as_ref())
    }

    pub(super) fn get_mut(&mut self, handle: IkeSaHandle) -> Option<&mut IkeSa> {
        self.slot(handle).and_then(|i| self.slots[i].as_mut())
    }

    /// The SA `handle` and, beside it, every other SA.
    pub(super) fn split(&mut self, handle: IkeSaHandle) -> Option<(&mut IkeSa, Others<'_>)> {
        let i = self.slot(handle)?;
        let (before, rest) = self.slots.split_at_mut(i);
        let (this, after) = rest.split_first_mut()?;
        let removed = &mut self.removed;
        Some((
            this.as_mut()?,
            Others {
                before,
                after,
                removed,
            },
        ))
    }

    /// Adds an SA (its handle must be new).
    pub(super) fn insert(&mut self, sa: IkeSa) {
        let handle = sa.handle;
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(sa);
                i
            }
            None => {
                self.slots.push(Some(sa));
                self.slots.len() - 1
            }
        };
        self.index.insert(handle, i);
    }

    pub(super) fn remove(&mut self, handle: IkeSaHandle) -> Option<IkeSa> {
        let i = self.slot(handle)?;
        self.index.remove(&handle);
        self.free.push(i);
        self.slots[i].take()
    }

    /// Drops the index entries of SAs removed through [`Others::remove`] and frees their
    /// slots (O(removed), not O(table): it runs after every input).
    pub(super) fn reap(&mut self) {
        for (handle, slot) in self.removed.drain(..) {
            if self.index.get(&handle) == Some(&slot) {
                self.index.remove(&handle);
            }
            self.free.push(slot);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.index.len() - self.removed.len()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &IkeSa> {
        self.slots.iter().flatten()
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut IkeSa> {
        self.slots.iter_mut().flatten()
    }

    pub(super) fn handles(&self) -> Vec<IkeSaHandle> {
        self.values().map(|sa| sa.handle).collect()
    }
}

impl Others<'_> {
    /// No other SA (for tests of one SA's handlers).
    #[cfg(test)]
    pub(super) fn empty(removed: &mut Vec<(IkeSaHandle, usize)>) -> Others<'_> {
        Others {
            before: &mut [],
            after: &mut [],
            removed,
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &IkeSa> {
        self.before.iter().chain(self.after.iter()).flatten()
    }

    /// Takes an SA out of the table (its index entry goes at the next [`SaTable::reap`]).
    pub(super) fn remove(&mut self, handle: IkeSaHandle) -> Option<IkeSa> {
        let is = |s: &Option<IkeSa>| s.as_ref().is_some_and(|sa| sa.handle == handle);
        // The slot's index in the whole table: `before` starts at 0, `after` right after the
        // SA the handler holds.
        let at = match self.before.iter().position(is) {
            Some(i) => i,
            None => self.before.len() + 1 + self.after.iter().position(is)?,
        };
        let slot = match at.checked_sub(self.before.len() + 1) {
            None => &mut self.before[at],
            Some(i) => &mut self.after[i],
        };
        self.removed.push((handle, at));
        slot.take()
    }
}

#[cfg(test)]
// Tests stand in for the daemon: they read the clock.
#[allow(clippy::disallowed_methods)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::engine::exchange::ike_auth::tests::conn;

    fn sa(handle: u64) -> IkeSa {
        IkeSa::half_open(
            IkeSaHandle(handle),
            0,
            Arc::new(conn()),
            true,
            "192.0.2.1:500".parse().unwrap(),
            "192.0.2.2:500".parse().unwrap(),
            Instant::now(),
        )
    }

    fn handles<'a>(it: impl Iterator<Item = &'a IkeSa>) -> Vec<u64> {
        let mut v: Vec<u64> = it.map(|sa| sa.handle.0).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn a_split_holds_one_sa_in_place_and_shows_every_other() {
        let mut t = SaTable::default();
        for h in 1..=4 {
            t.insert(sa(h));
        }
        let (this, others) = t.split(IkeSaHandle(3)).unwrap();
        this.spi_i = 33;
        assert_eq!(handles(others.iter()), [1, 2, 4]);
        assert_eq!(t.get(IkeSaHandle(3)).unwrap().spi_i, 33);
        assert!(t.split(IkeSaHandle(9)).is_none());
    }

    #[test]
    fn an_sa_removed_beside_a_handler_is_gone_at_once_and_its_slot_is_reused_after_reaping() {
        let mut t = SaTable::default();
        for h in 1..=3 {
            t.insert(sa(h));
        }
        let (_, mut others) = t.split(IkeSaHandle(2)).unwrap();
        assert_eq!(
            others.remove(IkeSaHandle(1)).unwrap().handle,
            IkeSaHandle(1)
        );
        assert!(others.remove(IkeSaHandle(1)).is_none());
        assert!(t.get(IkeSaHandle(1)).is_none());
        assert_eq!(t.len(), 2);
        t.reap();
        t.insert(sa(7));
        assert_eq!(t.slots.len(), 3, "the emptied slot is reused");
        assert_eq!(handles(t.values()), [2, 3, 7]);
        assert!(t.get(IkeSaHandle(1)).is_none());
        assert_eq!(t.remove(IkeSaHandle(7)).unwrap().handle, IkeSaHandle(7));
        assert!(t.remove(IkeSaHandle(7)).is_none());
        assert_eq!(handles(t.values()), [2, 3]);
    }
}
