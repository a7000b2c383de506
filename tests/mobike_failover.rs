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
//!
//! Needs root, bpffs and strongSwan; fails (never skips) with the reason otherwise.

use std::path::Path;
use std::time::Duration;

use roamgate_lab::scenario::{FailoverReport, Fault, Gateway, branch_failover, failover};
use roamgate_lab::topology::{Fabric, Options};
use roamgate_lab::{Lab, require_root};

const BIN: &str = env!("CARGO_BIN_EXE_roamgate");
const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(6);

fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
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
    assert!(
        r.path_after.contains("→ 198.18.2.1[") && r.path_after.ends_with("(ESTABLISHED)"),
        "the road warrior moved to roamgate's second WAN address:\n{r}\nlogs in {}",
        lab.logs().display()
    );
    assert!(
        r.recovered(),
        "traffic through roamgate came back:\n{r}\nlogs in {}",
        lab.logs().display()
    );
}

#[test]
fn roamgate_losing_carrier_on_its_wan_link_moves_the_road_warrior_to_its_other_one() {
    let (r, anchor, lab) =
        through_roamgate_and_anchor("mobike_gw_carrier", Fault::GatewayCarrierLoss);
    assert!(
        r.path_after.contains("→ 198.18.2.1[") && r.path_after.ends_with("(ESTABLISHED)"),
        "the road warrior moved to roamgate's second WAN address:\n{r}\nlogs in {}",
        lab.logs().display()
    );
    assert!(
        r.recovered(),
        "traffic through roamgate came back:\n{r}\nlogs in {}",
        lab.logs().display()
    );
    println!(
        "anchor recovered: {} (a strongSwan gateway does not announce its change)",
        anchor.recovered()
    );
}

#[test]
fn roamgate_whose_wan_interface_goes_down_moves_the_road_warrior_to_its_other_one() {
    let (r, _, lab) = through_roamgate_and_anchor("mobike_gw_down", Fault::GatewayUplinkDown);
    assert!(
        r.path_after.contains("→ 198.18.2.1[") && r.path_after.ends_with("(ESTABLISHED)"),
        "the road warrior moved to roamgate's second WAN address:\n{r}\nlogs in {}",
        lab.logs().display()
    );
    assert!(
        r.recovered(),
        "traffic through roamgate came back:\n{r}\nlogs in {}",
        lab.logs().display()
    );
}

#[test]
fn a_strongswan_road_warrior_behind_a_router_moves_through_roamgate_when_its_uplink_goes_down() {
    let router = Options {
        fabric: Fabric::Router,
        nat: false,
    };
    let (r, _, lab) = on_both("mobike_rw_uplink_router", |lab, gateway| {
        failover(lab, gateway, router, Fault::ClientUplinkDown, BEFORE, AFTER)
    });
    // Behind the router, roamgate's first address stays reachable: the road warrior's own
    // end moves.
    let local = |path: &str| path.split(" → ").next().unwrap_or_default().to_string();
    assert!(
        local(&r.path_after) != local(&r.path_before) && r.path_after.ends_with("(ESTABLISHED)"),
        "the road warrior moved to its second uplink:\n{r}\nlogs in {}",
        lab.logs().display()
    );
    assert!(
        r.recovered(),
        "traffic through roamgate came back:\n{r}\nlogs in {}",
        lab.logs().display()
    );
}

#[test]
fn a_roamgate_branch_router_whose_uplink_goes_down_moves_its_tunnel_in_place() {
    let (r, _, lab) = on_both("mobike_branch_uplink", |lab, branch| {
        branch_failover(lab, branch, Options::default(), BEFORE, AFTER)
    });
    // The head office's view: its IKE SA now ends at the branch's second uplink.
    assert!(
        r.path_after.contains("→ 198.18.2.1[") && r.path_after.ends_with("(ESTABLISHED)"),
        "the tunnel moved to the branch's second uplink:\n{r}\nlogs in {}",
        lab.logs().display()
    );
    assert!(
        r.recovered(),
        "traffic between the sites came back:\n{r}\nlogs in {}",
        lab.logs().display()
    );
}
