//! MOBIKE through roamgate in the lab: a real strongSwan 5.9.8 road warrior with two uplinks on
//! separate segments, the roamgate gateway (XDP data plane and `roamgate control`) with two
//! WAN links, a LAN host; sequenced UDP both ways at 1 ms; one fault. The strongSwan gateway
//! (the anchor) meets the same fault in the same test, and both outages are printed (the gaps
//! are compared over many runs in the failover benchmark, not here).
//!
//! - The road warrior's first uplink goes down (acceptance scenario 1): strongSwan checks
//!   its paths (roamgate answers each copy to its source) and sends UPDATE_SA_ADDRESSES from
//!   its second uplink to roamgate's second WAN address, announced in IKE_AUTH; roamgate
//!   moves the IKE SA and its CHILD_SA in place.
//! - roamgate's first WAN link loses carrier, or goes down (scenario 3): `roamgate control`
//!   sees it over netlink, and as the responder sends its new address list from its second
//!   WAN address to the road warrior's second uplink; strongSwan moves there (a strongSwan
//!   gateway never recovers from this).
//! - Site to site (scenario 2): roamgate as a branch router (the initiator, two uplinks, a
//!   LAN host) with a strongSwan gateway at the head office; the branch's first uplink goes
//!   down; `roamgate control` checks the pairs left and moves the tunnel with
//!   UPDATE_SA_ADDRESSES. The anchor is strongSwan as the branch router.
//! - The road warrior behind a router; moving into and out of a NAT (scenario 4); losing
//!   IPv4 and moving to IPv6, then back (scenario 6); its captured MOBIKE requests replayed
//!   and garbled from a spoofed source (scenario 5).
//!
//! Needs root, bpffs and strongSwan; fails (never skips) with the reason otherwise.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use roamgate_lab::capture::Capture;
use roamgate_lab::faults::{self, Side};
use roamgate_lab::packet::{PacketSocket, SEND_ONLY};
use roamgate_lab::roamgate::{ControlConfig, RoamgateGateway};
use roamgate_lab::scenario::{FailoverReport, Fault, Gateway, branch_failover, failover};
use roamgate_lab::strongswan::{self, Charon, TunnelParams};
use roamgate_lab::topology::RoadWarrior;
use roamgate_lab::topology::{Fabric, Options};
use roamgate_lab::traffic::{ProbeReport, probe_both_ways};
use roamgate_lab::{Lab, require_root};

const BIN: &str = env!("CARGO_BIN_EXE_roamgate");
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(6);

fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// The road warrior's (or head office's) own end of a path `local → remote (…)`.
fn local_end(path: &str) -> &str {
    path.split(" → ").next().unwrap_or_default()
}

/// Through roamgate, the SA `moved` as `what` says, is established, and traffic came back.
fn assert_moved_and_recovered(r: &FailoverReport, lab: &Lab, moved: bool, what: &str) {
    assert!(
        moved && r.path_after.contains("(ESTABLISHED;"),
        "{what}:\n{r}\nlogs in {}",
        lab.logs().display()
    );
    assert!(
        r.recovered(),
        "traffic through roamgate came back:\n{r}\nlogs in {}",
        lab.logs().display()
    );
}

/// The fault through roamgate, then through the strongSwan anchor; both reports printed.
fn through_roamgate_and_anchor(name: &str, fault: Fault) -> (FailoverReport, FailoverReport, Lab) {
    on_both(name, |lab, gateway| {
        failover(lab, gateway, Options::default(), fault, BEFORE, AFTER)
    })
}

/// `scenario` through roamgate, then through the strongSwan anchor, each in its own lab.
fn on_both(
    name: &str,
    scenario: impl Fn(&Lab, Gateway<'_>) -> roamgate_lab::Result<FailoverReport>,
) -> (FailoverReport, FailoverReport, Lab) {
    must(require_root());
    let lab = must(Lab::new(name));
    let report = must(scenario(&lab, Gateway::Roamgate(Path::new(BIN))));
    println!("{report}\nlogs: {}", lab.logs().display());
    let anchor_lab = must(Lab::new(&format!("{name}_anchor")));
    let anchor = must(scenario(&anchor_lab, Gateway::StrongSwan));
    println!("{anchor}");
    // The measurement is real only if traffic flowed both ways before the fault.
    assert!(report.upstream.received > 1000, "{report}");
    assert!(report.downstream.received > 1000, "{report}");
    (report, anchor, lab)
}

#[test]
fn a_strongswan_road_warrior_whose_uplink_goes_down_moves_through_roamgate_in_place() {
    let (r, _, lab) = through_roamgate_and_anchor("mobike_rw_uplink", Fault::ClientUplinkDown);
    assert_moved_and_recovered(
        &r,
        &lab,
        r.path_after.contains("→ 198.18.2.1["),
        "the road warrior moved to roamgate's second WAN address",
    );
}

#[test]
fn roamgate_losing_carrier_on_its_wan_link_moves_the_road_warrior_to_its_other_one() {
    let (r, anchor, lab) =
        through_roamgate_and_anchor("mobike_gw_carrier", Fault::GatewayCarrierLoss);
    assert_moved_and_recovered(
        &r,
        &lab,
        r.path_after.contains("→ 198.18.2.1["),
        "the road warrior moved to roamgate's second WAN address",
    );
    println!(
        "anchor recovered: {} (a strongSwan gateway does not announce its change)",
        anchor.recovered()
    );
}

#[test]
fn roamgate_whose_wan_interface_goes_down_moves_the_road_warrior_to_its_other_one() {
    let (r, _, lab) = through_roamgate_and_anchor("mobike_gw_down", Fault::GatewayUplinkDown);
    assert_moved_and_recovered(
        &r,
        &lab,
        r.path_after.contains("→ 198.18.2.1["),
        "the road warrior moved to roamgate's second WAN address",
    );
}

#[test]
fn a_strongswan_road_warrior_behind_a_router_moves_through_roamgate_when_its_uplink_goes_down() {
    let router = Options {
        fabric: Fabric::Router,
        nat: None,
    };
    let (r, _, lab) = on_both("mobike_rw_uplink_router", |lab, gateway| {
        failover(lab, gateway, router, Fault::ClientUplinkDown, BEFORE, AFTER)
    });
    // Behind the router, roamgate's first address stays reachable: the road warrior's own
    // end moves.
    assert_moved_and_recovered(
        &r,
        &lab,
        local_end(&r.path_after) != local_end(&r.path_before),
        "the road warrior moved to its second uplink",
    );
}

#[test]
fn a_roamgate_branch_router_whose_uplink_goes_down_moves_its_tunnel_in_place() {
    let (r, _, lab) = on_both("mobike_branch_uplink", |lab, branch| {
        branch_failover(lab, branch, Options::default(), BEFORE, AFTER)
    });
    // The head office's view: its IKE SA now ends at the branch's second uplink.
    assert_moved_and_recovered(
        &r,
        &lab,
        r.path_after.contains("→ 198.18.2.1["),
        "the tunnel moved to the branch's second uplink",
    );
}

/// The "IKE SA moved" lines of `roamgate control`'s log in `lab`.
fn moves_logged(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.logs().join("roamgate-control.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("IKE SA moved"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_road_warrior_moving_into_and_out_of_a_nat_keeps_its_tunnel_through_roamgate() {
    // strongSwan's kernel-libipsec encapsulates ESP in UDP on every path (it fakes a NAT:
    // "faking NAT situation to enforce UDP encapsulation"), so what changes here is the
    // NAT itself: its mapping on the way in, none on the way out. The engine's switch of
    // encapsulation on and off is shown in control/tests/engine_mobike.rs.
    for (name, nat) in [("mobike_into_nat", 1), ("mobike_out_of_nat", 0)] {
        let behind = Options {
            fabric: Fabric::Bridges,
            nat: Some(nat),
        };
        let (r, _, lab) = on_both(name, |lab, gateway| {
            failover(lab, gateway, behind, Fault::ClientUplinkDown, BEFORE, AFTER)
        });
        assert_moved_and_recovered(
            &r,
            &lab,
            local_end(&r.path_after) != local_end(&r.path_before),
            "the road warrior moved to its other uplink",
        );
        let moves = moves_logged(&lab);
        assert!(
            moves.iter().any(|l| l.contains("udp_encap=true")),
            "roamgate kept UDP encapsulation, as the peer asks: {moves:?}"
        );
    }
}

/// Deletes (or, with `add`, adds back) the road warrior's addresses of one family on both
/// uplinks.
fn rw_addresses(topo: &RoadWarrior, v6: bool, add: bool) {
    for u in &topo.rw.uplinks {
        let addr = if v6 {
            format!("{}/64", u.v6)
        } else {
            format!("{}/24", u.v4)
        };
        let verb = if add { "add" } else { "del" };
        must(topo.rw.ns.ip(&["addr", verb, &addr, "dev", &u.ifname]));
    }
}

/// [`probe_both_ways`] between the road warrior's virtual IP `vip` and the LAN host, the
/// fault after [`BEFORE`].
fn probed(topo: &RoadWarrior, vip: &str, fault: impl FnOnce()) -> (ProbeReport, ProbeReport) {
    let (lan_v4, _) = topo.lan.lan_addr.expect("the LAN host has an address");
    let (up, down, ()) = must(probe_both_ways(
        (
            &topo.rw.ns,
            must(format!("{vip}:9001").parse::<SocketAddr>()),
        ),
        (&topo.lan.ns, SocketAddr::new(lan_v4.into(), 9000)),
        (BEFORE, AFTER),
        || {
            fault();
            Ok(())
        },
    ));
    (up, down)
}

#[test]
fn a_road_warrior_that_loses_ipv4_moves_to_ipv6_through_roamgate_and_back() {
    must(require_root());
    let lab = must(Lab::new("mobike_v4_v6"));
    let topo = must(RoadWarrior::build(Options::default()));
    must(topo.lan.ns.exec("ethtool", &["-K", "eth0", "tx", "off"]));
    let params = TunnelParams::default();
    let lan = topo.gw.lan.clone().expect("the gateway has a LAN");
    // roamgate announces both families; the road warrior starts on IPv4.
    let v4: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let both: Vec<String> = v4
        .iter()
        .cloned()
        .chain(topo.gw.uplinks.iter().map(|u| u.v6.to_string()))
        .collect();
    let gateway = must(RoamgateGateway::start(
        &lab,
        &topo.gw.ns,
        Path::new(BIN),
        ControlConfig::road_warrior_gateway(&params, &both, &lan.prefix_v4),
    ));
    let rw = must(Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&params, &v4, &lan.prefix_v4),
    ));
    must(rw.initiate("home", "lan"));
    let sa = must(rw.wait_established("home", "lan", Duration::from_secs(20)));
    let vip = sa.local_vips.first().cloned().expect("a virtual IP");
    assert!(sa.remote.starts_with("198.18."), "{}", sa.remote);
    let path = || {
        must(rw.list_sas())
            .into_iter()
            .find(|s| s.name == "home")
            .map(|s| (s.local, s.remote, s.state))
    };

    let (up, down) = probed(&topo, &vip, || rw_addresses(&topo, false, false));
    let after_v6 = path();
    println!("IPv4 gone: {after_v6:?}\nupstream {up}\ndownstream {down}");
    assert!(
        after_v6
            .as_ref()
            .is_some_and(|(l, r, s)| l.starts_with("fd00:")
                && r.starts_with("fd00:")
                && s == "ESTABLISHED"),
        "moved to IPv6: {after_v6:?}; logs in {}",
        lab.logs().display()
    );
    assert!(
        up.recovered(Duration::from_millis(500)) && down.recovered(Duration::from_millis(500)),
        "traffic came back over IPv6: {up} / {down}; logs in {}",
        lab.logs().display()
    );

    let (up, down) = probed(&topo, &vip, || {
        rw_addresses(&topo, false, true);
        rw_addresses(&topo, true, false);
    });
    let after_v4 = path();
    println!("IPv6 gone, IPv4 back: {after_v4:?}\nupstream {up}\ndownstream {down}");
    assert!(
        after_v4
            .as_ref()
            .is_some_and(|(l, r, s)| l.starts_with("198.18.")
                && r.starts_with("198.18.")
                && s == "ESTABLISHED"),
        "moved back to IPv4: {after_v4:?}; logs in {}",
        lab.logs().display()
    );
    assert!(
        up.recovered(Duration::from_millis(500)) && down.recovered(Duration::from_millis(500)),
        "traffic came back over IPv4: {up} / {down}; logs in {}",
        lab.logs().display()
    );
    drop(rw);
    must(gateway.stop());
}

/// The IKE requests the road warrior sent from its second uplink to roamgate's second WAN
/// address in the capture at `pcap` (UDP 4500, after the non-ESP marker): the path check and
/// UPDATE_SA_ADDRESSES of its move, and what followed.
fn rw_requests(pcap: &Path, rw: std::net::Ipv4Addr, gw: std::net::Ipv4Addr) -> Vec<Vec<u8>> {
    must(roamgate_lab::pcap::read_pcap_ip(pcap))
        .into_iter()
        .filter_map(|ip| {
            let (src, dst) = (&ip.get(12..16)?, &ip.get(16..20)?);
            let udp = ip.get(usize::from(ip[0] & 0x0f) * 4..)?;
            let payload = udp.get(8..)?;
            let ike = payload.get(4..)?;
            let is_request = payload[..4] == [0, 0, 0, 0]
                && ip[9] == 17
                && u16::from_be_bytes([udp[2], udp[3]]) == 4500
                && **src == rw.octets()
                && **dst == gw.octets()
                && ike.get(19).is_some_and(|f| f & 0x20 == 0);
            is_request.then(|| payload.to_vec())
        })
        .collect()
}

#[test]
fn replayed_and_garbled_mobike_requests_from_a_spoofed_source_move_nothing_in_roamgate() {
    // Acceptance 5 against the real gateway: the road warrior's own path check and
    // UPDATE_SA_ADDRESSES, captured on the wire, sent again from an address of the
    // attacker's, and garbled (an address list that does not authenticate), from it and
    // from the road warrior's own address.
    must(require_root());
    let lab = must(Lab::new("mobike_replay"));
    let topo = must(RoadWarrior::build(Options::default()));
    must(topo.lan.ns.exec("ethtool", &["-K", "eth0", "tx", "off"]));
    let params = TunnelParams::default();
    let lan = topo.gw.lan.clone().expect("the gateway has a LAN");
    let addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let gateway = must(RoamgateGateway::start(
        &lab,
        &topo.gw.ns,
        Path::new(BIN),
        ControlConfig::road_warrior_gateway(&params, &addrs, &lan.prefix_v4),
    ));
    let rw = must(Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&params, &addrs, &lan.prefix_v4),
    ));
    must(rw.initiate("home", "lan"));
    let sa = must(rw.wait_established("home", "lan", Duration::from_secs(20)));
    let vip = sa.local_vips.first().cloned().expect("a virtual IP");
    let pcap = lab.logs().join("rw-wan2.pcap");
    let capture = must(Capture::start(&topo.rw.ns, "wan2", "udp port 4500", &pcap));
    must(faults::link_down(&topo.rw, 0, Side::Host));
    let (rw2, gw2) = (topo.rw.uplink(1).v4, topo.gw.uplink(1).v4);
    let on_second = || {
        must(rw.list_sas())
            .iter()
            .any(|s| s.name == "home" && s.remote.starts_with(&format!("{gw2}[")))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !on_second() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        on_second(),
        "the road warrior moved; logs in {}",
        lab.logs().display()
    );
    must(capture.stop());
    let requests = rw_requests(&pcap, rw2, gw2);
    assert!(
        requests.len() >= 2,
        "the path check and the UPDATE were captured: {}",
        requests.len()
    );
    let moves_before = moves_logged(&lab).len();

    let socket = must(PacketSocket::open(&topo.rw.ns, "wan2", SEND_ONLY));
    let (rw_mac, gw_mac) = (must(topo.rw.ns.mac("wan2")), must(topo.gw.ns.mac("wan2")));
    let frame = |src: std::net::Ipv4Addr, payload: &[u8]| {
        let mut f = roamgate_lab::pcap::ethernet_ipv4_udp((src, 4500), (gw2, 4500), payload);
        f[..6].copy_from_slice(&gw_mac);
        f[6..12].copy_from_slice(&rw_mac);
        f
    };
    let spoofed: std::net::Ipv4Addr = "198.18.2.99".parse().unwrap();
    // roamgate answers a replayed request from its cache, to where the copy came from: its
    // ARP for the spoofed address shows the copies reached it.
    let arp_pcap = lab.logs().join("rw-wan2-arp.pcap");
    let arp = must(Capture::start(
        &topo.rw.ns,
        "wan2",
        &format!("arp and src host {gw2} and dst host {spoofed}"),
        &arp_pcap,
    ));
    let (up, down) = probed(&topo, &vip, || {
        for r in &requests {
            let mut garbled = r.clone();
            let last = garbled.len() - 1;
            garbled[last] ^= 0x5a;
            for f in [
                frame(spoofed, r),
                frame(spoofed, &garbled),
                frame(rw2, &garbled),
            ] {
                must(socket.send(&f));
            }
        }
    });
    must(arp.stop());
    let asked = must(roamgate_lab::capture::dissect(
        &arp_pcap,
        &format!("arp.opcode == 1 && arp.dst.proto_ipv4 == {spoofed}"),
        &[],
    ))
    .len();
    assert!(
        asked > 0,
        "roamgate answered the replayed copies (it looked for {spoofed}); logs in {}",
        lab.logs().display()
    );
    let moves = moves_logged(&lab);
    assert_eq!(
        moves.len(),
        moves_before,
        "nothing moved on the replayed or garbled requests: {moves:?}"
    );
    let after = must(rw.list_sas());
    let home = after.iter().find(|s| s.name == "home").expect("the IKE SA");
    assert!(
        home.local.starts_with(&format!("{rw2}[")) && home.remote.starts_with(&format!("{gw2}[")),
        "{} → {}",
        home.local,
        home.remote
    );
    assert!(
        up.lost == 0 && down.lost == 0,
        "traffic went on undisturbed: {up} / {down}; logs in {}",
        lab.logs().display()
    );
    drop(rw);
    must(gateway.stop());
}
