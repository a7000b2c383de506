//! Several workers on one SA: concurrent encapsulation hands out each sequence number once;
//! concurrent decapsulation of the same packets (every packet delivered to every worker,
//! shuffled) accepts each packet exactly once and counts the rest as replays.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::*;
use roamgate_gateway::esp::{Decapsulated, decapsulate};
use roamgate_gateway::{DropCounters, DropReason};

const WORKERS: usize = 4;
const PER_WORKER: usize = 500;

#[test]
fn workers_share_an_sa_safely() {
    let sa = Arc::new(
        PairSpec {
            esn: true,
            ..PairSpec::default()
        }
        .pair(),
    );
    let inner = InnerSpec::udp(false, vec![3; 64]).build();

    // Encapsulate concurrently.
    let outers = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            let (sa, outers, inner) = (Arc::clone(&sa), Arc::clone(&outers), inner.clone());
            s.spawn(move || {
                let mut mine = Vec::with_capacity(PER_WORKER);
                for _ in 0..PER_WORKER {
                    let mut f = Frame::new(&inner);
                    let e = sa
                        .out
                        .encapsulate(&sa.path, &mut f.buf, f.start, f.len)
                        .unwrap();
                    mine.push((e.seq, f.buf[e.start..e.start + e.len].to_vec()));
                }
                outers.lock().unwrap().extend(mine);
            });
        }
    });
    let outers = Arc::try_unwrap(outers).unwrap().into_inner().unwrap();
    let seqs: HashSet<u64> = outers.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs.len(),
        WORKERS * PER_WORKER,
        "a sequence number was used twice"
    );

    // Every worker gets every packet, each in its own order.
    let results: Vec<(Vec<u64>, DropCounters)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (sa, outers) = (Arc::clone(&sa), &outers);
                s.spawn(move || {
                    let mut order: Vec<usize> = (0..outers.len()).collect();
                    // A cheap deterministic shuffle per worker (rotation + stride).
                    order.rotate_left(w * 97);
                    if w % 2 == 1 {
                        order.reverse();
                    }
                    let mut accepted = Vec::new();
                    let mut counters = DropCounters::new();
                    for i in order {
                        let p = &outers[i].1;
                        let mut f = Frame::new(p);
                        match decapsulate(&mut f.buf, f.start, f.len, |_| Some(&sa.inb)) {
                            Ok(Decapsulated::Packet { seq, .. }) => accepted.push(seq),
                            Ok(other) => panic!("{other:?}"),
                            Err(r) => counters.count(r),
                        }
                    }
                    (accepted, counters)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = HashSet::new();
    let mut drops = 0;
    for (accepted, counters) in &results {
        for s in accepted {
            assert!(all.insert(*s), "sequence number {s} accepted twice");
        }
        assert_eq!(
            counters.total(),
            counters.get(DropReason::Replay) + counters.get(DropReason::ReplayTooOld)
        );
        drops += counters.total();
    }
    // Everything is accepted once (2000 packets fit in the 2016-packet window) and every other
    // copy is a counted replay.
    assert_eq!(all.len(), WORKERS * PER_WORKER);
    assert_eq!(drops as usize, (WORKERS - 1) * WORKERS * PER_WORKER);
}
