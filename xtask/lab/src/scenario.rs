//! Ready-made scenarios shared by the tests, the benchmarks and the demo.
//!
//! [`failover`]: a strongSwan road warrior, a gateway (strongSwan — the anchor every
//! roamgate failover is measured against — or roamgate), a LAN host; topology (a), (c) or
//! (d), live traffic both ways, one fault, the measured outage.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::capture::Capture;
use crate::error::{LabError, Result};
use crate::faults::{self, Side, SilentCut};
use crate::lab::Lab;
use crate::roamgate::{ControlConfig, RoamgateGateway};
use crate::strongswan::SiteEnd;
use crate::strongswan::{self, Charon, TunnelParams};
use crate::topology::{Options, RoadWarrior, SiteToSite};
use crate::traffic::{ProbeReport, probe_both_ways};

/// The fault a failover scenario injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The road warrior's first uplink goes down (its own interface).
    ClientUplinkDown,
    /// The gateway's first WAN link goes down (its own interface).
    GatewayUplinkDown,
    /// The gateway's first WAN link loses carrier (its port in the fabric goes down; the
    /// interface stays administratively up).
    GatewayCarrierLoss,
    /// The path to the gateway's first WAN address is cut silently (no carrier change).
    GatewayPathCut,
    /// Site to site ([`branch_failover`]): the branch router's first uplink goes down (its
    /// own interface).
    BranchUplinkDown,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fault::ClientUplinkDown => "client uplink down",
            Fault::GatewayUplinkDown => "gateway uplink down",
            Fault::GatewayCarrierLoss => "gateway uplink carrier loss",
            Fault::GatewayPathCut => "path to the gateway cut silently",
            Fault::BranchUplinkDown => "branch router uplink down",
        })
    }
}

/// The gateway between the road warrior and the LAN host.
#[derive(Debug, Clone, Copy)]
pub enum Gateway<'a> {
    /// strongSwan 5.9.8 (kernel-libipsec), MOBIKE on: the anchor.
    StrongSwan,
    /// roamgate: `roamgate gateway` and `roamgate control`, from the `roamgate` binary given.
    Roamgate(&'a Path),
}

impl std::fmt::Display for Gateway<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Gateway::StrongSwan => "strongSwan",
            Gateway::Roamgate(_) => "roamgate",
        })
    }
}

/// What a failover scenario measured.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    /// Which gateway: `strongSwan` or `roamgate`.
    pub gateway: String,
    /// The fault injected.
    pub fault: Fault,
    /// The topology's options.
    pub options: Options,
    /// Road warrior → LAN host.
    pub upstream: ProbeReport,
    /// LAN host → road warrior (its virtual IP).
    pub downstream: ProbeReport,
    /// The road warrior's IKE SA path before the fault (`local → remote (state; CHILD_SA
    /// mode)`, the mode `TUNNEL`, or `TUNNEL-in-UDP` when ESP is UDP-encapsulated).
    pub path_before: String,
    /// The road warrior's IKE SA path at the end, or why there is none.
    pub path_after: String,
    /// The recovery tolerance: traffic counts as recovered when both streams' trailing
    /// silence is shorter than this.
    pub tolerance: Duration,
}

impl FailoverReport {
    /// Whether traffic flowed again in both directions by the end.
    pub fn recovered(&self) -> bool {
        self.upstream.recovered(self.tolerance) && self.downstream.recovered(self.tolerance)
    }

    /// The longest gap of the two directions.
    pub fn outage(&self) -> Duration {
        self.upstream.longest_gap.max(self.downstream.longest_gap)
    }
}

impl std::fmt::Display for FailoverReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nat = self
            .options
            .nat
            .map(|i| format!(", NAT on uplink {}", i + 1))
            .unwrap_or_default();
        writeln!(
            f,
            "gateway: {}; fault: {} ({:?} fabric{nat})",
            self.gateway, self.fault, self.options.fabric,
        )?;
        writeln!(f, "path before: {}", self.path_before)?;
        writeln!(f, "path after:  {}", self.path_after)?;
        writeln!(f, "upstream:    {}", self.upstream)?;
        writeln!(f, "downstream:  {}", self.downstream)?;
        write!(
            f,
            "outage: {:.1} ms, recovered: {}",
            self.outage().as_secs_f64() * 1e3,
            if self.recovered() { "yes" } else { "no" }
        )
    }
}

fn path_of(charon: &Charon, ike: &str) -> String {
    match charon.list_sas() {
        Ok(sas) => sas
            .iter()
            .find(|s| s.name == ike)
            .map(|s| {
                let modes: Vec<&str> = s.children.iter().map(|c| c.mode.as_str()).collect();
                format!(
                    "{} → {} ({}; CHILD_SA {})",
                    s.local,
                    s.remote,
                    s.state,
                    modes.join(", ")
                )
            })
            .unwrap_or_else(|| "no IKE SA".to_string()),
        Err(e) => format!("unknown: {e}"),
    }
}

/// A running gateway of either kind; dropped at the end of the scenario.
enum Running {
    StrongSwan(Charon),
    Roamgate(RoamgateGateway),
}

/// strongSwan road warrior ↔ `gateway` ↔ LAN host; traffic both ways at 1 ms; after `before`,
/// `fault`; the streams run on for `after`. The road warrior's path at the end and both
/// streams' losses and gaps are in the report (and in `report.txt` among the lab's logs).
pub fn failover(
    lab: &Lab,
    gateway: Gateway<'_>,
    options: Options,
    fault: Fault,
    before: Duration,
    after: Duration,
) -> Result<FailoverReport> {
    let topo = RoadWarrior::build(options)?;
    let params = TunnelParams::default();
    let gw_addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let lan_side = topo
        .gw
        .lan
        .clone()
        .ok_or_else(|| LabError::Usage("the gateway has no LAN".into()))?;
    let mut running = match gateway {
        Gateway::StrongSwan => {
            let conf = strongswan::road_warrior_gateway(&params, &gw_addrs, &lan_side.prefix_v4);
            Running::StrongSwan(Charon::start(lab, &topo.gw.ns, "gw", &conf)?)
        }
        Gateway::Roamgate(bin) => {
            // Hosts behind real NICs send complete checksums; veth leaves them to "hardware",
            // and the data plane does not complete them.
            topo.lan.ns.exec("ethtool", &["-K", "eth0", "tx", "off"])?;
            let conf = ControlConfig::road_warrior_gateway(&params, &gw_addrs, &lan_side.prefix_v4);
            Running::Roamgate(RoamgateGateway::start(lab, &topo.gw.ns, bin, conf)?)
        }
    };
    let rw_conf = strongswan::road_warrior_client(&params, &gw_addrs, &lan_side.prefix_v4);
    let rw = Charon::start(lab, &topo.rw.ns, "rw", &rw_conf)?;
    rw.initiate("home", "lan")?;
    let sa = rw.wait_established("home", "lan", Duration::from_secs(20))?;
    if let Running::StrongSwan(gw) = &running {
        gw.wait_established("rw", "lan", Duration::from_secs(20))?;
    }
    let vip = sa
        .local_vips
        .first()
        .cloned()
        .ok_or_else(|| LabError::StrongSwan {
            netns: topo.rw.ns.name().to_string(),
            message: "no virtual IP was assigned".into(),
        })?;
    let path_before = path_of(&rw, "home");
    let (lan_v4, _) = topo.lan.lan_addr.expect("the LAN host has an address");
    let up_dst = SocketAddr::new(lan_v4.into(), 9000);
    let down_dst: SocketAddr = format!("{vip}:9001")
        .parse()
        .map_err(|_| LabError::Usage(format!("virtual IP {vip} is not an address")))?;
    // With ROAMGATE_LAB_CAPTURE set, both of the road warrior's uplinks are captured into
    // the lab's logs (`rw-wan1.pcap`, `rw-wan2.pcap`): IKE and ESP, for a timeline of the
    // move.
    let captures = match std::env::var_os("ROAMGATE_LAB_CAPTURE") {
        Some(_) => topo
            .rw
            .uplinks
            .iter()
            .map(|u| {
                Capture::start(
                    &topo.rw.ns,
                    &u.ifname,
                    "udp port 500 or udp port 4500 or esp",
                    &lab.logs().join(format!("rw-{}.pcap", u.ifname)),
                )
            })
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let (upstream, downstream, _cut) = probe_both_ways(
        (&topo.rw.ns, down_dst),
        (&topo.lan.ns, up_dst),
        (before, after),
        || match fault {
            Fault::ClientUplinkDown => faults::link_down(&topo.rw, 0, Side::Host).map(|()| None),
            Fault::GatewayUplinkDown => faults::link_down(&topo.gw, 0, Side::Host).map(|()| None),
            Fault::GatewayCarrierLoss => {
                faults::link_down(&topo.gw, 0, Side::Fabric).map(|()| None)
            }
            Fault::GatewayPathCut => SilentCut::new(&topo.gw, 0).map(Some),
            Fault::BranchUplinkDown => Err(LabError::Usage(
                "a branch router's fault is for branch_failover".into(),
            )),
        },
    )?;
    for c in captures {
        // The first uplink's capture may have ended with its link.
        let _ = c.stop();
    }
    if let Running::Roamgate(gw) = &mut running {
        gw.check_running()?;
    }
    let report = FailoverReport {
        gateway: gateway.to_string(),
        fault,
        options,
        upstream,
        downstream,
        path_before,
        path_after: path_of(&rw, "home"),
        tolerance: Duration::from_millis(500),
    };
    lab.write_log("report.txt", &report.to_string())?;
    drop(rw);
    drop(running);
    Ok(report)
}

/// Site to site (acceptance scenario 2): a branch router (`branch`: roamgate, the initiator,
/// or strongSwan, the anchor) with two uplinks and a LAN host, a strongSwan 5.9.8 gateway at
/// the head office with two WAN links and a LAN host; the branch initiates; traffic both ways
/// at 1 ms between the LAN hosts; after `before`, the branch router's first uplink goes down;
/// the streams run on for `after`. The paths in the report are the head office's view of its
/// IKE SA (`local → remote`).
pub fn branch_failover(
    lab: &Lab,
    branch: Gateway<'_>,
    options: Options,
    before: Duration,
    after: Duration,
) -> Result<FailoverReport> {
    let topo = SiteToSite::build(options)?;
    let params = TunnelParams::default();
    let lan_of = |h: &crate::topology::Host| {
        h.lan
            .clone()
            .ok_or_else(|| LabError::Usage("a site gateway has no LAN".into()))
    };
    let (lan_a, lan_b) = (lan_of(&topo.gwa)?, lan_of(&topo.gwb)?);
    let branch_end = SiteEnd {
        addr: "%any".into(),
        id: "branch.roamgate.test".into(),
        ts: lan_a.prefix_v4.clone(),
    };
    let hq_end = SiteEnd {
        addr: topo.gwb.uplink(0).v4.to_string(),
        id: "hq.roamgate.test".into(),
        ts: lan_b.prefix_v4.clone(),
    };
    let hq_conf = strongswan::site_to_site(
        &params,
        &SiteEnd {
            addr: "%any".into(),
            ..hq_end.clone()
        },
        &branch_end,
        false,
    );
    let hq = Charon::start(lab, &topo.gwb.ns, "hq", &hq_conf)?;
    let running = match branch {
        Gateway::StrongSwan => {
            let conf = strongswan::site_to_site(&params, &branch_end, &hq_end, true);
            Running::StrongSwan(Charon::start(lab, &topo.gwa.ns, "branch", &conf)?)
        }
        Gateway::Roamgate(bin) => {
            // As for the road warrior's gateway: the LAN host leaves no checksum to "hardware".
            topo.lana.ns.exec("ethtool", &["-K", "eth0", "tx", "off"])?;
            let addrs: Vec<String> = topo.gwa.wan_v4().iter().map(|a| a.to_string()).collect();
            let conf = ControlConfig::site_to_site(&params, &branch_end, &addrs, &hq_end, true);
            Running::Roamgate(RoamgateGateway::start(lab, &topo.gwa.ns, bin, conf)?)
        }
    };
    hq.wait_established("site", "net", Duration::from_secs(20))?;
    let path_before = path_of(&hq, "site");
    let (a_v4, _) = topo.lana.lan_addr.expect("a LAN host has an address");
    let (b_v4, _) = topo.lanb.lan_addr.expect("a LAN host has an address");
    let (upstream, downstream, ()) = probe_both_ways(
        (&topo.lana.ns, SocketAddr::new(a_v4.into(), 9001)),
        (&topo.lanb.ns, SocketAddr::new(b_v4.into(), 9000)),
        (before, after),
        || faults::link_down(&topo.gwa, 0, Side::Host),
    )?;
    let mut running = running;
    if let Running::Roamgate(gw) = &mut running {
        gw.check_running()?;
    }
    let report = FailoverReport {
        gateway: branch.to_string(),
        fault: Fault::BranchUplinkDown,
        options,
        upstream,
        downstream,
        path_before,
        path_after: path_of(&hq, "site"),
        tolerance: Duration::from_millis(500),
    };
    lab.write_log("report.txt", &report.to_string())?;
    drop(running);
    drop(hq);
    Ok(report)
}

/// TCP throughput from the road warrior to the LAN host: first forwarded in the clear over
/// ISP 1 (no IPsec), then through a strongSwan tunnel on the same path, in one topology.
#[derive(Debug, Clone, Copy)]
pub struct ThroughputReport {
    /// Plain forwarding through the gateway, bits per second.
    pub plain_bps: f64,
    /// Through strongSwan (kernel-libipsec) at both ends, bits per second.
    pub strongswan_bps: f64,
}

/// Measures [`ThroughputReport`] with iperf3 for `seconds` each.
pub fn strongswan_throughput(lab: &Lab, seconds: u32) -> Result<ThroughputReport> {
    let topo = RoadWarrior::build(Options::default())?;
    let lan_side = topo
        .gw
        .lan
        .clone()
        .ok_or_else(|| LabError::Usage("the gateway has no LAN".into()))?;
    let (lan_v4, _) = topo.lan.lan_addr.expect("the LAN host has an address");
    let lan = lan_v4.to_string();
    let via = topo.gw.uplink(0).v4.to_string();
    topo.rw
        .ns
        .ip(&["route", "add", &lan_side.prefix_v4, "via", &via])?;
    let plain = crate::traffic::iperf3(&topo.lan.ns, &topo.rw.ns, &lan, seconds, None, lab.logs())?;

    let params = TunnelParams::default();
    let gw_addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let gw_conf = strongswan::road_warrior_gateway(&params, &gw_addrs, &lan_side.prefix_v4);
    let rw_conf = strongswan::road_warrior_client(&params, &gw_addrs, &lan_side.prefix_v4);
    let gw = Charon::start(lab, &topo.gw.ns, "gw", &gw_conf)?;
    let rw = Charon::start(lab, &topo.rw.ns, "rw", &rw_conf)?;
    rw.initiate("home", "lan")?;
    rw.wait_established("home", "lan", Duration::from_secs(20))?;
    gw.wait_established("rw", "lan", Duration::from_secs(20))?;
    let tunnel =
        crate::traffic::iperf3(&topo.lan.ns, &topo.rw.ns, &lan, seconds, None, lab.logs())?;
    let sas = rw.list_sas()?;
    let used = sas
        .iter()
        .flat_map(|s| &s.children)
        .any(|c| c.name == "lan" && c.state == "INSTALLED");
    if !used {
        return Err(LabError::StrongSwan {
            netns: topo.rw.ns.name().to_string(),
            message: "the CHILD_SA vanished during the throughput run".into(),
        });
    }
    Ok(ThroughputReport {
        plain_bps: plain.bits_per_second,
        strongswan_bps: tunnel.bits_per_second,
    })
}
