//! The lab harness for roamgate's control daemon against a real strongSwan 5.9.8: the daemon
//! runs in the test process with its sockets opened inside a lab namespace, its SA events go
//! to an in-memory sink the test reads, and its log goes to the lab's log folder.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roamgate_control::crypto::Secret;
use roamgate_control::crypto::proposal::{ProposalSpec, Protocol};
use roamgate_control::daemon::{Daemon, DaemonHandle, DaemonSettings, SharedSaSink, Snapshot};
use roamgate_control::engine::{
    ChildConfig, ConnectionConfig, EngineConfig, IkeSaInfo, LocalAuth, MemorySaSink, Mode,
    PoolConfig, RemoteAuth, StartAction,
};
use roamgate_control::wire::payload::{AddressRange, Identification, TrafficSelector};
use roamgate_lab::strongswan::{GW_ID, RW_ID, TunnelParams};
use roamgate_lab::{Lab, Netns};

/// A roamgate control daemon running in a lab namespace.
pub struct Roamgate {
    pub handle: DaemonHandle,
    pub sink: Arc<Mutex<MemorySaSink>>,
    thread: Option<JoinHandle<()>>,
    pub log: std::path::PathBuf,
}

impl Roamgate {
    /// Starts a daemon with `config` whose sockets live in `ns`.
    pub fn start(lab: &Lab, ns: &Netns, role: &str, config: EngineConfig) -> Roamgate {
        let sink = Arc::new(Mutex::new(MemorySaSink::new()));
        let shared = SharedSaSink(sink.clone());
        let log = lab.logs().join(format!("roamgate-{role}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let settings = DaemonSettings::default();
        let loader_config = config.clone();
        let daemon = ns
            .enter(move || {
                Daemon::new(
                    Box::new(move || Ok((settings.clone(), loader_config.clone()))),
                    Box::new(shared),
                )
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("roamgate daemon in {}: {e}", ns.name()));
        let handle = daemon.handle();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .with_env_filter("roamgate_control=debug")
            .finish();
        let thread = std::thread::spawn(move || {
            tracing::subscriber::with_default(subscriber, || {
                if let Err(e) = daemon.run() {
                    tracing::error!(error = %e, "daemon stopped");
                }
            });
        });
        Roamgate {
            handle,
            sink,
            thread: Some(thread),
            log,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.handle.snapshot()
    }

    /// Waits until an established IKE SA with at least one CHILD_SA exists.
    pub fn wait_established(&self, timeout: Duration) -> IkeSaInfo {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.snapshot();
            if let Some(sa) = s
                .ike_sas
                .iter()
                .find(|sa| sa.established && !sa.children.is_empty())
            {
                return sa.clone();
            }
            assert!(
                Instant::now() < deadline,
                "roamgate established no IKE SA with a CHILD_SA within {timeout:?}; events: {:#?}; stats: {:#?}; log: {}",
                s.events,
                s.stats,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Roamgate {
    fn drop(&mut self) {
        self.handle.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn spec(protocol: Protocol, s: &str) -> ProposalSpec {
    ProposalSpec::parse(protocol, s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn prefix_v4(cidr: &str) -> TrafficSelector {
    let (addr, len) = cidr.split_once('/').unwrap();
    let addr: Ipv4Addr = addr.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let start = u32::from(addr) & mask;
    TrafficSelector::Ipv4(AddressRange::any(
        Ipv4Addr::from(start),
        Ipv4Addr::from(start | !mask),
    ))
}

/// The road-warrior gateway side in roamgate: connection `rw`, child `lan`, a pool.
pub fn gateway_config(params: &TunnelParams, local: &[Ipv4Addr], lan: &str) -> EngineConfig {
    let psk = Secret::from_slice(params.psk.as_bytes());
    EngineConfig {
        connections: vec![ConnectionConfig {
            name: "rw".into(),
            local_addrs: local.iter().map(|a| IpAddr::V4(*a)).collect(),
            remote_addrs: vec![],
            ike_proposals: vec![spec(Protocol::Ike, &params.proposals)],
            local_id: Identification::fqdn(GW_ID),
            local_auth: LocalAuth::Psk(psk.clone()),
            remote_id: Some(Identification::rfc822(RW_ID)),
            remote_auth: RemoteAuth::Psk(psk),
            mobike: params.mobike,
            dpd_delay: Some(params.dpd_delay),
            rekey_time: None,
            over_time: None,
            children: vec![ChildConfig {
                name: "lan".into(),
                local_ts: vec![prefix_v4(lan)],
                remote_ts: vec![prefix_v4("0.0.0.0/0")],
                esp_proposals: vec![spec(Protocol::Esp, &params.esp_proposals)],
                mode: Mode::Tunnel,
                start_action: StartAction::None,
                rekey_time: None,
            }],
            pools: vec!["rw_pool".into()],
            vips: vec![],
        }],
        pools: vec![PoolConfig {
            name: "rw_pool".into(),
            first: "10.200.0.1".parse().unwrap(),
            last: "10.200.0.254".parse().unwrap(),
        }],
        ..EngineConfig::default()
    }
}

/// The road-warrior client side in roamgate: connection `home`, child `lan`, asking for a
/// virtual IPv4 address.
pub fn client_config(params: &TunnelParams, gw: &[Ipv4Addr], lan: &str) -> EngineConfig {
    let psk = Secret::from_slice(params.psk.as_bytes());
    EngineConfig {
        connections: vec![ConnectionConfig {
            name: "home".into(),
            local_addrs: vec![],
            remote_addrs: gw.iter().map(|a| IpAddr::V4(*a)).collect(),
            ike_proposals: vec![spec(Protocol::Ike, &params.proposals)],
            local_id: Identification::rfc822(RW_ID),
            local_auth: LocalAuth::Psk(psk.clone()),
            remote_id: Some(Identification::fqdn(GW_ID)),
            remote_auth: RemoteAuth::Psk(psk),
            mobike: params.mobike,
            dpd_delay: Some(params.dpd_delay),
            rekey_time: None,
            over_time: None,
            children: vec![ChildConfig {
                name: "lan".into(),
                local_ts: vec![prefix_v4("0.0.0.0/0")],
                remote_ts: vec![prefix_v4(lan)],
                esp_proposals: vec![spec(Protocol::Esp, &params.esp_proposals)],
                mode: Mode::Tunnel,
                start_action: StartAction::None,
                rekey_time: None,
            }],
            pools: vec![],
            vips: vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        }],
        ..EngineConfig::default()
    }
}

/// strongSwan prints SPIs as 8 hex digits.
pub fn hex_spi(spi: u32) -> String {
    format!("{spi:08x}")
}
