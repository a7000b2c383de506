//! Following the host's addresses, so that MOBIKE SAs move when a link or an address goes
//! away or comes back ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)).
//!
//! A [`HostWatch`] (in `roamgate control`: the gateway crate's netlink module, subscribed to
//! links, addresses and routes) says that something may have changed; the daemon waits
//! [`SETTLE`] for the burst a change makes (a link going down removes its routes, its
//! addresses may follow), then re-reads the addresses that can carry traffic and hands the
//! engine the new set when it differs ([`Engine::set_local_addresses`]). It also re-reads
//! every [`REREAD`], so a lost notification (a full socket buffer) only delays a change.
//!
//! An address counts when its interface is up and has carrier: an unplugged cable leaves the
//! address on the interface, but nothing reaches the peer from it any more. Loopback and
//! link-local addresses are part of the set (a connection may be configured on them); the
//! engine uses them only for a peer of the same scope.
//!
//! [`Engine::set_local_addresses`]: crate::engine::Engine::set_local_addresses

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::engine::path::HostAddress;

/// How long after the first notification of a burst the addresses are read.
pub const SETTLE: Duration = Duration::from_millis(20);

/// How often the addresses are re-read without a notification.
pub const REREAD: Duration = Duration::from_secs(2);

/// The host's view of its own addresses.
pub trait HostWatch: Send {
    /// A descriptor that becomes readable when links, addresses or routes may have changed;
    /// `None` when there is none (then only the periodic re-read sees changes).
    fn notifications(&self) -> Option<RawFd>;

    /// Reads every pending notification without waiting.
    fn drain(&mut self);

    /// Every address of an interface that is up and has carrier, with the interface's name,
    /// in the interfaces' order.
    fn usable_addresses(&mut self) -> Vec<HostAddress>;
}

/// The daemon's side of a [`HostWatch`]: when to read, and what was read last.
pub(super) struct Follower {
    watch: Box<dyn HostWatch>,
    /// When to read after a notification.
    due: Option<Instant>,
    /// When to read anyway.
    reread: Instant,
    /// What the engine was given last.
    last: Option<Vec<HostAddress>>,
}

impl Follower {
    pub(super) fn new(watch: Box<dyn HostWatch>, now: Instant) -> Follower {
        Follower {
            watch,
            due: None,
            reread: now,
            last: None,
        }
    }

    pub(super) fn fd(&self) -> Option<RawFd> {
        self.watch.notifications()
    }

    /// The descriptor was readable: read again once the burst has settled.
    pub(super) fn notified(&mut self, now: Instant) {
        self.watch.drain();
        self.due.get_or_insert(now + SETTLE);
    }

    /// When [`Follower::poll`] next has something to do.
    pub(super) fn deadline(&self) -> Instant {
        self.due.map_or(self.reread, |d| d.min(self.reread))
    }

    /// The new address set when it is time to read and it changed.
    pub(super) fn poll(&mut self, now: Instant) -> Option<Vec<HostAddress>> {
        if now < self.deadline() {
            return None;
        }
        self.due = None;
        self.reread = now + REREAD;
        let mut now_usable: Vec<HostAddress> = Vec::new();
        for a in self.watch.usable_addresses() {
            if !a.address.is_unspecified() && !now_usable.iter().any(|u| u.address == a.address) {
                now_usable.push(a);
            }
        }
        if self.last.as_ref() == Some(&now_usable) {
            return None;
        }
        self.last = Some(now_usable.clone());
        Some(now_usable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::sync::{Arc, Mutex};

    struct Fake(Arc<Mutex<Vec<IpAddr>>>);

    impl HostWatch for Fake {
        fn notifications(&self) -> Option<RawFd> {
            None
        }
        fn drain(&mut self) {}
        fn usable_addresses(&mut self) -> Vec<HostAddress> {
            let addrs = self.0.lock().unwrap().clone();
            addrs
                .into_iter()
                .map(|a| HostAddress::new("eth0", a))
                .collect()
        }
    }

    fn ip(s: &str) -> HostAddress {
        HostAddress::new("eth0", s.parse().unwrap())
    }

    fn set(host: &Mutex<Vec<IpAddr>>, addrs: &[&str]) {
        *host.lock().unwrap() = addrs.iter().map(|a| a.parse().unwrap()).collect();
    }

    #[test]
    fn a_change_is_read_after_it_settles_and_only_a_change_is_reported() {
        let host = Arc::new(Mutex::new(Vec::new()));
        set(&host, &["198.18.1.1", "127.0.0.1"]);
        let t0 = Instant::now();
        let mut f = Follower::new(Box::new(Fake(host.clone())), t0);
        assert_eq!(f.poll(t0), Some(vec![ip("198.18.1.1"), ip("127.0.0.1")]));
        assert_eq!(f.deadline(), t0 + REREAD);
        set(&host, &["0.0.0.0", "198.18.2.1", "198.18.2.1"]);
        let t1 = t0 + Duration::from_millis(100);
        f.notified(t1);
        f.notified(t1 + Duration::from_millis(5));
        assert_eq!(
            f.deadline(),
            t1 + SETTLE,
            "the first notification sets the time"
        );
        assert_eq!(
            f.poll(t1 + Duration::from_millis(10)),
            None,
            "not settled yet"
        );
        assert_eq!(f.poll(t1 + SETTLE), Some(vec![ip("198.18.2.1")]));
        assert_eq!(f.poll(t1 + SETTLE + REREAD), None, "unchanged");
    }
}
