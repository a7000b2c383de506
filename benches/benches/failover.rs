//! Failover gaps through roamgate next to the strongSwan anchor, in the same run.
//!
//! Each scenario (the numbers of the MOBIKE acceptance list) runs `ROAMGATE_FAILOVER_RUNS`
//! times (default 10) through each gateway, the two alternating: a strongSwan 5.9.8 road
//! warrior with two uplinks, the gateway (roamgate: `roamgate gateway` + `roamgate control`
//! from the release binary; or strongSwan), a LAN host — or, site to site, the branch router
//! (roamgate or strongSwan) and a strongSwan head office; 1 ms UDP probes both ways; one
//! fault; the outage is the longest gap of either direction. A run that does not recover
//! counts as its whole observation window.
//! Needs root. Run with `cargo xtask bench`, or `cargo bench -p roamgate-benches --bench
//! failover [-- TEXT]` for the scenarios whose label contains TEXT; results also go to
//! `target/bench-results/failover.md`.

use std::time::Duration;

use anyhow::{Context, Result};
use roamgate_benches::{median, write_results};
use roamgate_lab::Lab;
use roamgate_lab::scenario::{FailoverReport, Fault, Gateway, branch_failover, failover};
use roamgate_lab::topology::{Fabric, Options};

const BEFORE: Duration = Duration::from_secs(2);
const AFTER: Duration = Duration::from_secs(4);

/// Median, worst and how many runs recovered, of one gateway in one scenario.
struct Gaps {
    ms: Vec<f64>,
    recovered: usize,
}

impl Gaps {
    fn cell(&self) -> String {
        let mut sorted = self.ms.clone();
        let worst = sorted.iter().copied().fold(f64::NAN, f64::max);
        let med = median(&mut sorted);
        let n = self.ms.len();
        if self.recovered == 0 {
            format!(
                "never recovered ({n} runs, ≥ {:.0} ms)",
                AFTER.as_secs_f64() * 1e3
            )
        } else {
            format!(
                "{med:.1} ms / {worst:.1} ms{}",
                if self.recovered < n {
                    format!(" ({} of {n} recovered)", self.recovered)
                } else {
                    String::new()
                }
            )
        }
    }
}

fn main() -> Result<()> {
    roamgate_lab::require_root().context("the failover benchmark runs in the lab")?;
    let runs: usize = std::env::var("ROAMGATE_FAILOVER_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10)
        .max(1);
    let bin = roamgate_lab::roamgate::release_binary()?;
    let bridges = Options::default();
    let router = Options {
        fabric: Fabric::Router,
        nat: None,
    };
    type Scenario = Box<dyn Fn(&Lab, Gateway<'_>) -> roamgate_lab::Result<FailoverReport>>;
    let road_warrior = |options: Options, fault: Fault| -> Scenario {
        Box::new(move |lab, gateway| failover(lab, gateway, options, fault, BEFORE, AFTER))
    };
    let scenarios: Vec<(&str, Scenario)> = vec![
        (
            "1. client uplink down, isolated segments",
            road_warrior(bridges, Fault::ClientUplinkDown),
        ),
        (
            "1. client uplink down, router in the middle",
            road_warrior(router, Fault::ClientUplinkDown),
        ),
        (
            "2. branch router (initiator) uplink down, isolated segments",
            Box::new(move |lab, branch| branch_failover(lab, branch, bridges, BEFORE, AFTER)),
        ),
        (
            "3. gateway WAN link loses carrier, isolated segments",
            road_warrior(bridges, Fault::GatewayCarrierLoss),
        ),
        (
            "3. gateway WAN interface down, isolated segments",
            road_warrior(bridges, Fault::GatewayUplinkDown),
        ),
    ];
    let mut table = String::from(
        "| scenario | roamgate median / worst | strongSwan gateway median / worst | median ratio roamgate / anchor |\n|---|---|---|---|\n",
    );
    // `cargo bench --bench failover -- TEXT` runs the scenarios whose label contains TEXT.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    for (n, (label, scenario)) in scenarios.iter().enumerate() {
        if !only.is_empty() && !only.iter().any(|o| label.contains(o.as_str())) {
            continue;
        }
        let mut roamgate = Gaps {
            ms: Vec::new(),
            recovered: 0,
        };
        let mut anchor = Gaps {
            ms: Vec::new(),
            recovered: 0,
        };
        for run in 0..runs {
            for (gateway, gaps) in [
                (Gateway::Roamgate(&bin), &mut roamgate),
                (Gateway::StrongSwan, &mut anchor),
            ] {
                let lab = Lab::new(&format!("bench_failover_{n}_{gateway}_{run}"))?;
                let r = scenario(&lab, gateway)?;
                anyhow::ensure!(
                    r.upstream.received > 1000 && r.downstream.received > 1000,
                    "no traffic before the fault:\n{r}"
                );
                println!(
                    "{label}, {gateway}, run {run}: {:.1} ms{}",
                    r.outage().as_secs_f64() * 1e3,
                    if r.recovered() {
                        ""
                    } else {
                        " (not recovered)"
                    }
                );
                gaps.ms.push(r.outage().as_secs_f64() * 1e3);
                gaps.recovered += usize::from(r.recovered());
            }
        }
        let ratio = if anchor.recovered == 0 {
            "anchor never recovers".to_string()
        } else {
            format!(
                "{:.2}",
                median(&mut roamgate.ms.clone()) / median(&mut anchor.ms.clone())
            )
        };
        table += &format!(
            "| {label} | {} | {} | {ratio} |\n",
            roamgate.cell(),
            anchor.cell()
        );
    }
    println!("\n{table}");
    write_results("failover.md", &table)?;
    Ok(())
}
