//! The workers' view of the SA table: ready-to-use SAs (keys expanded, replay windows and
//! sequence counters shared by every worker), rebuilt by one sync thread whenever slots
//! change, and handed to the workers as an immutable snapshot they pick up at the start of a
//! batch. The sync thread reads every slot once when it starts; after that it reads only the
//! slots the SA table's change bitmap (`sa_dirty`) names, so its cost follows the changes,
//! not the table's size.
//!
//! The sync thread also keeps the outbound sequence numbers safe across restarts: before an
//! outbound SA sends, a block of [`SEQ_RESERVE`] sequence numbers above its counter is written
//! to the pinned `sa_seq` map, and the block is extended while packets flow. A restarted
//! gateway starts each SA at the reserved mark, so it never reuses a (key, IV) pair — at the
//! cost of skipping at most one block per restart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use roamgate_ebpf::abi::{self, SaRecord};
use roamgate_ebpf::{Prefix, SaTable};

use super::published::Published;

use crate::esp::{BeetAddrs, InboundSa, Lifetime, Mode, OutboundSa, OuterPolicy, SaConfig};

/// Sequence numbers reserved ahead of the outbound counter in the pinned `sa_seq` map.
pub const SEQ_RESERVE: u64 = 1 << 22;

/// How often the sync thread looks at the SA table's change bitmap: a new SA (say the
/// CHILD_SA a peer rekeys right after a MOBIKE move) carries traffic at most this long after
/// the control process wrote it. A look is one pass over the mmapped bitmap (8 KiB for
/// 65 536 slots).
const SYNC_PERIOD: Duration = Duration::from_millis(1);

/// Every this many looks (5 ms), the busy outbound SAs' sequence number reservations are
/// extended: half a reservation is 2^21 packets, so an SA would have to send 400 million
/// packets a second to outrun it; checking is a pass over every outbound SA.
const RESERVE_EVERY: u32 = 5;

/// An inbound SA with its traffic selectors.
#[derive(Debug)]
pub struct InboundEntry {
    /// Its slot.
    pub slot: u32,
    /// The record's generation it was built from.
    pub generation: u32,
    /// The SA.
    pub sa: InboundSa,
    /// Our protected prefixes: inner destinations must lie in one (empty: any).
    pub local_ts: Vec<Prefix>,
    /// The peer's protected prefixes: inner sources must lie in one (empty: any).
    pub remote_ts: Vec<Prefix>,
}

/// An outbound SA with its traffic selectors.
#[derive(Debug)]
pub struct OutboundEntry {
    /// Its slot (also the endpoint table's slot).
    pub slot: u32,
    /// The record's generation it was built from.
    pub generation: u32,
    /// The SA.
    pub sa: OutboundSa,
    /// Our protected prefixes: inner sources must lie in one (empty: any).
    pub local_ts: Vec<Prefix>,
    /// The peer's protected prefixes (the LAN side steers these to this SA).
    pub remote_ts: Vec<Prefix>,
    reserved: AtomicU64,
}

/// Whether `addr` lies in one of `ts` (an empty list allows everything).
pub fn selected(ts: &[Prefix], addr: IpAddr) -> bool {
    ts.is_empty() || ts.iter().any(|p| p.contains(addr))
}

/// One immutable view of every SA.
#[derive(Debug, Default)]
pub struct SaSnapshot {
    /// Inbound SAs by SPI.
    pub inbound: HashMap<u32, Arc<InboundEntry>>,
    /// Outbound SAs by slot.
    pub outbound: HashMap<u32, Arc<OutboundEntry>>,
    /// Protected prefixes → outbound slot.
    prefixes: PrefixIndex,
}

impl SaSnapshot {
    /// The outbound SA for a LAN packet to `dst` (longest prefix match).
    pub fn outbound_for(&self, dst: IpAddr) -> Option<&Arc<OutboundEntry>> {
        self.outbound.get(&self.prefixes.lookup(dst)?)
    }
}

/// Longest-prefix match of the outbound SAs' remote prefixes: one hash map per prefix
/// length in use, longest first, so a lookup costs one hash probe per length in use
/// whatever the number of SAs. Two SAs with the same prefix: the lower slot wins.
#[derive(Debug, Default)]
pub struct PrefixIndex {
    v4: Vec<(u8, HashMap<u32, u32>)>,
    v6: Vec<(u8, HashMap<u128, u32>)>,
}

/// `addr` with all but its first `len` bits cleared.
fn mask<T>(addr: T, len: u8) -> T
where
    T: std::ops::Shl<u32, Output = T>
        + std::ops::BitAnd<Output = T>
        + std::ops::Not<Output = T>
        + From<u8>
        + Copy,
{
    let bits = (size_of::<T>() * 8) as u32;
    let len = u32::from(len).min(bits);
    if len == 0 {
        return T::from(0);
    }
    addr & (!T::from(0) << (bits - len))
}

fn insert_len<K: std::hash::Hash + Eq>(
    table: &mut Vec<(u8, HashMap<K, u32>)>,
    len: u8,
    key: K,
    slot: u32,
) {
    let i = match table.iter().position(|(l, _)| *l == len) {
        Some(i) => i,
        None => {
            let i = table.partition_point(|(l, _)| *l > len);
            table.insert(i, (len, HashMap::new()));
            i
        }
    };
    table[i]
        .1
        .entry(key)
        .and_modify(|s| *s = (*s).min(slot))
        .or_insert(slot);
}

impl PrefixIndex {
    /// Adds `prefix` → `slot`.
    pub fn insert(&mut self, prefix: &Prefix, slot: u32) {
        match prefix.addr() {
            IpAddr::V4(a) => insert_len(
                &mut self.v4,
                prefix.len(),
                mask(u32::from(a), prefix.len()),
                slot,
            ),
            IpAddr::V6(a) => insert_len(
                &mut self.v6,
                prefix.len(),
                mask(u128::from(a), prefix.len()),
                slot,
            ),
        }
    }

    /// The slot of the longest prefix holding `dst`.
    pub fn lookup(&self, dst: IpAddr) -> Option<u32> {
        match dst {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(len, m)| m.get(&mask(a, *len)).copied())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(len, m)| m.get(&mask(a, *len)).copied())
            }
        }
    }
}

/// The snapshot the workers read and the sync thread replaces.
pub type Registry = Published<SaSnapshot>;

fn prefixes(list: &[abi::PrefixRecord], n: u8) -> Vec<Prefix> {
    list[..usize::from(n).min(list.len())]
        .iter()
        .filter_map(Prefix::from_record)
        .collect()
}

fn sa_config<'k>(r: &'k SaRecord) -> Option<SaConfig<'k>> {
    let mode = match r.mode {
        abi::SA_MODE_TUNNEL => Mode::Tunnel,
        abi::SA_MODE_BEET => Mode::Beet(BeetAddrs {
            src: r.beet_src.addr()?,
            dst: r.beet_dst.addr()?,
        }),
        _ => return None,
    };
    let limit = |v: u64| if v == 0 { u64::MAX } else { v };
    Some(SaConfig {
        spi: u32::from_be(r.spi),
        keymat: r.key.get(..usize::from(r.key_len))?,
        mode,
        esn: r.flags & abi::SA_F_ESN != 0,
        lifetime: Lifetime {
            soft_packets: limit(r.soft_packets),
            hard_packets: limit(r.hard_packets),
            soft_bytes: limit(r.soft_bytes),
            hard_bytes: limit(r.hard_bytes),
        },
    })
}

/// Keeps the [`Registry`] in step with the SA table until `stop` is set.
pub(crate) fn sync(table: &SaTable, registry: &Registry, stop: &AtomicBool) {
    let slots = table.slots();
    let mut known = vec![0u32; slots as usize];
    let mut inbound: HashMap<u32, Arc<InboundEntry>> = HashMap::new();
    let mut outbound: HashMap<u32, Arc<OutboundEntry>> = HashMap::new();
    // Every slot once (what is already there), then the changed ones. Bits set before the
    // first scan are dropped: the scan sees those writes.
    table.take_changed(|_| {});
    let mut pending: Vec<u32> = (0..slots).collect();
    let mut first = true;
    let mut looks: u32 = 0;
    while !stop.load(Ordering::Acquire) {
        looks = looks.wrapping_add(1);
        let mut changed = first;
        first = false;
        let mut retry = Vec::new();
        for slot in pending.drain(..) {
            let g = table.generation(slot);
            if g == known[slot as usize] {
                continue;
            }
            let Some(record) = table.read(slot) else {
                retry.push(slot); // being written: next round
                continue;
            };
            known[slot as usize] = record.generation;
            changed = true;
            inbound.retain(|_, e| e.slot != slot);
            // A replaced SA's numbers belong to its own key: nothing to carry over (workers
            // still holding it finish with it).
            outbound.remove(&slot);
            if record.state != abi::SA_STATE_ACTIVE {
                tracing::info!(slot, "SA removed");
                continue;
            }
            let Some(config) = sa_config(&record) else {
                tracing::warn!(slot, "SA record malformed; ignored");
                continue;
            };
            let local_ts = prefixes(&record.local_ts, record.n_local_ts);
            let remote_ts = prefixes(&record.remote_ts, record.n_remote_ts);
            match record.direction {
                abi::SA_DIR_IN => match InboundSa::new(&config) {
                    Ok(sa) => {
                        tracing::info!(
                            slot,
                            spi = format_args!("{:#010x}", config.spi),
                            "inbound SA ready"
                        );
                        inbound.insert(
                            config.spi,
                            Arc::new(InboundEntry {
                                slot,
                                generation: record.generation,
                                sa,
                                local_ts,
                                remote_ts,
                            }),
                        );
                    }
                    Err(e) => tracing::warn!(slot, "inbound SA refused: {e}"),
                },
                abi::SA_DIR_OUT => {
                    let next = table.persisted_seq(slot).max(1);
                    let reserved = next + SEQ_RESERVE;
                    // Reserve before the first packet can use a number.
                    table.persist_seq(slot, reserved);
                    match OutboundSa::with_next_seq(&config, OuterPolicy::default(), next) {
                        Ok(sa) => {
                            tracing::info!(
                                slot,
                                spi = format_args!("{:#010x}", config.spi),
                                next_seq = next,
                                "outbound SA ready"
                            );
                            outbound.insert(
                                slot,
                                Arc::new(OutboundEntry {
                                    slot,
                                    generation: record.generation,
                                    sa,
                                    local_ts,
                                    remote_ts,
                                    reserved: AtomicU64::new(reserved),
                                }),
                            );
                        }
                        Err(e) => tracing::warn!(slot, "outbound SA refused: {e}"),
                    }
                }
                other => tracing::warn!(slot, direction = other, "SA of unknown direction ignored"),
            }
        }
        // Extend the reservation of busy SAs (and of new ones at once: `changed`).
        for e in outbound
            .values()
            .filter(|_| changed || looks.is_multiple_of(RESERVE_EVERY))
        {
            let last = e.sa.last_seq();
            let reserved = e.reserved.load(Ordering::Relaxed);
            if last + SEQ_RESERVE / 2 >= reserved {
                let more = last + SEQ_RESERVE;
                table.persist_seq(e.slot, more);
                e.reserved.store(more, Ordering::Relaxed);
            }
        }
        if changed {
            let mut prefixes = PrefixIndex::default();
            for e in outbound.values() {
                for p in &e.remote_ts {
                    prefixes.insert(p, e.slot);
                }
            }
            registry.publish(SaSnapshot {
                inbound: inbound.clone(),
                outbound: outbound.clone(),
                prefixes,
            });
        }
        std::thread::sleep(SYNC_PERIOD);
        pending = retry;
        table.take_changed(|slot| pending.push(slot));
    }
    // Leave the counters where a restart continues safely.
    for e in outbound.values() {
        table.persist_seq(e.slot, e.sa.last_seq() + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins_and_selectors_match() {
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        let mut snap = SaSnapshot::default();
        snap.prefixes.insert(&p("10.1.0.0/16"), 1);
        snap.prefixes.insert(&p("10.1.2.0/24"), 3);
        let key = [7u8; 20];
        let cfg = SaConfig {
            spi: 0x1000,
            keymat: &key,
            mode: Mode::Tunnel,
            esn: false,
            lifetime: Lifetime::UNLIMITED,
        };
        for slot in [1, 3] {
            snap.outbound.insert(
                slot,
                Arc::new(OutboundEntry {
                    slot,
                    generation: 1,
                    sa: OutboundSa::new(&cfg, OuterPolicy::default()).unwrap(),
                    local_ts: vec![],
                    remote_ts: vec![],
                    reserved: AtomicU64::new(0),
                }),
            );
        }
        assert_eq!(
            snap.outbound_for("10.1.2.9".parse().unwrap()).unwrap().slot,
            3
        );
        assert_eq!(
            snap.outbound_for("10.1.3.9".parse().unwrap()).unwrap().slot,
            1
        );
        assert!(snap.outbound_for("10.2.0.1".parse().unwrap()).is_none());
        assert!(selected(&[], "192.0.2.1".parse().unwrap()));
        assert!(!selected(&[p("10.0.0.0/8")], "192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn the_prefix_index_matches_a_linear_longest_prefix_search() {
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        let list = [
            (p("0.0.0.0/0"), 9),
            (p("10.0.0.0/8"), 5),
            (p("10.1.0.0/16"), 7),
            (p("10.1.0.0/16"), 2),
            (p("10.1.2.3/32"), 4),
            (p("10.1.2.0/23"), 6),
            (p("::/0"), 11),
            (p("fd00::/8"), 12),
            (p("fd00:1::/64"), 13),
            (p("fd00:1::7/128"), 14),
        ];
        let mut index = PrefixIndex::default();
        for (prefix, slot) in &list {
            index.insert(prefix, *slot);
        }
        let linear = |dst: IpAddr| {
            list.iter()
                .filter(|(p, _)| p.contains(dst))
                .max_by(|a, b| a.0.len().cmp(&b.0.len()).then(b.1.cmp(&a.1)))
                .map(|(_, s)| *s)
        };
        for dst in [
            "10.1.2.3",
            "10.1.2.4",
            "10.1.3.1",
            "10.1.4.1",
            "10.2.0.1",
            "192.0.2.1",
            "fd00:1::7",
            "fd00:1::8",
            "fd00:2::1",
            "2001:db8::1",
        ] {
            let dst: IpAddr = dst.parse().unwrap();
            assert_eq!(index.lookup(dst), linear(dst), "{dst}");
        }
        assert_eq!(index.lookup("10.1.9.9".parse().unwrap()), Some(2));
        assert_eq!(
            PrefixIndex::default().lookup("10.0.0.1".parse().unwrap()),
            None
        );
    }
}
