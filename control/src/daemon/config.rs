//! The configuration file → what the daemon and the engine run with.
//!
//! [`load`] reads and validates the TOML file ([`crate::config::Config::load`]) and converts
//! it: `[daemon]` into [`DaemonSettings`] (one socket per listen address on the IKE port and
//! one on the NAT-T port) and the engine's part of it, every connection, child, pool and
//! pre-shared key, into an [`EngineConfig`]. Settings the engine cannot honour are refused
//! here with the same `file: key: reason` error as a validation failure when ignoring them
//! would change what is negotiated (ports, address ranges); settings that only change
//! behaviour the engine does not have yet (`keyingtries`, `dpd_action`, ...) are listed in
//! [`Loaded::ignored`] when they differ from their defaults, and the control process logs
//! them. `docs/config.md` lists both.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::DaemonSettings;
use crate::config::{
    AddrSpec, Child, Config, ConfigError, Connection, LocalMethod, LogLevel, RemoteMethod, TsAddrs,
    TsSpec,
};
use crate::engine::{
    ChildConfig, ConnectionConfig, EngineConfig, IKE_PORT, LocalAuth, Mode, NATT_PORT, PoolConfig,
    RemoteAuth, RetransmitConfig, SendCert, StartAction, TsConfig,
};
use crate::wire::payload::{AddressRange, TrafficSelector};

/// A loaded configuration: the daemon's settings, the engine's, and the log level.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it came from.
    pub file: PathBuf,
    /// Sockets and the like.
    pub settings: DaemonSettings,
    /// Connections, pools, secrets, timers.
    pub engine: EngineConfig,
    /// `daemon.log_level`.
    pub log_level: LogLevel,
    /// `daemon.bpf_pin_dir`: where the data plane pinned its maps.
    pub bpf_pin_dir: PathBuf,
    /// `daemon.dataplane_wait`: how long to wait at start for the data plane to be ready.
    pub dataplane_wait: std::time::Duration,
    /// Settings that differ from their defaults but are not implemented yet, as
    /// `key: explanation`.
    pub ignored: Vec<String>,
}

/// Reads, validates and converts the configuration file at `path`.
pub fn load(path: &Path) -> Result<(DaemonSettings, EngineConfig), ConfigError> {
    let loaded = load_full(path)?;
    Ok((loaded.settings, loaded.engine))
}

/// Like [`load`], keeping the log level too.
pub fn load_full(path: &Path) -> Result<Loaded, ConfigError> {
    convert(Config::load(path)?)
}

/// Converts a validated configuration.
pub fn convert(config: Config) -> Result<Loaded, ConfigError> {
    let err = |key: String, reason: String| ConfigError {
        file: config.file.clone(),
        key,
        reason,
        line: None,
    };
    let d = &config.daemon;
    if d.port != IKE_PORT {
        return Err(err(
            "daemon.port".into(),
            format!(
                "{} is not supported yet; the IKE port is {IKE_PORT}",
                d.port
            ),
        ));
    }
    if d.port_nat_t != NATT_PORT {
        return Err(err(
            "daemon.port_nat_t".into(),
            format!(
                "{} is not supported yet; the NAT-T port is {NATT_PORT}",
                d.port_nat_t
            ),
        ));
    }
    let settings = DaemonSettings {
        listen: d
            .listen
            .iter()
            .flat_map(|&ip| {
                [
                    SocketAddr::new(ip, d.port),
                    SocketAddr::new(ip, d.port_nat_t),
                ]
            })
            .collect(),
    };
    let mut connections = Vec::new();
    let mut ignored = Vec::new();
    for (name, c) in &config.connections {
        connections.push(connection(name, c, &err)?);
        not_implemented(name, c, &mut ignored);
    }
    for p in config.pools.values() {
        if !p.dns.is_empty() {
            ignored.push(format!(
                "pools.{}.dns: DNS servers are not sent to clients yet",
                p.name
            ));
        }
    }
    let pools = config
        .pools
        .values()
        .map(|p| PoolConfig {
            name: p.name.clone(),
            first: p.first,
            last: p.last,
        })
        .collect();
    let engine = EngineConfig {
        connections,
        pools,
        secrets: config.shared_secrets.clone(),
        retransmit: RetransmitConfig {
            timeout: d.retransmit.timeout,
            base: d.retransmit.base,
            tries: d.retransmit.tries,
            limit: d.retransmit.limit,
        },
        cookie_threshold: usize::try_from(d.cookie_threshold).unwrap_or(usize::MAX),
        half_open_timeout: d.half_open_timeout,
        fragment_size: usize::try_from(d.fragment_size).unwrap_or(1280),
        ..EngineConfig::default()
    };
    Ok(Loaded {
        file: config.file.clone(),
        settings,
        engine,
        log_level: d.log_level,
        bpf_pin_dir: d.bpf_pin_dir.clone(),
        dataplane_wait: d.dataplane_wait,
        ignored,
    })
}

/// Lists the connection's settings that differ from their defaults but have no effect yet.
fn not_implemented(name: &str, c: &Connection, out: &mut Vec<String>) {
    use crate::config::{PeerGoneAction, Unique};
    let key = format!("connections.{name}");
    if c.encap {
        out.push(format!(
            "{key}.encap: forced UDP encapsulation is not implemented yet; ESP is encapsulated only behind a NAT"
        ));
    }
    if c.keyingtries != 1 {
        out.push(format!(
            "{key}.keyingtries: a failed initiation is not retried yet"
        ));
    }
    if c.unique != Unique::No {
        out.push(format!(
            "{key}.unique: only the default (`no`: INITIAL_CONTACT replaces older IKE SAs) is implemented"
        ));
    }
    if c.reauth_time.is_some() {
        out.push(format!(
            "{key}.reauth_time: reauthentication is not implemented yet; the IKE SA is rekeyed instead"
        ));
    }
    for (cname, ch) in &c.children {
        let ckey = format!("{key}.children.{cname}");
        if ch.dpd_action != PeerGoneAction::Clear {
            out.push(format!(
                "{ckey}.dpd_action: only `clear` is implemented yet"
            ));
        }
        if ch.close_action != PeerGoneAction::Clear {
            out.push(format!(
                "{ckey}.close_action: only `none` is implemented yet"
            ));
        }
    }
}

type ErrFn<'a> = &'a dyn Fn(String, String) -> ConfigError;

fn connection(name: &str, c: &Connection, err: ErrFn<'_>) -> Result<ConnectionConfig, ConfigError> {
    let key = format!("connections.{name}");
    for (port, what) in [(c.local_port, "local_port"), (c.remote_port, "remote_port")] {
        if port != IKE_PORT {
            return Err(err(
                format!("{key}.{what}"),
                format!("{port} is not supported yet; IKE runs on port {IKE_PORT}"),
            ));
        }
    }
    let local_addrs = addrs(&format!("{key}.local_addrs"), &c.local_addrs, err)?;
    let remote_addrs = addrs(&format!("{key}.remote_addrs"), &c.remote_addrs, err)?;
    let local_auth = match &c.local.method {
        LocalMethod::Psk => LocalAuth::Psk,
        LocalMethod::PubKey(cred) => LocalAuth::PubKey(Arc::clone(cred)),
    };
    let remote_auth = match &c.remote.method {
        RemoteMethod::Psk => RemoteAuth::Psk,
        RemoteMethod::PubKey(trust) => RemoteAuth::PubKey(Arc::clone(trust)),
    };
    let children = c.children.values().map(child).collect();
    Ok(ConnectionConfig {
        name: name.to_owned(),
        local_addrs,
        links: c.links.clone(),
        remote_addrs,
        ike_proposals: c.proposals.clone(),
        local_id: c.local.id.clone(),
        local_auth,
        remote_id: c.remote.id.clone(),
        remote_auth,
        send_cert: match c.send_cert {
            crate::config::SendCert::Always => SendCert::Always,
            crate::config::SendCert::IfAsked => SendCert::IfAsked,
            crate::config::SendCert::Never => SendCert::Never,
        },
        send_certreq: c.send_certreq,
        fragmentation: c.fragmentation,
        mobike: c.mobike,
        return_routability: c.return_routability,
        dpd_delay: c.dpd_delay,
        hold: c.hold,
        rekey_time: c.rekey_time,
        over_time: c.rekey_time.map(|_| c.over_time),
        rand_time: (!c.rand_time.is_zero()).then_some(c.rand_time),
        children,
        pools: c.pools.clone(),
        vips: c.vips.clone(),
    })
}

/// `%any` (of either family) matches every address, which the engine writes as an empty
/// list; prefixes and ranges it cannot match yet.
fn addrs(key: &str, list: &[AddrSpec], err: ErrFn<'_>) -> Result<Vec<IpAddr>, ConfigError> {
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        match *a {
            AddrSpec::Any(_) => return Ok(Vec::new()),
            AddrSpec::Addr(ip) => out.push(ip),
            AddrSpec::Prefix(..) | AddrSpec::Range(..) => {
                return Err(err(
                    format!("{key}[{i}]"),
                    "prefixes and ranges are not supported here yet; list the addresses or write \"%any\"".into(),
                ));
            }
        }
    }
    Ok(out)
}

fn child(ch: &Child) -> ChildConfig {
    ChildConfig {
        name: ch.name.clone(),
        local_ts: ch.local_ts.iter().map(ts).collect(),
        remote_ts: ch.remote_ts.iter().map(ts).collect(),
        esp_proposals: ch.esp_proposals.clone(),
        mode: match ch.mode {
            crate::config::Mode::Tunnel => Mode::Tunnel,
            crate::config::Mode::Beet => Mode::Beet,
            crate::config::Mode::Transport => Mode::Transport,
        },
        start_action: match ch.start_action {
            crate::config::StartAction::None => StartAction::None,
            crate::config::StartAction::Trap => StartAction::Trap,
            crate::config::StartAction::Start => StartAction::Start,
        },
        rekey_time: ch.rekey_time,
        rand_time: (!ch.rand_time.is_zero()).then_some(ch.rand_time),
    }
}

/// A configured selector as the engine's: prefixes and ranges become address ranges.
pub fn ts(t: &TsSpec) -> TsConfig {
    let (start_port, end_port) = t.ports;
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    // Validation refuses ranges that mix families.
    let range = |from: IpAddr, to: IpAddr| match (from, to) {
        (IpAddr::V4(a), IpAddr::V4(b)) => TrafficSelector::Ipv4(AddressRange {
            ip_protocol: t.protocol,
            start_port,
            end_port,
            start: a,
            end: b,
        }),
        (a, b) => TrafficSelector::Ipv6(AddressRange {
            ip_protocol: t.protocol,
            start_port,
            end_port,
            start: v6(a),
            end: v6(b),
        }),
    };
    match t.addrs {
        TsAddrs::Dynamic => TsConfig::Dynamic {
            ip_protocol: t.protocol,
            start_port,
            end_port,
        },
        TsAddrs::Range(a, b) => TsConfig::Fixed(range(a, b)),
        TsAddrs::Prefix(net, len) => {
            let (a, b) = prefix_bounds(net, len);
            TsConfig::Fixed(range(a, b))
        }
    }
}

/// The first and last address of `net/len`.
fn prefix_bounds(net: IpAddr, len: u8) -> (IpAddr, IpAddr) {
    match net {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            (
                IpAddr::V4((bits & !host).into()),
                IpAddr::V4((bits | host).into()),
            )
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            (
                IpAddr::V6((bits & !host).into()),
                IpAddr::V6((bits | host).into()),
            )
        }
    }
}
