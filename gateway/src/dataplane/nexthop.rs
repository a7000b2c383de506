//! Next hops: the kernel's route and neighbour tables mirrored over netlink into a snapshot the
//! workers read without system calls.
//!
//! A worker that misses (no entry for a destination yet, or no MAC for its next hop) hands
//! the packet to the kernel through the exception path — which also makes the kernel resolve
//! the neighbour — counts it, and asks for the destination here. The resolver thread answers
//! asked-for destinations at once and refreshes every known one every [`REFRESH`], so a MAC
//! or route change reaches the workers within that time.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::published::Published;
use crate::netlink::{self, Netlink};

/// How often every known destination is resolved again.
pub const REFRESH: Duration = Duration::from_millis(100);

/// What is resolved: a destination, seen from a source address (policy routing may send
/// each uplink's traffic its own way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HopKey {
    /// The source address, when it matters (outer packets); `None` for forwarded ones.
    pub src: Option<IpAddr>,
    /// The destination.
    pub dst: IpAddr,
}

/// A resolved next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The egress interface.
    pub ifindex: u32,
    /// The next hop's MAC.
    pub dst_mac: [u8; 6],
    /// The egress interface's MAC.
    pub src_mac: [u8; 6],
    /// The egress interface's MTU.
    pub mtu: u32,
}

/// The shared next-hop table.
#[derive(Debug, Default)]
pub struct NextHops {
    table: Published<HashMap<HopKey, Hop>>,
    wanted: Mutex<HashSet<HopKey>>,
    wake: Condvar,
}

impl NextHops {
    /// The resolved next hops the workers read.
    pub fn table(&self) -> &Published<HashMap<HopKey, Hop>> {
        &self.table
    }

    /// Asks the resolver for `key`.
    pub fn want(&self, key: HopKey) {
        let mut w = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        if w.insert(key) {
            self.wake.notify_one();
        }
    }

    fn publish(&self, table: HashMap<HopKey, Hop>) {
        self.table.publish(table);
    }
}

/// Resolves wanted and known destinations until `stop` is set.
pub(crate) fn resolve(hops: &NextHops, stop: &AtomicBool) {
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => {
            tracing::error!(
                "netlink socket for next-hop resolution: {e}; every packet takes the exception path"
            );
            return;
        }
    };
    let mut known: HashSet<HopKey> = HashSet::new();
    let mut table: HashMap<HopKey, Hop> = HashMap::new();
    let mut last_full = Instant::now() - REFRESH;
    while !stop.load(Ordering::Acquire) {
        let wanted: Vec<HopKey> = {
            let w = hops.wanted.lock().unwrap_or_else(|p| p.into_inner());
            let (mut w, _) = hops
                .wake
                .wait_timeout_while(w, Duration::from_millis(10), |w| {
                    w.is_empty() && !stop.load(Ordering::Acquire)
                })
                .unwrap_or_else(|p| p.into_inner());
            w.drain().collect()
        };
        let full = last_full.elapsed() >= REFRESH;
        if wanted.is_empty() && !full {
            continue;
        }
        known.extend(wanted.iter().copied());
        let keys: Vec<HopKey> = if full {
            last_full = Instant::now();
            known.iter().copied().collect()
        } else {
            wanted
        };
        let neighbours = match nl.neighbours() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("reading the neighbour table: {e}");
                continue;
            }
        };
        let mut links: HashMap<u32, Option<([u8; 6], u32)>> = HashMap::new();
        let mut next = if full { HashMap::new() } else { table.clone() };
        for key in keys {
            let route = match nl.route_get(key.dst, key.src) {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(?key, "no route: {e}");
                    next.remove(&key);
                    continue;
                }
            };
            let Some(mac) = neighbours
                .iter()
                .find(|n| n.ifindex == route.ifindex && n.addr == route.next_hop)
                .map(|n| n.mac)
            else {
                next.remove(&key);
                continue;
            };
            let Some((src_mac, mtu)) = *links
                .entry(route.ifindex)
                .or_insert_with(|| netlink::link_info(route.ifindex).ok())
            else {
                next.remove(&key);
                continue;
            };
            next.insert(
                key,
                Hop {
                    ifindex: route.ifindex,
                    dst_mac: mac,
                    src_mac,
                    mtu,
                },
            );
        }
        if next != table {
            tracing::debug!(entries = next.len(), "next hops updated");
            table = next;
            hops.publish(table.clone());
        }
        // Bounded work: at most one resolution round per millisecond, however many misses.
        std::thread::sleep(Duration::from_millis(1));
    }
}
