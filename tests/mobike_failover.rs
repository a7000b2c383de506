//! MOBIKE through roamgate in the lab (acceptance scenario 1): a real strongSwan 5.9.8 road
//! warrior with two uplinks on separate segments, the roamgate gateway (XDP data plane and
//! `roamgate control`) with two WAN links, a LAN host; sequenced UDP both ways at 1 ms; the
//! road warrior's first uplink goes down. strongSwan checks its paths (roamgate answers each
//! copy to its source), sends UPDATE_SA_ADDRESSES from its second uplink to roamgate's
//! second WAN address (announced in IKE_AUTH), and roamgate moves the IKE SA and the
//! CHILD_SA in place: traffic comes back both ways. The strongSwan↔strongSwan anchor runs in
//! the same test and both outages are printed (the gaps are compared in the benchmark, not
//! here).
//!
//! Needs root, bpffs and strongSwan; fails (never skips) with the reason otherwise.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roamgate_lab::faults::{self, Side};
use roamgate_lab::roamgate::{ControlConfig, gateway_toml, spawn, unpin, wait_gateway_ready};
use roamgate_lab::scenario::{Fault, strongswan_failover};
use roamgate_lab::strongswan::{self, Charon, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};
use roamgate_lab::traffic::{ProbeConfig, ProbeStream};
use roamgate_lab::{Lab, require_root};

const BIN: &str = env!("CARGO_BIN_EXE_roamgate");
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(6);
/// Traffic counts as recovered when neither direction's trailing silence is longer.
const TOLERANCE: Duration = Duration::from_millis(500);

fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_strongswan_road_warrior_whose_uplink_goes_down_moves_through_roamgate_in_place() {
    must(require_root());
    let lab = must(Lab::new("mobike_rw_uplink"));
    let topo = must(RoadWarrior::build(Options::default()));
    must(topo.lan.ns.exec("ethtool", &["-K", "eth0", "tx", "off"]));
    let pins = PathBuf::from(format!(
        "/sys/fs/bpf/roamgate-mobike-{}",
        std::process::id()
    ));
    let params = TunnelParams::default();
    let lan = topo.gw.lan.clone().expect("the gateway has a LAN");
    let addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let mut config = ControlConfig::road_warrior_gateway(&params, &addrs, &lan.prefix_v4);
    config.daemon.bpf_pin_dir = Some(pins.display().to_string());
    config.daemon.log_level = Some("info".into());
    let gateway_conf = must(lab.write_log("gateway.toml", &gateway_toml(&pins)));
    let control_conf = must(lab.write_log("control.toml", &config.render()));
    let bin = Path::new(BIN);
    let mut gateway = must(spawn(
        &topo.gw.ns,
        "roamgate-gateway",
        bin,
        &["gateway", "--config", &gateway_conf.to_string_lossy()],
        lab.logs(),
    ));
    must(wait_gateway_ready(
        &pins,
        Duration::from_secs(20),
        &mut gateway,
    ));
    let mut control = must(spawn(
        &topo.gw.ns,
        "roamgate-control",
        bin,
        &["control", "--config", &control_conf.to_string_lossy()],
        lab.logs(),
    ));
    std::thread::sleep(Duration::from_millis(500));
    must(control.check_running());

    let rw = must(Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&params, &addrs, &lan.prefix_v4),
    ));
    must(rw.initiate("home", "lan"));
    let sa = must(rw.wait_established("home", "lan", Duration::from_secs(20)));
    let vip = sa.local_vips.first().cloned().expect("a virtual IP");
    let spi_before: Vec<String> = sa.children.iter().map(|c| c.spi_in.clone()).collect();
    let before_path = format!("{} → {}", sa.local, sa.remote);

    let (lan_v4, _) = topo.lan.lan_addr.expect("the LAN host has an address");
    let probe = ProbeConfig {
        duration: BEFORE + AFTER,
        ..ProbeConfig::default()
    };
    let up = must(ProbeStream::start(
        &topo.rw.ns,
        &topo.lan.ns,
        SocketAddr::new(lan_v4.into(), 9000),
        probe,
    ));
    let down = must(ProbeStream::start(
        &topo.lan.ns,
        &topo.rw.ns,
        must(format!("{vip}:9001").parse::<SocketAddr>()),
        probe,
    ));
    must(up.wait_received(100, BEFORE));
    must(down.wait_received(100, BEFORE));
    std::thread::sleep(BEFORE.saturating_sub(up.elapsed()));
    must(faults::link_down(&topo.rw, 0, Side::Host));
    let (up, down) = (up.finish(), down.finish());
    let after = must(rw.list_sas());
    let sa_after = after.iter().find(|s| s.name == "home");
    let after_path = sa_after.map_or("no IKE SA".to_string(), |s| {
        format!("{} → {} ({})", s.local, s.remote, s.state)
    });
    let outage = up.longest_gap.max(down.longest_gap);
    println!("roamgate gateway: path before {before_path}, after {after_path}");
    println!("roamgate gateway: upstream {up}");
    println!("roamgate gateway: downstream {down}");
    println!(
        "roamgate gateway: outage {:.1} ms",
        outage.as_secs_f64() * 1e3
    );
    drop(rw);
    control.stop(Duration::from_secs(5));
    gateway.stop(Duration::from_secs(5));
    let _ = unpin(bin, &pins);

    // The anchor, in the same run: strongSwan at both ends.
    let anchor_lab = must(Lab::new("mobike_rw_uplink_anchor"));
    let anchor = must(strongswan_failover(
        &anchor_lab,
        Options::default(),
        Fault::ClientUplinkDown,
        BEFORE,
        AFTER,
    ));
    println!("anchor (strongSwan gateway):\n{anchor}");

    let sa_after = sa_after.unwrap_or_else(|| {
        panic!(
            "the road warrior lost its IKE SA; logs in {}",
            lab.logs().display()
        )
    });
    assert_eq!(
        sa_after.state,
        "ESTABLISHED",
        "logs in {}",
        lab.logs().display()
    );
    assert!(
        sa_after.remote.starts_with(&format!("{}[", addrs[1])),
        "the road warrior moved to roamgate's second WAN address, not {}; logs in {}",
        sa_after.remote,
        lab.logs().display()
    );
    assert!(
        up.recovered(TOLERANCE) && down.recovered(TOLERANCE),
        "traffic through roamgate did not come back (up {up}, down {down}); logs in {}",
        lab.logs().display()
    );
    // strongSwan (kernel-libipsec) may rekey its CHILD_SA after the move; roamgate moved
    // its own in place, which the traffic above crossed.
    println!("CHILD_SA before: {spi_before:?}");
}
