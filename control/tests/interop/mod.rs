//! The lab harness for roamgate's control daemon against a real strongSwan 5.9.8: the daemon
//! runs in the test process with its sockets opened inside a lab namespace, its SA events go
//! to an in-memory sink the test reads, and its log goes to the lab's log folder.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roamgate_control::auth::{Identity, SharedSecrets};
use roamgate_control::crypto::Secret;
use roamgate_control::crypto::proposal::{ProposalSpec, Protocol};
use roamgate_control::daemon::{
    ConfigLoader, Daemon, DaemonHandle, DaemonSettings, SharedSaSink, Snapshot,
};
use roamgate_control::engine::{
    ChildConfig, ConnectionConfig, EngineConfig, IkeSaInfo, LocalAuth, MemorySaSink, Mode,
    PoolConfig, RemoteAuth, SendCert, StartAction, TsConfig,
};
use roamgate_control::wire::payload::{AddressRange, TrafficSelector};
use roamgate_lab::strongswan::{GW_ID, RW_ID, TunnelParams};
use roamgate_lab::{Lab, Netns};

/// A roamgate control daemon running in a lab namespace.
pub struct Roamgate {
    pub handle: DaemonHandle,
    pub sink: Arc<Mutex<MemorySaSink>>,
    /// The daemon's thread: its error, if `run` returned one.
    thread: Option<JoinHandle<Result<(), String>>>,
    pub log: std::path::PathBuf,
}

impl Roamgate {
    /// Starts a daemon with `config` whose sockets live in `ns`.
    pub fn start(lab: &Lab, ns: &Netns, role: &str, config: EngineConfig) -> Roamgate {
        let settings = DaemonSettings::default();
        Roamgate::start_with_loader(
            lab,
            ns,
            role,
            Box::new(move || Ok((settings.clone(), config.clone()))),
        )
    }

    /// Starts a daemon configured by the TOML file at `path`, loaded (and reloaded) the way
    /// `roamgate control --config` does, with `daemon::config::load`.
    pub fn start_from_file(lab: &Lab, ns: &Netns, role: &str, path: &Path) -> Roamgate {
        let path = path.to_owned();
        Roamgate::start_with_loader(
            lab,
            ns,
            role,
            Box::new(move || Ok(roamgate_control::daemon::config::load(&path)?)),
        )
    }

    /// Starts a daemon whose configuration comes from `loader`.
    pub fn start_with_loader(lab: &Lab, ns: &Netns, role: &str, loader: ConfigLoader) -> Roamgate {
        let sink = Arc::new(Mutex::new(MemorySaSink::new()));
        let shared = SharedSaSink(sink.clone());
        let log = lab.logs().join(format!("roamgate-{role}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let daemon = ns
            .enter(move || Daemon::new(loader, Box::new(shared)))
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
                daemon.run().map_err(|e| {
                    tracing::error!(error = %e, "daemon stopped");
                    e.to_string()
                })
            })
        });
        Roamgate {
            handle,
            sink,
            thread: Some(thread),
            log,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.assert_running();
        self.handle.snapshot()
    }

    /// Fails the test when the daemon's thread has ended (an error or a panic) while the
    /// test still uses it.
    pub fn assert_running(&self) {
        if self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            panic!(
                "the roamgate daemon stopped while the test ran; log: {}",
                self.log.display()
            );
        }
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
        let Some(t) = self.thread.take() else {
            return;
        };
        let outcome = t.join();
        if std::thread::panicking() {
            return;
        }
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!(
                "the roamgate daemon stopped with an error: {e}; log: {}",
                self.log.display()
            ),
            Err(_) => panic!(
                "the roamgate daemon's thread panicked; log: {}",
                self.log.display()
            ),
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

pub fn prefix_v6(cidr: &str) -> TrafficSelector {
    let (addr, len) = cidr.split_once('/').unwrap();
    let addr: Ipv6Addr = addr.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    let start = u128::from(addr) & mask;
    TrafficSelector::Ipv6(AddressRange::any(
        Ipv6Addr::from(start),
        Ipv6Addr::from(start | !mask),
    ))
}

/// The IPv6 virtual-IP pool of [`gateway_config_dual_stack`].
pub const RW_POOL_V6: (&str, &str) = ("fd00:200::1", "fd00:200::fe");

/// [`gateway_config`] for both address families: an IPv4 pool and an IPv6 pool
/// ([`RW_POOL_V6`]), the LAN's IPv4 and IPv6 prefixes on our side, and `dynamic` (the virtual
/// IPs assigned) on the road warrior's.
pub fn gateway_config_dual_stack(
    params: &TunnelParams,
    local: &[Ipv4Addr],
    lan_v4: &str,
    lan_v6: &str,
) -> EngineConfig {
    let mut config = gateway_config(params, local, lan_v4);
    let c = &mut config.connections[0];
    c.pools.push("rw_pool6".into());
    c.children[0].local_ts = vec![prefix_v4(lan_v4).into(), prefix_v6(lan_v6).into()];
    c.children[0].remote_ts = vec![TsConfig::DYNAMIC];
    config.pools.push(PoolConfig {
        name: "rw_pool6".into(),
        first: RW_POOL_V6.0.parse().unwrap(),
        last: RW_POOL_V6.1.parse().unwrap(),
    });
    config
}

/// The road-warrior gateway side in roamgate: connection `rw`, child `lan`, a pool.
pub fn gateway_config(params: &TunnelParams, local: &[Ipv4Addr], lan: &str) -> EngineConfig {
    let psk = Secret::from_slice(params.psk.as_bytes());
    EngineConfig {
        connections: vec![ConnectionConfig {
            name: "rw".into(),
            local_addrs: local.iter().map(|a| IpAddr::V4(*a)).collect(),
            links: Vec::new(),
            remote_addrs: vec![],
            ike_proposals: vec![spec(Protocol::Ike, &params.proposals)],
            local_id: Some(Identity::Fqdn(GW_ID.into())),
            local_auth: LocalAuth::Psk,
            remote_id: Identity::Rfc822(RW_ID.into()),
            remote_auth: RemoteAuth::Psk,
            send_cert: SendCert::IfAsked,
            send_certreq: true,
            fragmentation: true,
            mobike: params.mobike,
            return_routability: Default::default(),
            dpd_delay: Some(params.dpd_delay),
            hold: None,
            rekey_time: None,
            over_time: None,
            rand_time: None,
            children: vec![ChildConfig {
                name: "lan".into(),
                local_ts: vec![prefix_v4(lan).into()],
                remote_ts: vec![prefix_v4("0.0.0.0/0").into()],
                esp_proposals: vec![spec(Protocol::Esp, &params.esp_proposals)],
                mode: Mode::Tunnel,
                start_action: StartAction::None,
                rekey_time: None,
                rand_time: None,
            }],
            pools: vec!["rw_pool".into()],
            vips: vec![],
        }],
        pools: vec![PoolConfig {
            name: "rw_pool".into(),
            first: "10.200.0.1".parse().unwrap(),
            last: "10.200.0.254".parse().unwrap(),
        }],
        secrets: SharedSecrets::single(psk),
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
            links: Vec::new(),
            remote_addrs: gw.iter().map(|a| IpAddr::V4(*a)).collect(),
            ike_proposals: vec![spec(Protocol::Ike, &params.proposals)],
            local_id: Some(Identity::Rfc822(RW_ID.into())),
            local_auth: LocalAuth::Psk,
            remote_id: Identity::Fqdn(GW_ID.into()),
            remote_auth: RemoteAuth::Psk,
            send_cert: SendCert::IfAsked,
            send_certreq: true,
            fragmentation: true,
            mobike: params.mobike,
            return_routability: Default::default(),
            dpd_delay: Some(params.dpd_delay),
            hold: None,
            rekey_time: None,
            over_time: None,
            rand_time: None,
            children: vec![ChildConfig {
                name: "lan".into(),
                local_ts: vec![prefix_v4("0.0.0.0/0").into()],
                remote_ts: vec![prefix_v4(lan).into()],
                esp_proposals: vec![spec(Protocol::Esp, &params.esp_proposals)],
                mode: Mode::Tunnel,
                start_action: StartAction::None,
                rekey_time: None,
                rand_time: None,
            }],
            pools: vec![],
            vips: vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        }],
        secrets: SharedSecrets::single(psk),
        ..EngineConfig::default()
    }
}

/// strongSwan's CHILD_SA and roamgate's installed one are the two halves of one SA pair.
pub fn assert_same_child(
    sa: &roamgate_lab::strongswan::IkeSa,
    installed: &[roamgate_control::engine::ChildSaInstall],
) {
    let child = sa.children.first().expect("strongSwan has a CHILD_SA");
    let ours = installed
        .iter()
        .find(|c| hex_spi(c.outbound.spi) == child.spi_in)
        .unwrap_or_else(|| {
            panic!(
                "roamgate installed no CHILD_SA whose outbound SPI is strongSwan's inbound {}: {:?}",
                child.spi_in,
                installed
                    .iter()
                    .map(|c| (hex_spi(c.inbound.spi), hex_spi(c.outbound.spi)))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(hex_spi(ours.inbound.spi), child.spi_out, "{sa:?}");
}

/// Every packet roamgate (`from`) sent in the capture dissects cleanly in tshark (no
/// malformed packet, no expert error or warning); returns how many there were.
pub fn assert_clean_ike(pcap: &Path, from: &str) -> usize {
    let packets = roamgate_lab::capture::dissect(pcap, "isakmp", &[]).unwrap();
    let ours: Vec<_> = packets.iter().filter(|p| p.src == from).collect();
    assert!(
        !ours.is_empty(),
        "no IKE packet from {from} in {}",
        pcap.display()
    );
    for p in &ours {
        assert!(!p.malformed, "malformed: {p:?} in {}", pcap.display());
        assert!(
            !p.expert.iter().any(|s| s == "error" || s == "warning"),
            "expert error or warning: {p:?} in {}",
            pcap.display()
        );
    }
    ours.len()
}

/// strongSwan prints SPIs as 8 hex digits.
pub fn hex_spi(spi: u32) -> String {
    format!("{spi:08x}")
}

/// roamgate as road-warrior client (connection `home`, asking for a virtual IPv4 address)
/// connected to a strongSwan gateway (`rw`, child `lan`) in `topo`.
pub struct ClientToStrongswan {
    /// The strongSwan gateway.
    pub gw: roamgate_lab::strongswan::Charon,
    /// roamgate's daemon in the road warrior's namespace.
    pub rw: Roamgate,
    /// roamgate's view of the IKE SA.
    pub ours: IkeSaInfo,
    /// strongSwan's view of it.
    pub theirs: roamgate_lab::strongswan::IkeSa,
}

/// Starts the strongSwan gateway and roamgate's client, initiates, and waits until both sides
/// are established.
pub fn roamgate_client_to_strongswan(
    lab: &Lab,
    topo: &roamgate_lab::topology::RoadWarrior,
    params: &TunnelParams,
) -> ClientToStrongswan {
    let gw_v4 = topo.gw.wan_v4();
    let gw_addrs: Vec<String> = gw_v4.iter().map(|a| a.to_string()).collect();
    let lan = topo.gw.lan.clone().expect("the gateway has a LAN");
    let gw = roamgate_lab::strongswan::Charon::start(
        lab,
        &topo.gw.ns,
        "gw",
        &roamgate_lab::strongswan::road_warrior_gateway(params, &gw_addrs, &lan.prefix_v4),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rw = Roamgate::start(
        lab,
        &topo.rw.ns,
        "rw",
        client_config(params, &gw_v4, &lan.prefix_v4),
    );
    rw.handle.initiate("home").unwrap();
    let ours = rw.wait_established(Duration::from_secs(20));
    let theirs = gw
        .wait_established("rw", "lan", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    ClientToStrongswan {
        gw,
        rw,
        ours,
        theirs,
    }
}
