//! The lab's topologies, built from namespaces, veth pairs, bridges, a router and a NAT.
//!
//! | topology | hosts | fabric between the WAN sides |
//! |---|---|---|
//! | [`RoadWarrior`] (a) | road warrior `rw` with two uplinks, gateway `gw` with two WAN links and a LAN, LAN host `lan` | [`Fabric::Bridges`]: one bridge namespace per ISP, each an isolated segment |
//! | [`SiteToSite`] (b) | gateways `gwa`, `gwb`, each with two WAN links and a LAN host | as above |
//! | (c) | (a) with `nat: Some(0)`: the road warrior's first uplink reaches ISP 1 through a NAT namespace (nftables masquerade) | |
//! | (d) | (a) or (b) with [`Fabric::Router`]: one router namespace in the middle; every address reachable over every uplink; source-based routing on the multihomed hosts | |
//!
//! Addresses exist only inside the lab's namespaces. With bridges, ISP `i` is the segment
//! `198.18.i.0/24` and `fd00:18:i::/64`, host number `h` is `.h` on every segment. With the
//! router, host `h`'s uplink `i` is its own segment `198.18.(16h+i).0/24` (router `.1`, host
//! `.2`). LANs are `10.(100+h).0.0/24` and `fd00:(0x64+h)::/64`, the gateway `.1`, the host `.2`.
//! The road warrior's virtual-IP pool is [`RW_POOL`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{LabError, Result};
use crate::netns::{Netns, veth, veth_with_queues};

/// The virtual-IP pool a road warrior's gateway hands out (IPv4).
pub const RW_POOL: &str = "10.200.0.0/24";

/// What joins the hosts' WAN links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fabric {
    /// One bridge namespace per ISP: uplink `i` of every host is on segment `i` only.
    Bridges,
    /// One router namespace: every address is reachable over every uplink.
    Router,
}

/// How to build a topology.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The fabric in the middle.
    pub fabric: Fabric,
    /// Put a masquerading NAT namespace on this uplink of the road warrior's (0-based; on the
    /// first: topology (c)).
    pub nat: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fabric: Fabric::Bridges,
            nat: None,
        }
    }
}

/// The far end of a cable: a namespace of the fabric and the interface there.
#[derive(Debug, Clone)]
pub struct Port {
    /// The namespace (bridge, router or NAT).
    pub netns: String,
    /// The interface in that namespace.
    pub ifname: String,
}

/// One WAN link of a host.
#[derive(Debug, Clone)]
pub struct Uplink {
    /// The interface in the host (`wan1`, `wan2`).
    pub ifname: String,
    /// The host's IPv4 address on it.
    pub v4: Ipv4Addr,
    /// The host's IPv6 address on it.
    pub v6: Ipv6Addr,
    /// The next hop beyond it, where there is one (router or NAT).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The IPv6 next hop beyond it.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Where the host's cable ends (bridge port, router port, NAT inside).
    pub port: Port,
    /// The fabric-side cable of this uplink, where it differs from `port` (behind a NAT: the
    /// NAT's outside port on the bridge or router).
    pub fabric_port: Port,
    /// The address the peers see for this uplink (the NAT's outside address behind a NAT).
    pub public_v4: Ipv4Addr,
}

/// A LAN side of a gateway.
#[derive(Debug, Clone)]
pub struct LanSide {
    /// The interface in the gateway.
    pub ifname: String,
    /// The gateway's address on the LAN.
    pub v4: Ipv4Addr,
    /// The gateway's IPv6 address on the LAN.
    pub v6: Ipv6Addr,
    /// The LAN prefix, e.g. `10.101.0.0/24`.
    pub prefix_v4: String,
    /// The IPv6 LAN prefix.
    pub prefix_v6: String,
}

/// A host of the lab: a namespace, its uplinks and, for a gateway, its LAN side.
#[derive(Debug)]
pub struct Host {
    /// The host's namespace.
    pub ns: Netns,
    /// Its WAN links, most preferred first.
    pub uplinks: Vec<Uplink>,
    /// Its LAN side (gateways).
    pub lan: Option<LanSide>,
    /// Its address when it is a host on a LAN.
    pub lan_addr: Option<(Ipv4Addr, Ipv6Addr)>,
}

impl Host {
    /// Uplink `i` (0-based).
    pub fn uplink(&self, i: usize) -> &Uplink {
        &self.uplinks[i]
    }

    /// The addresses of all uplinks, IPv4, most preferred first.
    pub fn wan_v4(&self) -> Vec<Ipv4Addr> {
        self.uplinks.iter().map(|u| u.v4).collect()
    }
}

/// The fabric's namespaces, kept alive as long as the topology.
#[derive(Debug)]
struct FabricNs {
    kind: Fabric,
    /// Bridges: one per ISP. Router: one.
    nodes: Vec<Netns>,
    /// TX and RX queues of every veth plugged into the fabric.
    queues: u16,
}

impl FabricNs {
    fn new(kind: Fabric, isps: usize, queues: u16) -> Result<FabricNs> {
        let mut nodes = Vec::new();
        match kind {
            Fabric::Bridges => {
                for i in 1..=isps {
                    let ns = Netns::new(&format!("isp{i}"))?;
                    ns.ip(&["link", "add", "br0", "type", "bridge"])?;
                    ns.ip(&["link", "set", "br0", "up"])?;
                    nodes.push(ns);
                }
            }
            Fabric::Router => {
                let ns = Netns::new("rtr")?;
                forwarding(&ns)?;
                nodes.push(ns);
            }
        }
        Ok(FabricNs {
            kind,
            nodes,
            queues,
        })
    }

    /// Plugs interface `ifname` of `ns` (host number `h`) into ISP `isp` (1-based), and returns
    /// the addresses it gets and its port.
    fn plug(&self, ns: &Netns, ifname: &str, h: u8, isp: u8) -> Result<Uplink> {
        match self.kind {
            Fabric::Bridges => {
                let br = &self.nodes[usize::from(isp) - 1];
                let port = format!("h{h}");
                veth_with_queues(ns, ifname, br, &port, self.queues)?;
                br.ip(&["link", "set", &port, "master", "br0"])?;
                let v4 = Ipv4Addr::new(198, 18, isp, h);
                let v6 = Ipv6Addr::new(0xfd00, 0x18, u16::from(isp), 0, 0, 0, 0, u16::from(h));
                add_addr(ns, ifname, IpAddr::V4(v4), 24)?;
                add_addr(ns, ifname, IpAddr::V6(v6), 64)?;
                let port = Port {
                    netns: br.name().to_string(),
                    ifname: port,
                };
                Ok(Uplink {
                    ifname: ifname.to_string(),
                    v4,
                    v6,
                    next_hop_v4: None,
                    next_hop_v6: None,
                    port: port.clone(),
                    fabric_port: port,
                    public_v4: v4,
                })
            }
            Fabric::Router => {
                let r = &self.nodes[0];
                let net = h * 16 + isp;
                let port = format!("h{h}i{isp}");
                veth_with_queues(ns, ifname, r, &port, self.queues)?;
                let rv4 = Ipv4Addr::new(198, 18, net, 1);
                let rv6 = Ipv6Addr::new(0xfd00, 0x18, u16::from(net), 0, 0, 0, 0, 1);
                add_addr(r, &port, IpAddr::V4(rv4), 24)?;
                add_addr(r, &port, IpAddr::V6(rv6), 64)?;
                let v4 = Ipv4Addr::new(198, 18, net, 2);
                let v6 = Ipv6Addr::new(0xfd00, 0x18, u16::from(net), 0, 0, 0, 0, 2);
                add_addr(ns, ifname, IpAddr::V4(v4), 24)?;
                add_addr(ns, ifname, IpAddr::V6(v6), 64)?;
                let port = Port {
                    netns: r.name().to_string(),
                    ifname: port,
                };
                Ok(Uplink {
                    ifname: ifname.to_string(),
                    v4,
                    v6,
                    next_hop_v4: Some(rv4),
                    next_hop_v6: Some(rv6),
                    port: port.clone(),
                    fabric_port: port,
                    public_v4: v4,
                })
            }
        }
    }

    fn router(&self) -> Option<&Netns> {
        (self.kind == Fabric::Router).then(|| &self.nodes[0])
    }
}

fn add_addr(ns: &Netns, ifname: &str, addr: IpAddr, prefix: u8) -> Result<()> {
    let a = format!("{addr}/{prefix}");
    if addr.is_ipv6() {
        ns.ip(&["-6", "addr", "add", &a, "dev", ifname, "nodad"])?;
    } else {
        ns.ip(&["addr", "add", &a, "dev", ifname])?;
    }
    Ok(())
}

/// Writes a sysctl inside the namespace (`key` in dotted form).
pub fn sysctl(ns: &Netns, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    ns.enter(|| std::fs::write(&path, value))?
        .map_err(|e| LabError::io(format!("setting {key} in {}", ns.name()), e))
}

fn forwarding(ns: &Netns) -> Result<()> {
    sysctl(ns, "net.ipv4.ip_forward", "1")?;
    sysctl(ns, "net.ipv6.conf.all.forwarding", "1")
}

/// Routing on a multihomed host: routes through a down link are ignored, each uplink's source
/// address uses that uplink (policy routing), and the main table prefers uplink 1.
fn multihome(ns: &Netns, uplinks: &[Uplink]) -> Result<()> {
    sysctl(ns, "net.ipv4.conf.all.ignore_routes_with_linkdown", "1")?;
    sysctl(ns, "net.ipv6.conf.all.ignore_routes_with_linkdown", "1")?;
    for (i, u) in uplinks.iter().enumerate() {
        let table = (101 + i).to_string();
        let metric = (100 * (i + 1)).to_string();
        if let Some(nh) = u.next_hop_v4 {
            let nh = nh.to_string();
            ns.ip(&[
                "route", "add", "default", "via", &nh, "dev", &u.ifname, "metric", &metric,
            ])?;
            ns.ip(&[
                "route", "add", "default", "via", &nh, "dev", &u.ifname, "table", &table,
            ])?;
            ns.ip(&["rule", "add", "from", &u.v4.to_string(), "table", &table])?;
        }
        if let Some(nh) = u.next_hop_v6 {
            let nh = nh.to_string();
            ns.ip(&[
                "-6", "route", "add", "default", "via", &nh, "dev", &u.ifname, "metric", &metric,
            ])?;
            ns.ip(&[
                "-6", "route", "add", "default", "via", &nh, "dev", &u.ifname, "table", &table,
            ])?;
            ns.ip(&[
                "-6",
                "rule",
                "add",
                "from",
                &u.v6.to_string(),
                "table",
                &table,
            ])?;
        }
    }
    Ok(())
}

/// Builds a gateway `role` (host number `h`) with two WAN links and a LAN with one host.
fn gateway_with_lan(fabric: &FabricNs, role: &str, h: u8) -> Result<(Host, Host)> {
    let ns = Netns::new(role)?;
    forwarding(&ns)?;
    let uplinks = vec![
        fabric.plug(&ns, "wan1", h, 1)?,
        fabric.plug(&ns, "wan2", h, 2)?,
    ];
    multihome(&ns, &uplinks)?;
    let lan_ns = Netns::new(&format!("lan{h}"))?;
    veth_with_queues(&ns, "lan", &lan_ns, "eth0", fabric.queues)?;
    let net = 100 + h;
    let gv4 = Ipv4Addr::new(10, net, 0, 1);
    let gv6 = Ipv6Addr::new(0xfd00, u16::from(net), 0, 0, 0, 0, 0, 1);
    let hv4 = Ipv4Addr::new(10, net, 0, 2);
    let hv6 = Ipv6Addr::new(0xfd00, u16::from(net), 0, 0, 0, 0, 0, 2);
    add_addr(&ns, "lan", IpAddr::V4(gv4), 24)?;
    add_addr(&ns, "lan", IpAddr::V6(gv6), 64)?;
    add_addr(&lan_ns, "eth0", IpAddr::V4(hv4), 24)?;
    add_addr(&lan_ns, "eth0", IpAddr::V6(hv6), 64)?;
    lan_ns.ip(&["route", "add", "default", "via", &gv4.to_string()])?;
    lan_ns.ip(&["-6", "route", "add", "default", "via", &gv6.to_string()])?;
    let gw = Host {
        ns,
        uplinks,
        lan: Some(LanSide {
            ifname: "lan".into(),
            v4: gv4,
            v6: gv6,
            prefix_v4: format!("10.{net}.0.0/24"),
            prefix_v6: format!("fd00:{net:x}::/64"),
        }),
        lan_addr: None,
    };
    let lan = Host {
        ns: lan_ns,
        uplinks: Vec::new(),
        lan: None,
        lan_addr: Some((hv4, hv6)),
    };
    Ok((gw, lan))
}

/// Topology (a), (c) with `nat`, (d) with [`Fabric::Router`]: a road warrior with two uplinks,
/// a multihomed gateway, and a host on the gateway's LAN.
#[derive(Debug)]
pub struct RoadWarrior {
    /// The road warrior (host number 2).
    pub rw: Host,
    /// The gateway (host number 1).
    pub gw: Host,
    /// The host on the gateway's LAN.
    pub lan: Host,
    /// The NAT on one of the road warrior's uplinks, with `nat`.
    pub nat: Option<Netns>,
    fabric: FabricNs,
}

impl RoadWarrior {
    /// Builds the topology.
    pub fn build(options: Options) -> Result<RoadWarrior> {
        let fabric = FabricNs::new(options.fabric, 2, 1)?;
        let (gw, lan) = gateway_with_lan(&fabric, "gw", 1)?;
        let rw_ns = Netns::new("rw")?;
        let mut uplinks = Vec::new();
        let mut nat = None;
        for i in 0..2u8 {
            let ifname = format!("wan{}", i + 1);
            if options.nat == Some(usize::from(i)) {
                let (uplink, nat_ns) = behind_nat(&fabric, &rw_ns, &ifname, i + 1)?;
                uplinks.push(uplink);
                nat = Some(nat_ns);
            } else {
                uplinks.push(fabric.plug(&rw_ns, &ifname, 2, i + 1)?);
            }
        }
        multihome(&rw_ns, &uplinks)?;
        Ok(RoadWarrior {
            rw: Host {
                ns: rw_ns,
                uplinks,
                lan: None,
                lan_addr: None,
            },
            gw,
            lan,
            nat,
            fabric,
        })
    }

    /// The router namespace with [`Fabric::Router`].
    pub fn router(&self) -> Option<&Netns> {
        self.fabric.router()
    }

    /// The namespace named `name` among the fabric's and the NAT's.
    pub fn fabric_ns(&self, name: &str) -> Option<&Netns> {
        self.fabric
            .nodes
            .iter()
            .chain(self.nat.iter())
            .find(|n| n.name() == name)
    }
}

/// Uplink `ifname` of `rw_ns` behind a masquerading NAT namespace plugged into ISP `isp`:
/// the host's address is 100.64.`isp`.2 (fd00:64:`isp`::2), the NAT's outside one is what
/// peers see.
fn behind_nat(fabric: &FabricNs, rw_ns: &Netns, ifname: &str, isp: u8) -> Result<(Uplink, Netns)> {
    let nat_ns = Netns::new("nat")?;
    forwarding(&nat_ns)?;
    let outside = fabric.plug(&nat_ns, "out", 2, isp)?;
    if let Some(nh) = outside.next_hop_v4 {
        nat_ns.ip(&["route", "add", "default", "via", &nh.to_string()])?;
    }
    if let Some(nh) = outside.next_hop_v6 {
        nat_ns.ip(&["-6", "route", "add", "default", "via", &nh.to_string()])?;
    }
    veth(rw_ns, ifname, &nat_ns, "in")?;
    let inside_nat = Ipv4Addr::new(100, 64, isp, 1);
    let inside_rw = Ipv4Addr::new(100, 64, isp, 2);
    let inside6_nat = Ipv6Addr::new(0xfd00, 0x64, u16::from(isp), 0, 0, 0, 0, 1);
    let inside6_rw = Ipv6Addr::new(0xfd00, 0x64, u16::from(isp), 0, 0, 0, 0, 2);
    add_addr(&nat_ns, "in", IpAddr::V4(inside_nat), 24)?;
    add_addr(&nat_ns, "in", IpAddr::V6(inside6_nat), 64)?;
    add_addr(rw_ns, ifname, IpAddr::V4(inside_rw), 24)?;
    add_addr(rw_ns, ifname, IpAddr::V6(inside6_rw), 64)?;
    crate::cmd::require("nft")?;
    let rules = "table ip lab_nat {\n\tchain post {\n\t\ttype nat hook postrouting priority 100;\n\t\toifname \"out\" masquerade\n\t}\n}\ntable ip6 lab_nat {\n\tchain post {\n\t\ttype nat hook postrouting priority 100;\n\t\toifname \"out\" masquerade\n\t}\n}\n";
    load_nft(&nat_ns, rules)?;
    let uplink = Uplink {
        ifname: ifname.into(),
        v4: inside_rw,
        v6: inside6_rw,
        next_hop_v4: Some(inside_nat),
        next_hop_v6: Some(inside6_nat),
        port: Port {
            netns: nat_ns.name().to_string(),
            ifname: "in".into(),
        },
        fabric_port: outside.port.clone(),
        public_v4: outside.v4,
    };
    Ok((uplink, nat_ns))
}

/// Topology (b), and (d) with [`Fabric::Router`]: two multihomed gateways site to site, each
/// with a LAN host.
#[derive(Debug)]
pub struct SiteToSite {
    /// Gateway A (host number 1).
    pub gwa: Host,
    /// Gateway B (host number 2).
    pub gwb: Host,
    /// The host on A's LAN.
    pub lana: Host,
    /// The host on B's LAN.
    pub lanb: Host,
    fabric: FabricNs,
}

impl SiteToSite {
    /// Builds the topology (`options.nat` is not supported here).
    pub fn build(options: Options) -> Result<SiteToSite> {
        SiteToSite::build_with_queues(options, 1)
    }

    /// Like [`SiteToSite::build`], with `queues` TX and RX queues on every veth (WAN links,
    /// fabric ports, LAN links), so that a data plane runs one worker per queue. A frame sent
    /// on queue `q` of a veth arrives on queue `q` of its peer; a bridge or the router picks
    /// the queue towards the next host afresh (XPS, else flow hash: for ESP the addresses and
    /// the SPI, so one SA keeps to one queue unless XPS is set on the fabric port).
    pub fn build_with_queues(options: Options, queues: u16) -> Result<SiteToSite> {
        if options.nat.is_some() {
            return Err(LabError::Usage(
                "a NAT is placed on a road warrior's uplink only".into(),
            ));
        }
        let fabric = FabricNs::new(options.fabric, 2, queues.max(1))?;
        let (gwa, lana) = gateway_with_lan(&fabric, "gwa", 1)?;
        let (gwb, lanb) = gateway_with_lan(&fabric, "gwb", 2)?;
        Ok(SiteToSite {
            gwa,
            gwb,
            lana,
            lanb,
            fabric,
        })
    }

    /// The router namespace with [`Fabric::Router`].
    pub fn router(&self) -> Option<&Netns> {
        self.fabric.router()
    }

    /// The namespace named `name` among the fabric's.
    pub fn fabric_ns(&self, name: &str) -> Option<&Netns> {
        self.fabric.nodes.iter().find(|n| n.name() == name)
    }
}

/// Loads an nftables ruleset into the namespace.
pub fn load_nft(ns: &Netns, rules: &str) -> Result<()> {
    let path = std::env::temp_dir().join(format!("{}-{}.nft", ns.name(), rules.len()));
    std::fs::write(&path, rules)
        .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
    let path_s = path.to_string_lossy().to_string();
    let result = ns.exec("nft", &["-f", &path_s]);
    let _ = std::fs::remove_file(&path);
    result.map(|_| ())
}
