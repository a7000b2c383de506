//! IKEv2 responder handshakes: roamgate's control daemon against strongSwan's charon, on the
//! same lab in the same run, both driven by roamgate's engine as the load generator.
//!
//! The road-warrior topology's `rw` namespace runs the load generator (one roamgate engine
//! initiating IKE_SA_INIT + IKE_AUTH with PSK + x25519 + AES-GCM-128, one CHILD_SA each,
//! `WINDOW` handshakes in flight); `gw` runs the responder: first roamgate's daemon (this
//! benchmark re-executed as a child process, so its memory and CPU time are its own), then
//! charon 5.9.8. For each responder and run it reports:
//!
//! - handshakes per second completed within `DURATION`;
//! - the responder's CPU time per handshake (from /proc/<pid>/stat): on a small shared machine
//!   the load generator competes with the responder for cores, so this is the fairer figure;
//! - the responder's resident memory per established IKE SA (VmRSS growth / SAs held).
//!
//! Both responders hold every IKE SA (with its CHILD_SA) until the run ends; neither uses
//! cookies (threshold raised on both) and strongSwan's per-IP half-open limit is raised so one
//! load generator may open many. Medians of `ROAMGATE_BENCH_RUNS` runs (default 3); with
//! `ROAMGATE_BENCH_IKE_HOLD=N` it then establishes N IKE SAs with roamgate's responder and
//! reports its resident memory (the 100k-SA check). Needs
//! root. Run with `cargo bench -p roamgate-benches --bench ike`; results also go to
//! `target/bench-results/ike.md`.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use roamgate_benches::{median, write_results};
use roamgate_control::auth::{Identity, SharedSecrets};
use roamgate_control::crypto::Secret;
use roamgate_control::crypto::proposal::{ProposalSpec, Protocol};
use roamgate_control::daemon::signals::{Signals, wait_readable};
use roamgate_control::daemon::udp::IkeSocket;
use roamgate_control::daemon::{Daemon, DaemonSettings};
use roamgate_control::engine::{
    ChildConfig, ConnectionConfig, Engine, EngineConfig, Event, LocalAuth, MemorySaSink, Mode,
    RemoteAuth, SendCert, StartAction,
};
use roamgate_control::wire::payload::{AddressRange, TrafficSelector};
use roamgate_lab::strongswan::{Charon, CharonOptions, GW_ID, RW_ID, Section, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};
use roamgate_lab::{Lab, Netns};

/// How long each responder is loaded per run.
const DURATION: Duration = Duration::from_secs(5);
/// Handshakes in flight.
const WINDOW: usize = 32;
/// How long the hold phase (`ROAMGATE_BENCH_IKE_HOLD`) may take.
const HOLD_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Set in the child process that runs roamgate's responder: the address to listen on.
const RESPONDER_ENV: &str = "ROAMGATE_BENCH_IKE_RESPONDER";
const PROPOSAL: &str = "aes128gcm16-prfsha256-x25519";
const ESP_PROPOSAL: &str = "aes128gcm16";
const LAN: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(10, 101, 0, 0), Ipv4Addr::new(10, 101, 0, 255));

fn psk() -> Secret {
    Secret::from_slice(TunnelParams::default().psk.as_bytes())
}

fn spec(protocol: Protocol, s: &str) -> ProposalSpec {
    ProposalSpec::parse(protocol, s).expect("valid proposal")
}

/// The load generator's inner side. It must not cover the IKE addresses: charon's
/// kernel-libipsec routes the peer's traffic selectors into its TUN device.
const GENERATOR_NET: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(10, 200, 0, 0), Ipv4Addr::new(10, 200, 0, 255));

fn generator_ts() -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(GENERATOR_NET.0, GENERATOR_NET.1))
}

fn lan_ts() -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(LAN.0, LAN.1))
}

/// A connection from `local` (if given) to `peer` (if given).
fn connection(
    name: &str,
    initiator: bool,
    local: Option<Ipv4Addr>,
    peer: Option<Ipv4Addr>,
) -> ConnectionConfig {
    let (local_id, remote_id) = if initiator {
        (Identity::Rfc822(RW_ID.into()), Identity::Fqdn(GW_ID.into()))
    } else {
        (Identity::Fqdn(GW_ID.into()), Identity::Rfc822(RW_ID.into()))
    };
    let (local_ts, remote_ts) = if initiator {
        (generator_ts(), lan_ts())
    } else {
        (lan_ts(), generator_ts())
    };
    ConnectionConfig {
        name: name.into(),
        local_addrs: local.map(IpAddr::V4).into_iter().collect(),
        links: Vec::new(),
        remote_addrs: peer.map(IpAddr::V4).into_iter().collect(),
        ike_proposals: vec![spec(Protocol::Ike, PROPOSAL)],
        local_id: Some(local_id),
        local_auth: LocalAuth::Psk,
        remote_id,
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
        children: vec![ChildConfig {
            name: "net".into(),
            local_ts: vec![local_ts.into()],
            remote_ts: vec![remote_ts.into()],
            esp_proposals: vec![spec(Protocol::Esp, ESP_PROPOSAL)],
            mode: Mode::Tunnel,
            start_action: StartAction::None,
            rekey_time: None,
            rand_time: None,
        }],
        pools: vec![],
        vips: vec![],
    }
}

fn engine_config(connection: ConnectionConfig) -> EngineConfig {
    EngineConfig {
        connections: vec![connection],
        cookie_threshold: 1_000_000,
        secrets: SharedSecrets::single(psk()),
        ..EngineConfig::default()
    }
}

/// The child process: roamgate's daemon as responder on `listen`, until SIGTERM.
fn responder_main(listen: &str) -> Result<()> {
    let addr: Ipv4Addr = listen.parse().context("responder address")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let signals = Signals::new()?;
    let settings = DaemonSettings {
        listen: vec![
            SocketAddr::new(IpAddr::V4(addr), 500),
            SocketAddr::new(IpAddr::V4(addr), 4500),
        ],
    };
    let config = engine_config(connection("bench", false, Some(addr), None));
    let daemon = Daemon::new(
        Box::new(move || Ok((settings.clone(), config.clone()))),
        Box::new(MemorySaSink::new()),
    )?
    .with_signals(signals);
    println!("ready");
    daemon.run()?;
    Ok(())
}

/// What one load run measured.
#[derive(Debug, Clone, Copy)]
struct Load {
    established: u64,
    failed: u64,
    elapsed: Duration,
}

/// Drives handshakes from `local` in `ns` to `target` for [`DURATION`] with [`WINDOW`] in
/// flight.
/// Drives handshakes until `until`: for [`DURATION`] (counting those done by then), or until
/// that many IKE SAs are established.
fn generate(ns: &Netns, local: Ipv4Addr, target: Ipv4Addr, hold: Option<u64>) -> Result<Load> {
    let sockets = ns.enter(|| -> std::io::Result<Vec<IkeSocket>> {
        [500, 4500]
            .iter()
            .map(|&port| IkeSocket::bind(SocketAddr::new(IpAddr::V4(local), port)))
            .collect()
    })??;
    let rng = Box::new(|buf: &mut [u8]| {
        aws_lc_rs::rand::fill(buf).expect("OS random number generator");
    });
    let mut engine = Engine::new(
        engine_config(connection("bench", true, Some(local), Some(target))),
        rng,
    );
    let mut buf = vec![0u8; 65_535];
    let (mut in_flight, mut established, mut failed) = (0usize, 0u64, 0u64);
    let start = Instant::now();
    let end = match hold {
        None => start + DURATION,
        Some(_) => start + HOLD_LIMIT,
    };
    let mut established_by_end = 0;
    loop {
        let now = Instant::now();
        let enough = hold.is_some_and(|n| established + in_flight as u64 >= n);
        if now < end && !enough {
            while in_flight < WINDOW && hold.is_none_or(|n| established + (in_flight as u64) < n) {
                engine
                    .initiate(now, "bench")
                    .map_err(|e| anyhow::anyhow!("initiate: {e}"))?;
                in_flight += 1;
            }
        } else if in_flight == 0 || now > end + Duration::from_secs(10) {
            break;
        }
        while let Some(t) = engine.poll_transmit() {
            let socket = sockets
                .iter()
                .find(|s| s.bound().port() == t.local.port())
                .context("no socket for the engine's local port")?;
            socket
                .send(t.local.ip(), t.remote, &t.payload)
                .context("sending")?;
        }
        while engine.poll_sa_event().is_some() {}
        while let Some(e) = engine.poll_event() {
            match e {
                Event::IkeSaEstablished { .. } => {
                    established += 1;
                    if Instant::now() <= end {
                        established_by_end = established;
                    }
                    in_flight = in_flight.saturating_sub(1);
                }
                Event::IkeSaFailed { reason, .. } => {
                    failed += 1;
                    in_flight = in_flight.saturating_sub(1);
                    if failed == 1 {
                        eprintln!("first failed handshake: {reason:?}");
                    }
                }
                _ => {}
            }
        }
        let wait = engine
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(10))
            .min(Duration::from_millis(10));
        let fds: Vec<_> = sockets
            .iter()
            .map(std::os::fd::AsRawFd::as_raw_fd)
            .collect();
        let ready = wait_readable(&fds, Some(wait))?;
        for (socket, _) in sockets.iter().zip(ready).filter(|(_, r)| *r) {
            while let Some(r) = socket.recv(&mut buf)? {
                if r.len <= buf.len() {
                    engine.handle_datagram(Instant::now(), r.local, r.remote, &buf[..r.len]);
                }
            }
        }
        let now = Instant::now();
        if engine.poll_timeout().is_some_and(|t| t <= now) {
            engine.handle_timeout(now);
        }
    }
    Ok(Load {
        established: if hold.is_some() {
            established
        } else {
            established_by_end
        },
        failed,
        elapsed: if hold.is_some() {
            start.elapsed()
        } else {
            DURATION
        },
    })
}

/// (CPU time, resident memory) of process `pid`.
fn usage(pid: u32) -> Result<(Duration, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    // No VmRSS (the process has exited) is an error, not 0 B.
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("process {pid} has no VmRSS: has it exited?"))?;
    Ok((
        Duration::from_secs_f64(ticks as f64 / hz as f64),
        rss_kib * 1024,
    ))
}

/// One responder's figures for one run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rate: f64,
    cpu_us: f64,
    bytes_per_sa: f64,
}

fn measure(load_ns: &Netns, local: Ipv4Addr, target: Ipv4Addr, pid: u32) -> Result<Figures> {
    let (cpu0, rss0) = usage(pid)?;
    let load = generate(load_ns, local, target, None)?;
    let (cpu1, rss1) = usage(pid)?;
    if load.established == 0 {
        bail!("no handshake completed ({} failed)", load.failed);
    }
    if load.failed > 0 {
        eprintln!("{} handshakes failed", load.failed);
    }
    // A fresh responder per run, so its growth is its own; it cannot hold thousands of SAs
    // in no memory at all.
    if rss1 <= rss0 {
        bail!(
            "the responder's VmRSS did not grow ({rss0} B, then {rss1} B) while it took on {} \
             IKE SAs: 0 B per IKE SA is impossible, the measurement is wrong",
            load.established
        );
    }
    let n = load.established as f64;
    Ok(Figures {
        rate: n / load.elapsed.as_secs_f64(),
        cpu_us: (cpu1 - cpu0).as_secs_f64() * 1e6 / n,
        bytes_per_sa: (rss1 - rss0) as f64 / n,
    })
}

/// Establishes `n` IKE SAs with roamgate's responder and returns (n, its resident memory,
/// the rate).
fn hold_phase(n: u64) -> Result<(u64, u64, f64)> {
    let _lab = Lab::new("bench_ike_hold")?;
    let topo = RoadWarrior::build(Options::default())?;
    let target = topo.gw.uplink(0).v4;
    let local = topo.rw.uplink(0).v4;
    let responder = RoamgateResponder::start(&topo.gw.ns, target)?;
    let load = generate(&topo.rw.ns, local, target, Some(n))?;
    if load.established < n {
        bail!(
            "only {} of {n} IKE SAs were established ({} failed)",
            load.established,
            load.failed
        );
    }
    let (_, rss) = usage(responder.child.id())?;
    println!("hold: {n} IKE SAs, responder VmRSS {} MiB", rss >> 20);
    Ok((n, rss, load.established as f64 / load.elapsed.as_secs_f64()))
}

struct RoamgateResponder {
    child: Child,
}

impl RoamgateResponder {
    fn start(ns: &Netns, listen: Ipv4Addr) -> Result<RoamgateResponder> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(exe)
            .env(RESPONDER_ENV, listen.to_string())
            .env(
                "RUST_LOG",
                std::env::var("ROAMGATE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .context("starting roamgate's responder")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            bail!("roamgate's responder did not start: {line:?}");
        }
        Ok(RoamgateResponder { child })
    }
}

impl Drop for RoamgateResponder {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn charon_responder(lab: &Lab, ns: &Netns, listen: Ipv4Addr) -> Result<Charon> {
    let params = TunnelParams::default();
    let swanctl = Section::new()
        .section(
            "connections",
            Section::new().section(
                "bench",
                Section::new()
                    .set("local_addrs", listen)
                    .set("mobike", "no")
                    .set("proposals", PROPOSAL)
                    .section("local", Section::new().set("auth", "psk").set("id", GW_ID))
                    .section("remote", Section::new().set("auth", "psk").set("id", RW_ID))
                    .section(
                        "children",
                        Section::new().section(
                            "net",
                            Section::new()
                                .set("local_ts", "10.101.0.0/24")
                                .set("remote_ts", "10.200.0.0/24")
                                .set("esp_proposals", ESP_PROPOSAL),
                        ),
                    ),
            ),
        )
        .section(
            "secrets",
            Section::new().section(
                "ike-bench",
                Section::new()
                    .set("id-1", GW_ID)
                    .set("id-2", RW_ID)
                    .set("secret", format!("\"{}\"", params.psk)),
            ),
        );
    // Quiet logs, as a production responder under load would run (ROAMGATE_BENCH_LOG keeps the
    // lab's levels for debugging).
    let quiet = std::env::var_os("ROAMGATE_BENCH_LOG").is_none();
    let options = CharonOptions {
        log_levels: ["default", "ike", "knl", "net", "cfg"]
            .iter()
            .filter(|_| quiet)
            .map(|s| (*s, 0))
            .collect(),
        settings: vec![
            ("dos_protection", "no".into()),
            ("cookie_threshold", "1000000".into()),
            ("block_threshold", "1000000".into()),
            ("init_limit_half_open", "0".into()),
            ("install_routes", "no".into()),
        ],
        ..CharonOptions::default()
    };
    Ok(Charon::start_with(lab, ns, "gw", &swanctl, &options)?)
}

fn main() -> Result<()> {
    if let Ok(listen) = std::env::var(RESPONDER_ENV) {
        return responder_main(&listen);
    }
    roamgate_lab::require_root().context("the IKE benchmark runs in the lab")?;
    let runs: usize = std::env::var("ROAMGATE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..runs {
        let lab = Lab::new(&format!("bench_ike_{run}"))?;
        let topo = RoadWarrior::build(Options::default())?;
        let target = topo.gw.uplink(0).v4;
        let local = topo.rw.uplink(0).v4;
        {
            let responder = RoamgateResponder::start(&topo.gw.ns, target)?;
            let f = measure(&topo.rw.ns, local, target, responder.child.id())
                .context("roamgate responder")?;
            println!("run {run}: roamgate {f:?}");
            ours.push(f);
        }
        {
            let charon = charon_responder(&lab, &topo.gw.ns, target)?;
            let f =
                measure(&topo.rw.ns, local, target, charon.pid()).context("charon responder")?;
            println!("run {run}: charon   {f:?}");
            theirs.push(f);
        }
    }
    let hold = match std::env::var("ROAMGATE_BENCH_IKE_HOLD") {
        Ok(n) => Some(hold_phase(
            n.parse()
                .context("ROAMGATE_BENCH_IKE_HOLD: a number of IKE SAs")?,
        )?),
        Err(_) => None,
    };
    let pick =
        |v: &[Figures], f: fn(&Figures) -> f64| median(&mut v.iter().map(f).collect::<Vec<_>>());
    let (r_rate, c_rate) = (pick(&ours, |f| f.rate), pick(&theirs, |f| f.rate));
    let (r_cpu, c_cpu) = (pick(&ours, |f| f.cpu_us), pick(&theirs, |f| f.cpu_us));
    let (r_mem, c_mem) = (
        pick(&ours, |f| f.bytes_per_sa),
        pick(&theirs, |f| f.bytes_per_sa),
    );
    let mut ratios: Vec<f64> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| a.rate / b.rate)
        .collect();
    let table = format!(
        "| responder | handshakes/s | CPU per handshake | memory per IKE SA |\n\
         |---|---|---|---|\n\
         | roamgate | {r_rate:.0} | {r_cpu:.0} µs | {:.1} KiB |\n\
         | strongSwan charon 5.9.8 | {c_rate:.0} | {c_cpu:.0} µs | {:.1} KiB |\n\
         | ratio roamgate / charon | {:.2}× (median of per-run ratios) | {:.2}× less CPU | {:.2}× |\n\n\
         {runs} runs of {} s, {WINDOW} handshakes in flight, PSK + x25519 + AES-GCM-128, one CHILD_SA each. \
         100k IKE SAs at roamgate's memory per SA: {:.2} GiB.\n",
        r_mem / 1024.0,
        c_mem / 1024.0,
        median(&mut ratios),
        c_cpu / r_cpu,
        r_mem / c_mem,
        DURATION.as_secs(),
        r_mem * 100_000.0 / (1u64 << 30) as f64,
    );
    let table = match hold {
        Some((n, rss, rate)) => format!(
            "{table}\nHold phase (`ROAMGATE_BENCH_IKE_HOLD={n}`): roamgate's responder held {n} IKE SAs (each with a CHILD_SA) at {:.2} GiB resident, {:.1} KiB per SA, established at {rate:.0}/s.\n",
            rss as f64 / (1u64 << 30) as f64,
            rss as f64 / n as f64 / 1024.0,
        ),
        None => table,
    };
    println!("\n{table}");
    let path = write_results("ike.md", &table)?;
    println!("results: {}", path.display());
    Ok(())
}
