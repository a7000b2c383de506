//! Acceptance against a real strongSwan 5.9.8 (kernel-libipsec) in the lab: strongSwan
//! establishes IKE and CHILD SAs with roamgate's control daemon, with roamgate as responder
//! and as initiator. Both sides must report the same SPIs and algorithms, the road warrior
//! must get its virtual IP from roamgate's pool, and every IKE packet roamgate sends must
//! dissect in tshark without a malformed packet or an expert error.
//!
//! Needs root, strongSwan and tshark (`cargo xtask deps`): fails, saying what is missing,
//! without them. Logs (charon's, roamgate's, the captures) stay in /tmp/roamgate-lab/<test>/.

mod interop;

use std::time::Duration;

use interop::{
    ClientToStrongswan, Roamgate, assert_clean_ike, assert_same_child, gateway_config,
    roamgate_client_to_strongswan,
};
use roamgate_lab::Lab;
use roamgate_lab::capture::Capture;
use roamgate_lab::strongswan::{self, Charon, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};

const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn strongswan_initiates_to_roamgate_psk_x25519_aes128gcm16() {
    let lab = Lab::new("ike_strongswan_initiates_psk").unwrap();
    let topo = RoadWarrior::build(Options::default()).unwrap();
    let params = TunnelParams::default();
    let gw_v4 = topo.gw.wan_v4();
    let gw_addrs: Vec<String> = gw_v4.iter().map(|a| a.to_string()).collect();
    let lan = topo.gw.lan.clone().unwrap();
    let capture = Capture::start(
        &topo.gw.ns,
        &topo.gw.uplink(0).ifname,
        "udp port 500 or udp port 4500",
        &lab.logs().join("gw-wan1.pcap"),
    )
    .unwrap();
    let gw = Roamgate::start(
        &lab,
        &topo.gw.ns,
        "gw",
        gateway_config(&params, &gw_v4, &lan.prefix_v4),
    );
    let rw = Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&params, &gw_addrs, &lan.prefix_v4),
    )
    .unwrap();
    rw.initiate("home", "lan").unwrap();
    let sa = rw.wait_established("home", "lan", TIMEOUT).unwrap();
    let ours = gw.wait_established(TIMEOUT);
    assert_eq!(
        sa.algorithms, "AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519",
        "{sa:?}"
    );
    assert_eq!(sa.children[0].algorithms, "ESP:AES_GCM_16-128", "{sa:?}");
    // The virtual IP comes from roamgate's pool and both sides agree on it.
    let vip = sa.local_vips.first().expect("strongSwan got a virtual IP");
    assert!(vip.starts_with("10.200.0."), "{sa:?}");
    assert_eq!(
        ours.virtual_ip.map(|v| v.to_string()).as_deref(),
        Some(vip.as_str())
    );
    assert_same_child(
        &sa,
        &gw.sink.lock().unwrap().iter().cloned().collect::<Vec<_>>(),
    );
    let pcap = capture.stop().unwrap();
    let n = assert_clean_ike(&pcap, &gw_addrs[0]);
    println!(
        "{n} IKE packets from roamgate dissected cleanly; logs: {}",
        lab.logs().display()
    );
}

#[test]
fn roamgate_initiates_to_strongswan_psk_x25519_aes128gcm16() {
    let lab = Lab::new("ike_roamgate_initiates_psk").unwrap();
    let topo = RoadWarrior::build(Options::default()).unwrap();
    let params = TunnelParams::default();
    let capture = Capture::start(
        &topo.rw.ns,
        &topo.rw.uplink(0).ifname,
        "udp port 500 or udp port 4500",
        &lab.logs().join("rw-up1.pcap"),
    )
    .unwrap();
    // `_gw` keeps strongSwan running until the end of the test.
    let ClientToStrongswan {
        gw: _gw,
        rw,
        ours,
        theirs: sa,
    } = roamgate_client_to_strongswan(&lab, &topo, &params);
    assert_eq!(
        sa.algorithms, "AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519",
        "{sa:?}"
    );
    // strongSwan's pool handed roamgate its virtual IP.
    let vip = ours.virtual_ip.expect("roamgate got a virtual IP");
    assert!(vip.to_string().starts_with("10.200.0."), "{ours:?}");
    assert_same_child(
        &sa,
        &rw.sink.lock().unwrap().iter().cloned().collect::<Vec<_>>(),
    );
    let pcap = capture.stop().unwrap();
    let n = assert_clean_ike(&pcap, &topo.rw.uplink(0).v4.to_string());
    println!(
        "{n} IKE packets from roamgate dissected cleanly; logs: {}",
        lab.logs().display()
    );
}
