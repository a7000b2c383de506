//! Following the gateway's own addresses while it runs. When an address appears on or leaves
//! an interface (a DHCP lease, an operator's `ip addr add`, a second uplink coming up), two
//! things follow within milliseconds, with no restart:
//! - the program's `local_addrs` map, which decides what ESP is steered to the workers: the
//!   addresses of the WAN interfaces, plus the static SAs' local addresses;
//! - the workers' set of the gateway's own addresses (decapsulated packets to one of these go
//!   into the TUN device).
//!
//! Netlink address notifications wake the watcher; it then re-reads every address and applies
//! the difference, so a lost notification only delays a change until the next one or the
//! periodic re-read ([`REREAD`]).

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use roamgate_ebpf::LocalAddrs;

use super::{Shared, is_link_local};
use crate::netlink::{self, Change, ChangeEvents};

/// How often the addresses are re-read with no notification.
const REREAD: Duration = Duration::from_secs(2);
/// How long the watcher waits for a notification before it looks at the stop flag again.
const TICK: Duration = Duration::from_millis(100);

/// What ESP is steered for: the WAN interfaces' addresses and some fixed ones.
#[derive(Debug, Clone)]
pub(crate) struct Steered {
    /// The WAN interfaces' names.
    pub(crate) wan: Vec<String>,
    /// Addresses steered whatever the interfaces hold (the static SAs' local addresses).
    pub(crate) fixed: HashSet<IpAddr>,
}

impl Steered {
    /// The addresses ESP is steered for, given every interface's addresses
    /// ([`netlink::interface_addresses`]).
    pub(crate) fn of(&self, all: &[(String, IpAddr)]) -> HashSet<IpAddr> {
        all.iter()
            .filter(|(name, a)| self.wan.contains(name) && !a.is_loopback() && !is_link_local(a))
            .map(|(_, a)| *a)
            .chain(self.fixed.iter().copied())
            .collect()
    }
}

/// The gateway's own addresses, given every interface's addresses: every one of them, so
/// packets to any of these are for the gateway.
pub(crate) fn own(all: &[(String, IpAddr)]) -> HashSet<IpAddr> {
    all.iter().map(|(_, a)| *a).collect()
}

/// Keeps the `local_addrs` map in `pin_dir` and `shared.local` in step with the interfaces
/// until the gateway stops.
pub(crate) fn follow(pin_dir: &Path, steered: &Steered, shared: &Shared) {
    let mut map = match LocalAddrs::open(pin_dir) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("address changes are not followed: {e}");
            return;
        }
    };
    let events = ChangeEvents::open(&[Change::Addresses])
        .map_err(|e| {
            tracing::warn!(
                "no netlink address notifications ({e}): addresses are re-read every {REREAD:?}"
            )
        })
        .ok();
    let mut in_map: HashSet<IpAddr> = match map.list() {
        Ok(list) => list.into_iter().collect(),
        Err(e) => {
            tracing::error!("address changes are not followed: {e}");
            return;
        }
    };
    let mut last = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        let notified = match &events {
            Some(ev) => ev.wait(TICK),
            None => {
                std::thread::sleep(TICK);
                false
            }
        };
        if !notified && last.elapsed() < REREAD {
            continue;
        }
        last = Instant::now();
        let all = netlink::interface_addresses();
        let now = own(&all);
        if *shared.local.snapshot() != now {
            tracing::info!(addresses = now.len(), "the gateway's own addresses changed");
            shared.local.publish(now);
        }
        let want = steered.of(&all);
        for a in want.difference(&in_map) {
            match map.add(*a) {
                Ok(()) => tracing::info!(address = %a, "address added: ESP to it is steered"),
                Err(e) => tracing::warn!(address = %a, "steering ESP to a new address: {e}"),
            }
        }
        for a in in_map.difference(&want) {
            match map.remove(*a) {
                Ok(_) => {
                    tracing::info!(address = %a, "address gone: ESP to it is no longer steered")
                }
                Err(e) => tracing::warn!(address = %a, "removing an address: {e}"),
            }
        }
        in_map = want;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_is_steered_for_wan_addresses_and_fixed_ones_only() {
        let all: Vec<(String, IpAddr)> = [
            ("wan1", "198.18.1.1"),
            ("wan1", "fe80::1"),
            ("wan2", "fd00:18:2::1"),
            ("lan", "10.101.0.1"),
            ("lo", "127.0.0.1"),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_string(), a.parse().unwrap()))
        .collect();
        let steered = Steered {
            wan: vec!["wan1".into(), "wan2".into(), "lo".into()],
            fixed: ["192.0.2.7".parse().unwrap()].into_iter().collect(),
        };
        let want: HashSet<IpAddr> = ["198.18.1.1", "fd00:18:2::1", "192.0.2.7"]
            .into_iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(steered.of(&all), want);
        assert_eq!(own(&all).len(), 5);
    }
}
