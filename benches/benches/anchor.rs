//! The lab anchor: strongSwan 5.9.8 at both ends, measured in this run.
//!
//! - failover: the longest traffic gap (1 ms UDP probes both ways) when the road warrior's
//!   first uplink goes down, on isolated segments (bridges) and behind a router;
//! - throughput: TCP through strongSwan (kernel-libipsec) against plain forwarding over the
//!   same path, as a ratio.
//!
//! Each figure is the median of `ROAMGATE_BENCH_RUNS` runs (default 3). Needs root.
//! Run with `cargo xtask bench`; results also go to `target/bench-results/anchor.md`.

use std::time::Duration;

use anyhow::{Context, Result};
use roamgate_benches::{median, write_results};
use roamgate_lab::Lab;
use roamgate_lab::scenario::{Fault, Gateway, failover, strongswan_throughput};
use roamgate_lab::topology::{Fabric, Options};

fn main() -> Result<()> {
    roamgate_lab::require_root().context("the anchor benchmark runs in the lab")?;
    let runs: usize = std::env::var("ROAMGATE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut table = String::from("| measurement | median | runs |\n|---|---|---|\n");
    for (label, fabric) in [
        (
            "failover gap, client uplink down, isolated segments",
            Fabric::Bridges,
        ),
        (
            "failover gap, client uplink down, router in the middle",
            Fabric::Router,
        ),
    ] {
        let mut gaps = Vec::new();
        for run in 0..runs {
            let lab = Lab::new(&format!("bench_anchor_failover_{fabric:?}_{run}"))?;
            let r = failover(
                &lab,
                Gateway::StrongSwan,
                Options { fabric, nat: false },
                Fault::ClientUplinkDown,
                Duration::from_secs(2),
                Duration::from_secs(4),
            )?;
            anyhow::ensure!(r.recovered(), "the anchor did not recover:\n{r}");
            println!(
                "{label}, run {run}: {:.1} ms",
                r.outage().as_secs_f64() * 1e3
            );
            gaps.push(r.outage().as_secs_f64() * 1e3);
        }
        table += &format!(
            "| {label} | {:.1} ms | {} |\n",
            median(&mut gaps),
            fmt_runs(&gaps, "ms")
        );
    }
    let (mut plain, mut swan, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let lab = Lab::new(&format!("bench_anchor_throughput_{run}"))?;
        let r = strongswan_throughput(&lab, 5)?;
        println!(
            "TCP, run {run}: plain {:.0} Mbit/s, strongSwan {:.1} Mbit/s",
            r.plain_bps / 1e6,
            r.strongswan_bps / 1e6
        );
        plain.push(r.plain_bps / 1e6);
        swan.push(r.strongswan_bps / 1e6);
        ratio.push(r.plain_bps / r.strongswan_bps);
    }
    table += &format!(
        "| TCP, plain forwarding through the gateway (anchor) | {:.0} Mbit/s | {} |\n",
        median(&mut plain),
        fmt_runs(&plain, "")
    );
    table += &format!(
        "| TCP, strongSwan kernel-libipsec tunnel | {:.1} Mbit/s | {} |\n",
        median(&mut swan),
        fmt_runs(&swan, "")
    );
    table += &format!(
        "| ratio plain / strongSwan (same run) | {:.0}× | {} |\n",
        median(&mut ratio),
        fmt_runs(&ratio, "")
    );
    println!("\n{table}");
    write_results("anchor.md", &table)?;
    Ok(())
}

fn fmt_runs(values: &[f64], unit: &str) -> String {
    values
        .iter()
        .map(|v| format!("{v:.1}{unit}"))
        .collect::<Vec<_>>()
        .join(", ")
}
