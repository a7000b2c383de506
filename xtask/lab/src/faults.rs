//! Faults: a link down on either side of a cable, a silent cut, a flapping link.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cmd;
use crate::error::Result;
use crate::topology::{Host, Port};

/// Which end of an uplink's cable a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The host's own interface: the host sees its link go down.
    Host,
    /// The fabric's port (bridge port, router port, NAT inside): the host sees carrier loss,
    /// the far side of the fabric sees nothing.
    Fabric,
}

fn set_link(netns: &str, ifname: &str, state: &str) -> Result<()> {
    cmd::run("ip", &["-n", netns, "link", "set", ifname, state]).map(|_| ())
}

fn target(host: &Host, uplink: usize, side: Side) -> (String, String) {
    let u = host.uplink(uplink);
    match side {
        Side::Host => (host.ns.name().to_string(), u.ifname.clone()),
        Side::Fabric => (u.port.netns.clone(), u.port.ifname.clone()),
    }
}

/// Takes uplink `uplink` (0-based) of `host` down on `side`.
pub fn link_down(host: &Host, uplink: usize, side: Side) -> Result<()> {
    let (ns, ifname) = target(host, uplink, side);
    tracing::info!(netns = ns, ifname, "link down");
    set_link(&ns, &ifname, "down")
}

/// Brings uplink `uplink` of `host` back up on `side`.
pub fn link_up(host: &Host, uplink: usize, side: Side) -> Result<()> {
    let (ns, ifname) = target(host, uplink, side);
    tracing::info!(netns = ns, ifname, "link up");
    set_link(&ns, &ifname, "up")
}

/// A silent cut of one uplink's path: no carrier change anywhere, packets just vanish.
/// Restored on [`SilentCut::restore`] or drop.
#[derive(Debug)]
pub struct SilentCut {
    port: Port,
    bridge: bool,
    restored: bool,
}

impl SilentCut {
    /// Cuts uplink `uplink` of `host` in the fabric: a bridge port is detached from its
    /// bridge; behind a router (or NAT), an nftables rule in the fabric drops everything that
    /// enters or leaves through the uplink's port.
    pub fn new(host: &Host, uplink: usize) -> Result<SilentCut> {
        let port = host.uplink(uplink).fabric_port.clone();
        let bridge = cmd::run_text(
            "ip",
            &["-n", &port.netns, "-o", "link", "show", &port.ifname],
        )?
        .contains("master br0");
        tracing::info!(
            netns = port.netns,
            ifname = port.ifname,
            bridge,
            "silent cut"
        );
        if bridge {
            set_link(&port.netns, &port.ifname, "nomaster")?;
        } else {
            let rules = format!(
                "table inet lab_cut_{p} {{\n\tchain cut_forward {{\n\t\ttype filter hook forward priority -10;\n\t\tiifname \"{p}\" drop\n\t\toifname \"{p}\" drop\n\t}}\n\tchain cut_input {{\n\t\ttype filter hook input priority -10;\n\t\tiifname \"{p}\" drop\n\t}}\n\tchain cut_output {{\n\t\ttype filter hook output priority -10;\n\t\toifname \"{p}\" drop\n\t}}\n}}\n",
                p = port.ifname
            );
            nft_in(&port.netns, &rules)?;
        }
        Ok(SilentCut {
            port,
            bridge,
            restored: false,
        })
    }

    /// Heals the cut.
    pub fn restore(&mut self) -> Result<()> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        tracing::info!(
            netns = self.port.netns,
            ifname = self.port.ifname,
            "cut healed"
        );
        if self.bridge {
            cmd::run(
                "ip",
                &[
                    "-n",
                    &self.port.netns,
                    "link",
                    "set",
                    &self.port.ifname,
                    "master",
                    "br0",
                ],
            )
            .map(|_| ())
        } else {
            let table = format!("lab_cut_{}", self.port.ifname);
            cmd::run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.port.netns,
                    "nft",
                    "delete",
                    "table",
                    "inet",
                    &table,
                ],
            )
            .map(|_| ())
        }
    }
}

impl Drop for SilentCut {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::warn!(error = %e, "could not heal a silent cut");
        }
    }
}

fn nft_in(netns: &str, rules: &str) -> Result<()> {
    cmd::require("nft")?;
    let path = std::env::temp_dir().join(format!("{netns}-cut-{}.nft", std::process::id()));
    std::fs::write(&path, rules)
        .map_err(|e| crate::LabError::io(format!("writing {}", path.display()), e))?;
    let p = path.to_string_lossy().to_string();
    let r = cmd::run("ip", &["netns", "exec", netns, "nft", "-f", &p]);
    let _ = std::fs::remove_file(&path);
    r.map(|_| ())
}

/// A link that goes down and up every `period / 2` until stopped; left up when stopped.
#[derive(Debug)]
pub struct Flap {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<usize>>>,
}

impl Flap {
    /// Starts flapping uplink `uplink` of `host` on `side`; the first transition is down.
    pub fn start(host: &Host, uplink: usize, side: Side, period: Duration) -> Flap {
        let (ns, ifname) = target(host, uplink, side);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut transitions = 0;
            let mut down = false;
            while !flag.load(Ordering::Relaxed) {
                down = !down;
                set_link(&ns, &ifname, if down { "down" } else { "up" })?;
                transitions += 1;
                std::thread::sleep(period / 2);
            }
            if down {
                set_link(&ns, &ifname, "up")?;
            }
            Ok(transitions)
        });
        Flap {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops flapping, leaves the link up, and returns how many transitions were made.
    pub fn stop(mut self) -> Result<usize> {
        self.finish()
    }

    fn finish(&mut self) -> Result<usize> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => Ok(0),
        }
    }
}

impl Drop for Flap {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
