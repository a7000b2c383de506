//! The workers' view of the SA table: ready-to-use SAs (keys expanded, replay windows and
//! sequence counters shared by every worker), rebuilt by one sync thread whenever a slot's
//! generation changes, and handed to the workers as an immutable snapshot they pick up at the
//! start of a batch.
//!
//! The sync thread also keeps the outbound sequence numbers safe across restarts: before an
//! outbound SA sends, a block of [`SEQ_RESERVE`] sequence numbers above its counter is written
//! to the pinned `sa_seq` map, and the block is extended while packets flow. A restarted
//! gateway starts each SA at the reserved mark, so it never reuses a (key, IV) pair — at the
//! cost of skipping at most one block per restart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roamgate_ebpf::abi::{self, SaRecord};
use roamgate_ebpf::{Prefix, SaTable};

use crate::esp::{BeetAddrs, InboundSa, Lifetime, Mode, OutboundSa, OuterPolicy, SaConfig};

/// Sequence numbers reserved ahead of the outbound counter in the pinned `sa_seq` map.
pub const SEQ_RESERVE: u64 = 1 << 22;

/// How often the sync thread looks at the SA table's generations.
const SYNC_PERIOD: Duration = Duration::from_millis(5);

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
    /// Protected prefixes → outbound slot, longest first.
    prefixes: Vec<(Prefix, u32)>,
}

impl SaSnapshot {
    /// The outbound SA for a LAN packet to `dst` (longest prefix match).
    pub fn outbound_for(&self, dst: IpAddr) -> Option<&Arc<OutboundEntry>> {
        let slot = self
            .prefixes
            .iter()
            .find(|(p, _)| p.contains(dst))
            .map(|(_, s)| *s)?;
        self.outbound.get(&slot)
    }
}

/// The snapshot the workers read and the sync thread replaces.
#[derive(Debug, Default)]
pub struct Registry {
    current: Mutex<Arc<SaSnapshot>>,
    version: AtomicU64,
}

impl Registry {
    /// The version of the current snapshot (one atomic load).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<SaSnapshot> {
        Arc::clone(&self.current.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn publish(&self, snapshot: SaSnapshot) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

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
    let mut first = true;
    while !stop.load(Ordering::Acquire) {
        let mut changed = first;
        first = false;
        for slot in 0..slots {
            let g = table.generation(slot);
            if g == known[slot as usize] {
                continue;
            }
            let Some(record) = table.read(slot) else {
                continue; // being written: next round
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
        // Extend the reservation of busy SAs.
        for e in outbound.values() {
            let last = e.sa.last_seq();
            let reserved = e.reserved.load(Ordering::Relaxed);
            if last + SEQ_RESERVE / 2 >= reserved {
                let more = last + SEQ_RESERVE;
                table.persist_seq(e.slot, more);
                e.reserved.store(more, Ordering::Relaxed);
            }
        }
        if changed {
            let mut prefixes: Vec<(Prefix, u32)> = outbound
                .values()
                .flat_map(|e| e.remote_ts.iter().map(move |p| (*p, e.slot)))
                .collect();
            prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
            registry.publish(SaSnapshot {
                inbound: inbound.clone(),
                outbound: outbound.clone(),
                prefixes,
            });
        }
        std::thread::sleep(SYNC_PERIOD);
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
        let mut snap = SaSnapshot {
            prefixes: vec![(p("10.1.2.0/24"), 3), (p("10.1.0.0/16"), 1)],
            ..SaSnapshot::default()
        };
        snap.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
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
}
