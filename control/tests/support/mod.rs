//! A deterministic simulated network for engine tests: N engines, a seeded RNG, loss,
//! duplication, reordering, delay, an optional NAT in front of a node, and time that jumps to
//! the next thing that happens (the shape of quinn-proto's test `Pair`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use roamgate_control::auth::{Identity, SharedSecrets};
use roamgate_control::crypto::Secret;
use roamgate_control::crypto::proposal::{ProposalSpec, Protocol};
use roamgate_control::engine::{
    ChildConfig, ConnectionConfig, Engine, EngineConfig, Event, IkeSaHandle, LocalAuth,
    MemorySaSink, Mode, RemoteAuth, SendCert, StartAction, Transmit,
};
use roamgate_control::wire::payload::{AddressRange, TrafficSelector};

/// splitmix64: small, seedable, good enough to drive a simulation (not for keys outside tests).
#[derive(Debug, Clone)]
pub struct SimRng(pub u64);

impl SimRng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// An engine RNG from a seed.
pub fn engine_rng(seed: u64) -> Box<dyn roamgate_control::crypto::Rng + Send> {
    let mut r = SimRng(seed);
    Box::new(move |buf: &mut [u8]| r.fill(buf))
}

/// Network impairments, applied to every datagram independently.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a datagram is held back by an extra random delay (up to 3× the max).
    pub reorder: f64,
    pub delay_min: Duration,
    pub delay_max: Duration,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay_min: Duration::from_millis(5),
            delay_max: Duration::from_millis(5),
        }
    }
}

/// Decides, per datagram, whether the network loses it.
pub type DropFilter = Box<dyn FnMut(&Transmit) -> bool>;

pub struct Node {
    pub engine: Engine,
    pub sink: MemorySaSink,
    pub addrs: Vec<IpAddr>,
    pub events: Vec<Event>,
    /// Every datagram this node sent.
    pub sent: Vec<Transmit>,
    /// A NAT in front of the node: its public address.
    pub nat: Option<IpAddr>,
    /// Only datagrams from this address of the node's cross the NAT (`None`: all of them).
    pub nat_from: Option<IpAddr>,
    /// The SA events its sink refused; any fails the test unless `refusals_expected`.
    pub refused: Vec<(
        roamgate_control::engine::SaEvent,
        roamgate_control::engine::SaSinkError,
    )>,
    pub refusals_expected: bool,
}

struct InFlight {
    at: Instant,
    seq: u64,
    /// Source as the receiver sees it.
    from: SocketAddr,
    to: SocketAddr,
    payload: Vec<u8>,
}

pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub nodes: Vec<Node>,
    pub faults: Faults,
    /// Drops every datagram for which it returns true (after `faults`).
    pub drop_if: Option<DropFilter>,
    rng: SimRng,
    flight: Vec<InFlight>,
    seq: u64,
    /// (private addr, public port) mappings of NATs.
    nat_out: HashMap<SocketAddr, SocketAddr>,
    nat_in: HashMap<SocketAddr, SocketAddr>,
    pub delivered: u64,
    pub dropped: u64,
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        let start = Instant::now();
        Sim {
            start,
            now: start,
            nodes: Vec::new(),
            faults: Faults::default(),
            drop_if: None,
            rng: SimRng(seed ^ 0x5eed),
            flight: Vec::new(),
            seq: 0,
            nat_out: HashMap::new(),
            nat_in: HashMap::new(),
            delivered: 0,
            dropped: 0,
        }
    }

    /// Adds a node owning `addrs`; returns its index.
    pub fn add(&mut self, config: EngineConfig, addrs: &[IpAddr], seed: u64) -> usize {
        self.nodes.push(Node {
            engine: Engine::new(config, engine_rng(seed)),
            sink: MemorySaSink::new(),
            addrs: addrs.to_vec(),
            events: Vec::new(),
            sent: Vec::new(),
            nat: None,
            nat_from: None,
            refused: Vec::new(),
            refusals_expected: false,
        });
        self.nodes.len() - 1
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn owner(&self, ip: IpAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addrs.contains(&ip))
    }

    /// Collects every node's output: datagrams into the network, SA events into the sink,
    /// events into `events`.
    pub fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].engine.poll_transmit() {
                self.nodes[i].sent.push(t.clone());
                self.launch(i, t);
            }
            let node = &mut self.nodes[i];
            let failed = node.engine.apply_sa_events(self.now, &mut node.sink);
            assert!(
                failed.is_empty() || node.refusals_expected,
                "sink refused SA events: {failed:?}"
            );
            node.refused.extend(failed);
            while let Some(e) = node.engine.poll_event() {
                node.events.push(e);
            }
        }
    }

    fn launch(&mut self, from_node: usize, t: Transmit) {
        if self.drop_if.as_mut().is_some_and(|f| f(&t)) {
            self.dropped += 1;
            return;
        }
        if self.rng.unit() < self.faults.loss {
            self.dropped += 1;
            return;
        }
        let mut src = t.local;
        if src.ip().is_unspecified() {
            src.set_ip(self.nodes[from_node].addrs[0]);
        }
        let node = &self.nodes[from_node];
        if let Some(public) = node.nat
            && node.nat_from.is_none_or(|a| a == src.ip())
        {
            let next_port = 20000 + self.nat_out.len() as u16;
            let mapped = *self
                .nat_out
                .entry(src)
                .or_insert(SocketAddr::new(public, next_port));
            self.nat_in.insert(mapped, src);
            src = mapped;
        }
        let copies = if self.rng.unit() < self.faults.duplicate {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let span = self.faults.delay_max.saturating_sub(self.faults.delay_min);
            let mut delay = self.faults.delay_min + span.mul_f64(self.rng.unit());
            if self.rng.unit() < self.faults.reorder {
                delay += self.faults.delay_max.mul_f64(3.0 * self.rng.unit());
            }
            self.seq += 1;
            self.flight.push(InFlight {
                at: self.now + delay,
                seq: self.seq,
                from: src,
                to: t.remote,
                payload: t.payload.clone(),
            });
        }
    }

    /// The next moment something happens.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let f = self.flight.iter().map(|f| f.at).min();
        let t = self
            .nodes
            .iter()
            .filter_map(|n| n.engine.poll_timeout())
            .min();
        [f, t].into_iter().flatten().min()
    }

    /// Advances to the next wake-up and handles it. Returns false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        self.collect();
        let Some(at) = self.next_wakeup() else {
            return false;
        };
        self.now = self.now.max(at);
        let now = self.now;
        let mut due: Vec<InFlight> = Vec::new();
        let mut rest = Vec::new();
        for f in self.flight.drain(..) {
            if f.at <= now {
                due.push(f)
            } else {
                rest.push(f)
            }
        }
        self.flight = rest;
        due.sort_by_key(|f| (f.at, f.seq));
        for f in due {
            let mut to = f.to;
            if let Some(private) = self.nat_in.get(&to) {
                to = *private;
            }
            let Some(n) = self.owner(to.ip()) else {
                self.dropped += 1;
                continue;
            };
            self.delivered += 1;
            self.nodes[n]
                .engine
                .handle_datagram(now, to, f.from, &f.payload);
        }
        for n in &mut self.nodes {
            if n.engine.poll_timeout().is_some_and(|t| t <= now) {
                n.engine.handle_timeout(now);
            }
        }
        self.collect();
        true
    }

    /// Steps until `done` holds, nothing is left to do, or `limit` of simulated time passed.
    /// Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        for _ in 0..1_000_000 {
            self.collect();
            if done(self) {
                return true;
            }
            if self.next_wakeup().is_none_or(|t| t > end) {
                return done(self);
            }
            self.step();
        }
        panic!("simulation did not settle (runaway loop)");
    }

    /// Steps until nothing is scheduled before `limit` from now.
    pub fn run_for(&mut self, limit: Duration) {
        self.run_until(limit, |_| false);
    }

    pub fn established(&self, node: usize) -> usize {
        self.nodes[node]
            .events
            .iter()
            .filter(|e| matches!(e, Event::IkeSaEstablished { .. }))
            .count()
    }

    pub fn failures(&self, node: usize) -> Vec<&Event> {
        self.nodes[node]
            .events
            .iter()
            .filter(|e| matches!(e, Event::IkeSaFailed { .. }))
            .collect()
    }
}

// ----- configuration builders -----

pub const INITIATOR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
pub const RESPONDER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

pub fn ike(s: &str) -> ProposalSpec {
    ProposalSpec::parse(Protocol::Ike, s).unwrap()
}

pub fn esp(s: &str) -> ProposalSpec {
    ProposalSpec::parse(Protocol::Esp, s).unwrap()
}

/// An IPv4 subnet selector, any protocol and port.
pub fn ts(cidr: &str) -> TrafficSelector {
    let (a, len) = cidr.split_once('/').unwrap();
    let a: Ipv4Addr = a.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let start = u32::from(a) & mask;
    let end = start | !mask;
    TrafficSelector::Ipv4(AddressRange::any(start.into(), end.into()))
}

pub fn child(name: &str, local: &str, remote: &str) -> ChildConfig {
    ChildConfig {
        name: name.into(),
        local_ts: vec![ts(local).into()],
        remote_ts: vec![ts(remote).into()],
        esp_proposals: vec![esp("aes128gcm16"), esp("aes256-sha256")],
        mode: Mode::Tunnel,
        start_action: StartAction::None,
        rekey_time: None,
        rand_time: None,
    }
}

/// A PSK connection with our identity `local_id` (an FQDN) accepting any peer identity; the
/// key itself goes into [`EngineConfig::secrets`] (see [`psk_config`]).
pub fn connection(
    name: &str,
    local: IpAddr,
    remote: Option<IpAddr>,
    local_id: &str,
) -> ConnectionConfig {
    ConnectionConfig {
        name: name.into(),
        local_addrs: vec![local],
        links: Vec::new(),
        remote_addrs: remote.into_iter().collect(),
        ike_proposals: vec![
            ike("aes128gcm16-prfsha256-x25519"),
            ike("aes256-sha256-ecp256-modp2048"),
        ],
        local_id: Some(Identity::Fqdn(local_id.into())),
        local_auth: LocalAuth::Psk,
        remote_id: Identity::Any,
        remote_auth: RemoteAuth::Psk,
        send_cert: SendCert::IfAsked,
        send_certreq: true,
        fragmentation: true,
        mobike: false,
        return_routability: Default::default(),
        dpd_delay: None,
        hold: None,
        rekey_time: None,
        over_time: None,
        rand_time: None,
        children: Vec::new(),
        pools: Vec::new(),
        vips: Vec::new(),
    }
}

/// An engine configuration with `connections` and one pre-shared key for every identity.
pub fn psk_config(connections: Vec<ConnectionConfig>, psk: &[u8]) -> EngineConfig {
    EngineConfig {
        connections,
        secrets: SharedSecrets::single(Secret::from_slice(psk)),
        ..EngineConfig::default()
    }
}

/// A site-to-site pair: initiator 192.0.2.1 (10.1.0.0/16) ↔ responder 198.51.100.1
/// (10.2.0.0/16), same PSK.
pub fn pair_configs() -> (EngineConfig, EngineConfig) {
    let mut i = connection("gw", INITIATOR, Some(RESPONDER), "moon.example");
    i.children.push(child("net", "10.1.0.0/16", "10.2.0.0/16"));
    let mut r = connection("gw", RESPONDER, None, "sun.example");
    r.children.push(child("net", "10.2.0.0/16", "10.1.0.0/16"));
    let psk = b"sixteen byte psk";
    (psk_config(vec![i], psk), psk_config(vec![r], psk))
}

/// A simulator with node 0 the initiator and node 1 the responder.
pub fn sim_pair(seed: u64, i: EngineConfig, r: EngineConfig) -> Sim {
    let mut sim = Sim::new(seed);
    sim.add(i, &[INITIATOR], seed.wrapping_mul(3).wrapping_add(1));
    sim.add(r, &[RESPONDER], seed.wrapping_mul(7).wrapping_add(2));
    sim
}

/// Checks that both sinks hold matching CHILD_SAs: each side's outbound SA is the other's
/// inbound one, with the same keys. Returns how many pairs matched.
pub fn assert_sinks_agree(a: &MemorySaSink, b: &MemorySaSink) -> usize {
    assert_eq!(
        a.len(),
        b.len(),
        "both sides install the same number of CHILD_SAs"
    );
    for sa in a.iter() {
        let peer = b
            .by_inbound(sa.outbound.spi)
            .unwrap_or_else(|| panic!("peer has no inbound SA {:08x}", sa.outbound.spi));
        assert_eq!(peer.outbound.spi, sa.inbound.spi);
        assert_eq!(peer.inbound, sa.outbound);
        assert_eq!(peer.outbound, sa.inbound);
        assert_eq!(peer.encryption, sa.encryption);
        assert_eq!(peer.integrity, sa.integrity);
        assert_eq!(peer.mode, sa.mode);
        assert_eq!(peer.local, sa.remote);
        assert_eq!(peer.remote, sa.local);
        assert_eq!(peer.local_ts, sa.remote_ts);
        assert_eq!(peer.remote_ts, sa.local_ts);
        assert_ne!(sa.inbound.encryption_key, sa.outbound.encryption_key);
    }
    a.len()
}

/// Runs IKE_SA_INIT and IKE_AUTH (with the first CHILD_SA) to completion.
pub fn established(seed: u64, i: EngineConfig, r: EngineConfig) -> Sim {
    let mut sim = sim_pair(seed, i, r);
    sim.nodes[0].engine.initiate(sim.now, "gw").unwrap();
    assert!(
        sim.run_until(Duration::from_secs(120), |s| s.nodes[0].sink.len() == 1
            && s.nodes[1].sink.len() == 1)
    );
    sim
}

/// The one IKE SA of `node`, which must be established.
pub fn handle(sim: &Sim, node: usize) -> IkeSaHandle {
    let sas = sim.nodes[node].engine.ike_sas();
    assert_eq!(sas.len(), 1, "one IKE SA on node {node}");
    assert!(sas[0].established);
    sas[0].handle
}

/// `addrs` as the host's addresses, all on one interface (`eth0`): for tests without a
/// link policy.
pub fn on_eth0(addrs: &[IpAddr]) -> Vec<roamgate_control::engine::path::HostAddress> {
    addrs
        .iter()
        .map(|&a| roamgate_control::engine::path::HostAddress::new("eth0", a))
        .collect()
}
