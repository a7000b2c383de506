//! The anchor: strongSwan 5.9.8 at both ends of the road-warrior topology, live traffic both
//! ways, one fault, the measured outage. roamgate's own failovers must beat these numbers.

use std::time::Duration;

use roamgate_lab::Lab;
use roamgate_lab::scenario::{Fault, Gateway, failover};
use roamgate_lab::topology::{Fabric, Options};

const BEFORE: Duration = Duration::from_secs(2);

fn run(
    name: &str,
    options: Options,
    fault: Fault,
    after: Duration,
) -> roamgate_lab::scenario::FailoverReport {
    let lab = Lab::new(name).unwrap();
    let report = failover(&lab, Gateway::StrongSwan, options, fault, BEFORE, after)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{report}\nlogs: {}", lab.logs().display());
    // The measurement is real only if traffic flowed both ways before the fault.
    assert!(report.upstream.received > 1000, "{report}");
    assert!(report.downstream.received > 1000, "{report}");
    report
}

#[test]
fn anchor_client_uplink_down_isolated_segments() {
    let r = run(
        "anchor_client_uplink_down_bridges",
        Options::default(),
        Fault::ClientUplinkDown,
        Duration::from_secs(8),
    );
    assert!(r.recovered(), "strongSwan's MOBIKE must recover here:\n{r}");
    // strongSwan picks either family on ISP 2: the gateway announces both addresses.
    assert!(
        r.path_after.contains("198.18.2.") || r.path_after.contains("fd00:18:2::"),
        "moved to ISP 2:\n{r}"
    );
    assert!(r.outage() < Duration::from_secs(5), "{r}");
}

#[test]
fn anchor_client_uplink_down_behind_a_router() {
    let r = run(
        "anchor_client_uplink_down_router",
        Options {
            fabric: Fabric::Router,
            nat: None,
        },
        Fault::ClientUplinkDown,
        Duration::from_secs(8),
    );
    assert!(r.recovered(), "strongSwan's MOBIKE must recover here:\n{r}");
    assert!(r.outage() < Duration::from_secs(5), "{r}");
}

/// The gateway side, each fault for 30 s: does traffic ever come back?
///
/// Measured here: when the gateway's own interface goes down, strongSwan's gateway announces
/// its remaining addresses from ISP 2 and the road warrior follows (0.1 to 4 s). When the
/// gateway only loses carrier, or the path is cut silently, nothing notices: the road warrior
/// retransmits DPD on the dead path and traffic never comes back within 30 s (DESIGN.md).
#[test]
fn anchor_gateway_side_faults_within_30s() {
    let after = Duration::from_secs(30);
    let down = run(
        "anchor_gateway_uplink_down",
        Options::default(),
        Fault::GatewayUplinkDown,
        after,
    );
    println!(
        "gateway uplink down: recovered within 30 s: {}",
        down.recovered()
    );
    for (name, fault) in [
        ("anchor_gateway_carrier_loss", Fault::GatewayCarrierLoss),
        ("anchor_gateway_path_cut", Fault::GatewayPathCut),
    ] {
        let r = run(name, Options::default(), fault, after);
        assert!(
            !r.recovered() && r.outage() >= after - Duration::from_secs(1),
            "strongSwan recovered from '{fault}'; the anchor changed, update BENCHMARKS.md:\n{r}"
        );
    }
}
