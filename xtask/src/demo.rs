//! `cargo xtask demo`: the lab demo.
//!
//! Today it runs the anchor: strongSwan at both ends (road warrior with two uplinks ↔ multihomed
//! gateway ↔ LAN host), live traffic both ways at 1 ms, the road warrior's first uplink fails,
//! and the measured outage is printed. It becomes roamgate's own demo as the gateway lands.

use std::time::Duration;

use anyhow::{Result, bail};
use roamgate_lab::Lab;
use roamgate_lab::scenario::{Fault, strongswan_failover};
use roamgate_lab::topology::Options;

pub(crate) fn run() -> Result<()> {
    if roamgate_lab::require_root().is_err() {
        bail!("`cargo xtask demo` needs root (network namespaces, strongSwan): run it as root");
    }
    crate::deps::run(false)?;
    crate::test::ensure_bpffs()?;
    let lab = Lab::new("demo")?;
    println!(
        "demo: building the lab — road warrior (2 uplinks) → ISP 1 / ISP 2 bridges → gateway (2 WAN links) → LAN host"
    );
    println!("demo: strongSwan 5.9.8 at both ends (kernel-libipsec), MOBIKE on, DPD 2 s");
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
        "demo: metrics: none yet — roamgate's own gateway and its Prometheus /metrics replace this anchor as they land"
    );
    if !report.recovered() {
        bail!("the failover did not recover; see the logs above");
    }
    Ok(())
}
