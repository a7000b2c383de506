//! The whole gateway against a real strongSwan 5.9.8 road warrior (kernel-libipsec) in the lab:
//! roamgate's control daemon negotiates the SAs and writes them into the pinned maps through
//! [`PinnedMapSink`]; roamgate's data plane (XDP + AF_XDP workers, no static SAs) carries the
//! ESP between strongSwan and the LAN host. Ping both ways through the tunnel from the road
//! warrior's virtual IP; the data plane's counters show it decapsulated and encapsulated the
//! traffic, and nftables on the gateway shows no ESP reached its kernel. iperf3 TCP and UDP
//! through the tunnel, on isolated segments and with the road warrior behind a NAT. With
//! `vips = 0.0.0.0,::` the road warrior gets an address of each family from roamgate's pools
//! and one CHILD_SA carries both; the same traffic runs over IPv6 from its IPv6 virtual IP
//! to the LAN host's IPv6 address.
//! (strongSwan's kernel-libipsec always sends ESP in UDP; raw ESP is covered by the data
//! plane's own site-to-site tests.)
//!
//! Needs root, bpffs, strongSwan, nft and ethtool (`cargo xtask deps`); fails saying what is
//! missing without them. Logs stay in /tmp/roamgate-lab/<test>/.

mod interop;

use std::path::{Path, PathBuf};
use std::time::Duration;

use interop::{gateway_config, gateway_config_dual_stack};
use roamgate_control::daemon::{Daemon, DaemonSettings};
use roamgate_control::pinned_sink::PinnedMapSink;
use roamgate_gateway::config::GatewayConfig;
use roamgate_gateway::dataplane::{Forward, Gateway};
use roamgate_lab::capture::{count_esp_in_kernel, esp_in_kernel};
use roamgate_lab::roamgate::gateway_toml;
use roamgate_lab::strongswan::{self, Charon, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};
use roamgate_lab::{Lab, Netns, traffic};

struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = roamgate_ebpf::remove_pins(&self.0);
    }
}

fn forwarded(pins: &Path, f: Forward) -> u64 {
    roamgate_ebpf::WorkerCounters::open(pins)
        .unwrap()
        .total(f.slot())
}

/// The inner address families the road warrior asks virtual IPs for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inner {
    V4,
    DualStack,
}

#[test]
fn strongswan_road_warrior_reaches_the_lan_through_roamgate() {
    road_warrior("esp_strongswan_road_warrior", Options::default(), Inner::V4);
}

/// An IPv4 and an IPv6 virtual IP (INTERNAL_IP4_ADDRESS and INTERNAL_IP6_ADDRESS, RFC 7296
/// § 3.15.1) in one CHILD_SA with the LAN's IPv4 and IPv6 prefixes; IPv6 inner traffic both
/// ways through the data plane, then IPv4.
#[test]
fn strongswan_dual_stack_road_warrior_reaches_the_ipv6_lan_through_roamgate() {
    road_warrior(
        "esp_strongswan_road_warrior_v6",
        Options::default(),
        Inner::DualStack,
    );
}

/// Topology (c): the road warrior's first uplink is behind a masquerading NAT.
#[test]
fn strongswan_road_warrior_behind_a_nat_reaches_the_lan_through_roamgate() {
    road_warrior(
        "esp_strongswan_road_warrior_nat",
        Options {
            nat: Some(0),
            ..Options::default()
        },
        Inner::V4,
    );
}

fn road_warrior(name: &str, options: Options, inner: Inner) {
    let lab = Lab::new(name).unwrap();
    let topo = RoadWarrior::build(options).unwrap();
    let lan_host = &topo.lan.ns;
    // Behind a real NIC a host's checksums are complete; veth leaves them to "hardware",
    // which AF_XDP in copy mode never fills in.
    lan_host
        .exec("ethtool", &["-K", "eth0", "tx", "off"])
        .unwrap_or_else(|e| panic!("{e}"));
    let pins = Pins(PathBuf::from(format!(
        "/sys/fs/bpf/roamgate-test/{}-{name}",
        std::process::id()
    )));
    let text = gateway_toml(&pins.0);
    let config = GatewayConfig::parse(Path::new("lab.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let dataplane = topo
        .gw
        .ns
        .enter(|| Gateway::start(&config))
        .unwrap()
        .unwrap_or_else(|e| panic!("starting the data plane: {e}"));
    count_esp_in_kernel(&topo.gw.ns).unwrap();

    let params = TunnelParams {
        vips: match inner {
            Inner::V4 => "0.0.0.0".into(),
            Inner::DualStack => "0.0.0.0,::".into(),
        },
        ..TunnelParams::default()
    };
    let gw_v4 = topo.gw.wan_v4();
    let gw_addrs: Vec<String> = gw_v4.iter().map(|a| a.to_string()).collect();
    let lan = topo.gw.lan.clone().unwrap();
    let (engine_config, protected) = match inner {
        Inner::V4 => (
            gateway_config(&params, &gw_v4, &lan.prefix_v4),
            lan.prefix_v4.clone(),
        ),
        Inner::DualStack => (
            gateway_config_dual_stack(&params, &gw_v4, &lan.prefix_v4, &lan.prefix_v6),
            format!("{},{}", lan.prefix_v4, lan.prefix_v6),
        ),
    };
    let sink = PinnedMapSink::open(&pins.0).unwrap_or_else(|e| panic!("{e}"));
    let settings = DaemonSettings::default();
    let control = topo
        .gw
        .ns
        .enter(move || {
            Daemon::new(
                Box::new(move || Ok((settings.clone(), engine_config.clone()))),
                Box::new(sink),
            )
        })
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = control.handle();
    let control_thread = std::thread::spawn(move || control.run());

    let rw = Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&params, &gw_addrs, &protected),
    )
    .unwrap();
    rw.initiate("home", "lan").unwrap();
    let sa = rw
        .wait_established("home", "lan", Duration::from_secs(20))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !handle
        .snapshot()
        .ike_sas
        .iter()
        .any(|s| s.established && !s.children.is_empty())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "roamgate established nothing: {:#?}",
            handle.snapshot()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sink_errors = handle.snapshot().stats.sa_sink_errors;
    assert_eq!(sink_errors, 0, "the data plane refused SA events");
    let vip = sa
        .local_vips
        .iter()
        .find(|v| !v.contains(':'))
        .cloned()
        .expect("an IPv4 virtual IP");
    let (lan_v4, lan_v6) = topo.lan.lan_addr.unwrap();

    if inner == Inner::DualStack {
        let vip6 = sa
            .local_vips
            .iter()
            .find(|v| v.contains(':'))
            .cloned()
            .unwrap_or_else(|| panic!("strongSwan got no IPv6 virtual IP: {sa:?}"));
        let ours = handle
            .snapshot()
            .ike_sas
            .iter()
            .find(|s| s.established)
            .map(|s| s.virtual_ips.clone())
            .unwrap_or_default();
        assert_eq!(
            ours.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            [vip.clone(), vip6.clone()],
            "roamgate's assigned virtual IPs against strongSwan's"
        );
        ipv6_through_the_tunnel(&lab, &topo, &pins.0, &lan_v6.to_string(), &vip6);
    }

    // Road warrior → LAN host (ESP decapsulated by the workers) and back (encapsulated).
    // strongSwan routes the LAN prefix through its TUN device with the virtual IP as source.
    let r = traffic::ping(
        &topo.rw.ns,
        &lan_v4.to_string(),
        20,
        Duration::from_millis(20),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.transmitted, r.received),
        (20, 20),
        "ping from the virtual IP: {r:?}; logs: {}",
        lab.logs().display()
    );
    let r = traffic::ping(lan_host, &vip, 20, Duration::from_millis(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.transmitted, r.received),
        (20, 20),
        "ping to the virtual IP: {r:?}"
    );

    // TCP and UDP both ways of the tunnel (the road warrior sends, the LAN host receives,
    // and the LAN host's TCP acknowledgements go back through the gateway's encapsulation).
    let tcp = traffic::iperf3(
        lan_host,
        &topo.rw.ns,
        &lan_v4.to_string(),
        3,
        None,
        lab.logs(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(tcp.bits_per_second > 1e6, "TCP through the tunnel: {tcp:?}");
    let udp = traffic::iperf3(
        lan_host,
        &topo.rw.ns,
        &lan_v4.to_string(),
        2,
        Some("20M"),
        lab.logs(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        udp.lost_percent.is_some_and(|l| l < 5.0),
        "UDP at 20 Mbit/s through the tunnel: {udp:?}"
    );
    println!(
        "{name}: TCP {:.0} Mbit/s, UDP {:.0} Mbit/s (loss {:?} %), mode {}",
        tcp.bits_per_second / 1e6,
        udp.bits_per_second / 1e6,
        udp.lost_percent,
        sa.children[0].mode
    );

    let decapsulated = forwarded(&pins.0, Forward::Decapsulated);
    let encapsulated = forwarded(&pins.0, Forward::Encapsulated);
    assert!(decapsulated >= 40, "decapsulated {decapsulated}");
    assert!(encapsulated >= 40, "encapsulated {encapsulated}");
    assert_eq!(esp_in_kernel(&topo.gw.ns).unwrap().raw, 0);
    assert_eq!(
        esp_in_kernel(&topo.gw.ns).unwrap().in_udp,
        0,
        "ESP in UDP reached the gateway's kernel"
    );
    handle.stop();
    control_thread.join().unwrap().unwrap();
    drop(dataplane);
}

/// Waits until `ifname` in `ns` has a link-local address that duplicate address detection
/// ([RFC 4862 § 5.4](https://www.rfc-editor.org/rfc/rfc4862#section-5.4)) has finished with:
/// Linux sends no neighbour solicitation from a tentative one.
fn link_local_ready(ns: &Netns, ifname: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = ns
            .exec_text(
                "ip",
                &["-6", "-o", "addr", "show", "dev", ifname, "scope", "link"],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        if !text.trim().is_empty() && !text.contains("tentative") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no usable link-local address on {ifname} in {}: {text}",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ping both ways between the road warrior's IPv6 virtual IP and the LAN host's IPv6 address,
/// then iperf3 TCP and UDP over IPv6; the data plane's counters grow by the traffic.
fn ipv6_through_the_tunnel(lab: &Lab, topo: &RoadWarrior, pins: &Path, lan_v6: &str, vip6: &str) {
    let lan_host = &topo.lan.ns;
    // The gateway's kernel resolves the LAN host for the packets it gets through the
    // exception path; their source is not the gateway's, so its neighbour solicitations
    // come from the LAN link's link-local address, which is silent while under DAD.
    link_local_ready(&topo.gw.ns, "lan");
    link_local_ready(lan_host, "eth0");
    let before = (
        forwarded(pins, Forward::Decapsulated),
        forwarded(pins, Forward::Encapsulated),
    );
    let r = traffic::ping(&topo.rw.ns, lan_v6, 20, Duration::from_millis(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.transmitted, r.received),
        (20, 20),
        "ping6 from the IPv6 virtual IP: {r:?}; data plane: {}; logs: {}",
        roamgate_gateway::dataplane::counter_summary(pins).unwrap(),
        lab.logs().display()
    );
    let r = traffic::ping(lan_host, vip6, 20, Duration::from_millis(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.transmitted, r.received),
        (20, 20),
        "ping6 to the IPv6 virtual IP: {r:?}; data plane: {}",
        roamgate_gateway::dataplane::counter_summary(pins).unwrap()
    );
    let decapsulated = forwarded(pins, Forward::Decapsulated) - before.0;
    let encapsulated = forwarded(pins, Forward::Encapsulated) - before.1;
    assert!(decapsulated >= 40, "IPv6: decapsulated {decapsulated}");
    assert!(encapsulated >= 40, "IPv6: encapsulated {encapsulated}");

    let tcp = traffic::iperf3(lan_host, &topo.rw.ns, lan_v6, 3, None, lab.logs())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        tcp.bits_per_second > 1e6,
        "TCP over IPv6 through the tunnel: {tcp:?}"
    );
    let udp = traffic::iperf3(lan_host, &topo.rw.ns, lan_v6, 2, Some("20M"), lab.logs())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        udp.lost_percent.is_some_and(|l| l < 5.0),
        "UDP over IPv6 at 20 Mbit/s through the tunnel: {udp:?}"
    );
    println!(
        "IPv6 inner: TCP {:.0} Mbit/s, UDP {:.0} Mbit/s (loss {:?} %)",
        tcp.bits_per_second / 1e6,
        udp.bits_per_second / 1e6,
        udp.lost_percent,
    );
}
