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

use super::{Shared, is_link_local, tun};
use crate::netlink::{self, AddressEvents};

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
    /// The addresses ESP is steered for now.
    pub(crate) fn current(&self) -> HashSet<IpAddr> {
        self.wan
            .iter()
            .flat_map(|name| netlink::addresses(name))
            .filter(|a| !a.is_loopback() && !is_link_local(a))
            .chain(self.fixed.iter().copied())
            .collect()
    }
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
    let events = AddressEvents::open()
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
        let own = tun::local_addresses();
        if *shared.local.snapshot() != own {
            tracing::info!(addresses = own.len(), "the gateway's own addresses changed");
            shared.local.publish(own);
        }
        let want = steered.current();
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
