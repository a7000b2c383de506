//! `cargo xtask demo`: the lab demo.
//!
//! Part 1, roamgate as the gateway: a strongSwan 5.9.8 road warrior with two uplinks connects
//! to the multihomed gateway, where `roamgate gateway` (XDP + AF_XDP workers) and
//! `roamgate control` (IKEv2) run from their TOML files; live traffic both ways at 1 ms
//! between the road warrior's virtual IP and the LAN host, then ping and iperf3, the data
//! plane's counters and the proof that no ESP reached the gateway's kernel.
//!
//! Part 2, the anchor a failover must beat: strongSwan at both ends, the road warrior's first
//! uplink fails, the measured outage. (roamgate's own MOBIKE failover replaces this part when
//! it lands.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use roamgate_lab::capture::{count_esp_in_kernel, esp_in_kernel};
use roamgate_lab::process::Supervised;
use roamgate_lab::roamgate::{
    ControlConfig, dataplane_counters, gateway_toml, unpin, wait_gateway_ready,
};
use roamgate_lab::scenario::{Fault, strongswan_failover};
use roamgate_lab::strongswan::{self, Charon, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};
use roamgate_lab::traffic::{self, ProbeConfig, ProbeStream};
use roamgate_lab::{Lab, Netns};

pub(crate) fn run() -> Result<()> {
    if roamgate_lab::require_root().is_err() {
        bail!(
            "`cargo xtask demo` needs root (network namespaces, XDP, strongSwan): run it as root"
        );
    }
    crate::deps::run(false)?;
    crate::test::ensure_bpffs()?;
    let roamgate = build_roamgate()?;
    roamgate_gateway_part(&roamgate)?;
    anchor_part()
}

/// Builds the `roamgate` binary and returns its path.
fn build_roamgate() -> Result<PathBuf> {
    println!("demo: building roamgate");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--release", "--package", "roamgate"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("`cargo build --release --package roamgate` failed ({status})");
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("release/roamgate");
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    Ok(bin)
}

/// A roamgate process in `ns` (see [`roamgate_lab::roamgate::spawn`]).
fn spawn(lab: &Lab, ns: &Netns, name: &str, bin: &Path, args: &[&str]) -> Result<Supervised> {
    Ok(roamgate_lab::roamgate::spawn(
        ns,
        name,
        bin,
        args,
        lab.logs(),
    )?)
}

/// `roamgate control`'s configuration: the lab's road-warrior gateway, its SAs going into the
/// data plane's maps under `pins`.
fn control_toml(pins: &Path, params: &TunnelParams, topo: &RoadWarrior, lan: &str) -> String {
    let addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let mut config = ControlConfig::road_warrior_gateway(params, &addrs, lan);
    config.daemon.bpf_pin_dir = Some(pins.display().to_string());
    config.daemon.log_level = Some("info".into());
    config.render()
}

fn roamgate_gateway_part(bin: &Path) -> Result<()> {
    let lab = Lab::new("demo_roamgate")?;
    println!(
        "\ndemo, part 1: strongSwan road warrior (2 uplinks) → ISP 1 / ISP 2 → roamgate gateway (2 WAN links) → LAN host"
    );
    let topo = RoadWarrior::build(Options::default())?;
    // Hosts behind real NICs send complete checksums; veth leaves them to "hardware".
    topo.lan.ns.exec("ethtool", &["-K", "eth0", "tx", "off"])?;
    let pins = PathBuf::from(format!("/sys/fs/bpf/roamgate-demo-{}", std::process::id()));
    let params = TunnelParams::default();
    let lan = topo.gw.lan.clone().context("the gateway has a LAN")?;
    let gateway_conf = lab.write_log("gateway.toml", &gateway_toml(&pins))?;
    let control_conf = lab.write_log(
        "control.toml",
        &control_toml(&pins, &params, &topo, &lan.prefix_v4),
    )?;
    count_esp_in_kernel(&topo.gw.ns)?;
    let gateway_conf = gateway_conf.to_string_lossy().into_owned();
    let control_conf = control_conf.to_string_lossy().into_owned();
    let mut gateway = spawn(
        &lab,
        &topo.gw.ns,
        "roamgate-gateway",
        bin,
        &["gateway", "--config", &gateway_conf],
    )?;
    // Every map pinned and the workers running: the gateway pins its readiness marker last.
    wait_gateway_ready(&pins, Duration::from_secs(20), &mut gateway)?;
    println!("demo: roamgate gateway up: {gateway_conf}");
    let mut control = spawn(
        &lab,
        &topo.gw.ns,
        "roamgate-control",
        bin,
        &["control", "--config", &control_conf],
    )?;
    std::thread::sleep(Duration::from_millis(500));
    control.check_running()?;
    println!("demo: roamgate control up: {control_conf}");

    let gw_addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let rw = Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&params, &gw_addrs, &lan.prefix_v4),
    )?;
    rw.initiate("home", "lan")?;
    let sa = rw.wait_established("home", "lan", Duration::from_secs(20))?;
    let vip = sa.local_vips.first().cloned().context("no virtual IP")?;
    println!(
        "demo: IKE SA established by roamgate: {} {} ↔ {}, virtual IP {vip}, CHILD_SA in {} out {}",
        sa.algorithms,
        sa.local,
        sa.remote,
        sa.children.first().map_or("", |c| c.spi_in.as_str()),
        sa.children.first().map_or("", |c| c.spi_out.as_str()),
    );

    let (lan_v4, _) = topo.lan.lan_addr.context("the LAN host has an address")?;
    let config = ProbeConfig {
        duration: Duration::from_secs(3),
        ..ProbeConfig::default()
    };
    let up = ProbeStream::start(
        &topo.rw.ns,
        &topo.lan.ns,
        SocketAddr::new(lan_v4.into(), 9000),
        config,
    )?;
    let down = ProbeStream::start(
        &topo.lan.ns,
        &topo.rw.ns,
        format!("{vip}:9001").parse()?,
        config,
    )?;
    println!("demo: live traffic both ways at 1 ms for 3 s");
    let (up, down) = (up.finish(), down.finish());
    println!("demo: road warrior → LAN: {up}");
    println!("demo: LAN → road warrior: {down}");
    let tcp = traffic::iperf3(
        &topo.lan.ns,
        &topo.rw.ns,
        &lan_v4.to_string(),
        3,
        None,
        lab.logs(),
    )?;
    println!(
        "demo: iperf3 TCP road warrior → LAN: {:.0} Mbit/s (bounded by the road warrior's userspace ESP)",
        tcp.bits_per_second / 1e6
    );
    let counters = dataplane_counters(bin, &pins)?;
    let esp = esp_in_kernel(&topo.gw.ns)?;
    println!(
        "demo: roamgate data plane: {} ESP packets decapsulated, {} encapsulated; ESP that reached the gateway's kernel: {} raw, {} in UDP",
        counters.get("decapsulated").copied().unwrap_or(0),
        counters.get("encapsulated").copied().unwrap_or(0),
        esp.raw,
        esp.in_udp,
    );
    println!("demo: logs and configs in {}", lab.logs().display());
    let lost = up.lost + down.lost;
    drop(rw);
    control.stop(Duration::from_secs(5));
    gateway.stop(Duration::from_secs(5));
    unpin(bin, &pins)?;
    if up.received == 0 || down.received == 0 || lost > (up.sent + down.sent) / 100 {
        bail!("traffic through roamgate did not flow: {lost} probes lost; see the logs above");
    }
    Ok(())
}

fn anchor_part() -> Result<()> {
    let lab = Lab::new("demo")?;
    println!(
        "\ndemo, part 2 (the anchor): strongSwan 5.9.8 at both ends (kernel-libipsec), MOBIKE on, DPD 2 s"
    );
    println!(
        "demo: traffic both ways at 1 ms; after 3 s the road warrior's first uplink goes down"
    );
    let report = strongswan_failover(
        &lab,
        Options::default(),
        Fault::ClientUplinkDown,
        Duration::from_secs(3),
        Duration::from_secs(5),
    )?;
    println!("\n{report}\n");
    println!(
        "demo: outage {:.1} ms; traffic {}",
        report.outage().as_secs_f64() * 1e3,
        if report.recovered() {
            "recovered"
        } else {
            "did NOT recover"
        }
    );
    println!(
        "demo: logs and generated configs in {}",
        lab.logs().display()
    );
    println!(
        "demo: metrics: none yet — roamgate's Prometheus /metrics is the next step; MOBIKE failover through roamgate replaces this anchor when it lands"
    );
    if !report.recovered() {
        bail!("the failover did not recover; see the logs above");
    }
    Ok(())
}
