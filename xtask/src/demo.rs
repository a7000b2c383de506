//! `cargo xtask demo`: the lab demo.
//!
//! Part 1, roamgate as the gateway: a strongSwan 5.9.8 road warrior with two uplinks connects
//! to the multihomed gateway, where `roamgate gateway` (XDP + AF_XDP workers) and
//! `roamgate control` (IKEv2) run from their TOML files; live traffic both ways at 1 ms
//! between the road warrior's virtual IP and the LAN host, then ping and iperf3, the data
//! plane's counters and the proof that no ESP reached the gateway's kernel.
//!
//! Part 2, failovers: the same lab, traffic both ways at 1 ms, then a fault — the road
//! warrior's first uplink goes down; roamgate's first WAN link loses carrier — through
//! roamgate (MOBIKE moves the SAs in place) and, in the same run, through a strongSwan gateway
//! (the anchor); the measured outages side by side.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use roamgate_lab::Lab;
use roamgate_lab::capture::{count_esp_in_kernel, esp_in_kernel};
use roamgate_lab::roamgate::{ControlConfig, RoamgateGateway};
use roamgate_lab::scenario::{FailoverReport, Fault, Gateway, failover};
use roamgate_lab::strongswan::{self, Charon, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};
use roamgate_lab::traffic::{self, ProbeConfig, ProbeStream};

pub(crate) fn run() -> Result<()> {
    if roamgate_lab::require_root().is_err() {
        bail!(
            "`cargo xtask demo` needs root (network namespaces, XDP, strongSwan): run it as root"
        );
    }
    crate::deps::run(false)?;
    crate::test::ensure_bpffs()?;
    println!("demo: building roamgate");
    let roamgate = roamgate_lab::roamgate::release_binary()?;
    roamgate_gateway_part(&roamgate)?;
    failover_part(&roamgate)
}

fn roamgate_gateway_part(bin: &Path) -> Result<()> {
    let lab = Lab::new("demo_roamgate")?;
    println!(
        "\ndemo, part 1: strongSwan road warrior (2 uplinks) → ISP 1 / ISP 2 → roamgate gateway (2 WAN links) → LAN host"
    );
    let topo = RoadWarrior::build(Options::default())?;
    // Hosts behind real NICs send complete checksums; veth leaves them to "hardware".
    topo.lan.ns.exec("ethtool", &["-K", "eth0", "tx", "off"])?;
    let params = TunnelParams::default();
    let lan = topo.gw.lan.clone().context("the gateway has a LAN")?;
    let gw_addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    count_esp_in_kernel(&topo.gw.ns)?;
    let mut gateway = RoamgateGateway::start(
        &lab,
        &topo.gw.ns,
        bin,
        ControlConfig::road_warrior_gateway(&params, &gw_addrs, &lan.prefix_v4),
    )?;
    println!(
        "demo: roamgate gateway and control up: {}",
        lab.logs().join("gateway.toml").display()
    );
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
    gateway.check_running()?;
    let counters = gateway.counters()?;
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
    gateway.stop()?;
    if up.received == 0 || down.received == 0 || lost > (up.sent + down.sent) / 100 {
        bail!("traffic through roamgate did not flow: {lost} probes lost; see the logs above");
    }
    Ok(())
}

fn failover_part(bin: &Path) -> Result<()> {
    println!(
        "\ndemo, part 2: failovers, traffic both ways at 1 ms; through roamgate, then through a strongSwan 5.9.8 gateway (the anchor, kernel-libipsec, MOBIKE on, DPD 2 s) in the same run"
    );
    let mut rows = Vec::new();
    for (name, fault) in [
        ("client_uplink", Fault::ClientUplinkDown),
        ("gateway_carrier", Fault::GatewayCarrierLoss),
    ] {
        let mut measured: Vec<FailoverReport> = Vec::new();
        for gateway in [Gateway::Roamgate(bin), Gateway::StrongSwan] {
            let lab = Lab::new(&format!("demo_{name}_{gateway}"))?;
            println!("demo: {gateway} gateway: after 3 s, {fault}");
            let report = failover(
                &lab,
                gateway,
                Options::default(),
                fault,
                Duration::from_secs(3),
                Duration::from_secs(5),
            )?;
            println!("\n{report}\nlogs: {}\n", lab.logs().display());
            measured.push(report);
        }
        rows.push((fault, measured));
    }
    println!("demo: measured outages (longest gap of the two directions)");
    println!("| fault | roamgate | strongSwan gateway |");
    println!("|---|---|---|");
    let cell = |r: &FailoverReport| {
        format!(
            "{:.1} ms{}",
            r.outage().as_secs_f64() * 1e3,
            if r.recovered() {
                ""
            } else {
                ", never recovered"
            }
        )
    };
    for (fault, measured) in &rows {
        println!(
            "| {fault} | {} | {} |",
            cell(&measured[0]),
            cell(&measured[1])
        );
    }
    println!("demo: metrics: none yet — roamgate's Prometheus /metrics is the next step");
    for (fault, measured) in &rows {
        if !measured[0].recovered() {
            bail!("traffic through roamgate did not recover from \"{fault}\"; see the logs above");
        }
    }
    Ok(())
}
