//! The lab's throughput anchor: TCP through strongSwan 5.9.8 (kernel-libipsec) at both ends
//! against plain forwarding over the same path, as a ratio. (The failover gaps of the
//! strongSwan anchor are measured beside roamgate's in benches/failover.rs.)
//!
//! Each figure is the median of `ROAMGATE_BENCH_RUNS` runs (default 3). Needs root.
//! Run with `cargo xtask bench`; results also go to `target/bench-results/anchor.md`.

use anyhow::{Context, Result};
use roamgate_benches::{median, write_results};
use roamgate_lab::Lab;
use roamgate_lab::scenario::strongswan_throughput;

fn main() -> Result<()> {
    roamgate_lab::require_root().context("the anchor benchmark runs in the lab")?;
    let runs: usize = std::env::var("ROAMGATE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut table = String::from("| measurement | median | runs |\n|---|---|---|\n");
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
