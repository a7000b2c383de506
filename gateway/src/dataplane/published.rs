//! A value one thread replaces and the workers read: a worker checks the version (one atomic
//! load) at the start of a batch and takes the new snapshot only when it changed, so readers
//! never wait for the writer and never see a half-made value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The current snapshot of a `T` and its version.
#[derive(Debug, Default)]
pub struct Published<T> {
    current: Mutex<Arc<T>>,
    version: AtomicU64,
}

impl<T> Published<T> {
    /// Starts with `value`, version 0.
    pub fn new(value: T) -> Published<T> {
        Published {
            current: Mutex::new(Arc::new(value)),
            version: AtomicU64::new(0),
        }
    }

    /// The version of the current snapshot (one atomic load).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<T> {
        Arc::clone(&self.current.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the snapshot with `value` and bumps the version.
    pub fn publish(&self, value: T) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

/// A worker's copy of a [`Published`] value, refreshed when its version moved.
#[derive(Debug)]
pub struct Cached<T> {
    value: Arc<T>,
    version: u64,
}

impl<T> Cached<T> {
    /// The current snapshot of `source`.
    pub fn of(source: &Published<T>) -> Cached<T> {
        let version = source.version();
        Cached {
            value: source.snapshot(),
            version,
        }
    }

    /// Takes `source`'s snapshot if it changed since the last call.
    pub fn refresh(&mut self, source: &Published<T>) {
        let v = source.version();
        if v != self.version {
            self.value = source.snapshot();
            self.version = v;
        }
    }

    /// The snapshot.
    pub fn get(&self) -> &Arc<T> {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_a_new_value_after_a_publish_and_keep_theirs_until_they_refresh() {
        let p = Published::new(1);
        let mut c = Cached::of(&p);
        assert_eq!(**c.get(), 1);
        p.publish(2);
        assert_eq!(**c.get(), 1);
        c.refresh(&p);
        assert_eq!(**c.get(), 2);
        assert_eq!(p.version(), 1);
    }
}
