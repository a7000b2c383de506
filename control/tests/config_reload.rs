//! Reloading the configuration file (SIGHUP, here [`DaemonHandle::reload`]) against a real
//! strongSwan 5.9.8 in the lab: roamgate runs from a TOML file loaded with
//! `daemon::config::load`; strongSwan establishes an SA; the file is rewritten with a second
//! connection and reloaded: the first SA is still there with the same SPIs, and the new
//! connection (roamgate initiating, `dynamic` selectors) comes up. Then a broken file is
//! refused on reload and the running configuration stays.
//!
//! Needs root and strongSwan (`cargo xtask deps`): fails, saying what is missing, without
//! them. Logs stay in /tmp/roamgate-lab/<test>/.
//!
//! [`DaemonHandle::reload`]: roamgate_control::daemon::DaemonHandle::reload

mod interop;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use interop::{Roamgate, assert_same_child};
use roamgate_lab::Lab;
use roamgate_lab::roamgate::{Auth, Child, Connection, ControlConfig};
use roamgate_lab::strongswan::{Charon, GW_ID, RW_ID, Section, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};

const TIMEOUT: Duration = Duration::from_secs(20);
/// The identity roamgate uses for the connection the reload adds.
const BACK_ID: &str = "gw-back.roamgate.test";

/// The gateway for strongSwan's road warrior (connection `rw`, child `lan`), any
/// `*@roamgate.test` road warrior.
fn v1(params: &TunnelParams, gw: &[String], lan: &str) -> ControlConfig {
    let mut config = ControlConfig::road_warrior_gateway(params, gw, lan);
    config.daemon.log_level = Some("debug".into());
    if let Some(rw) = config.connections.get_mut("rw") {
        rw.remote.id = "*@roamgate.test".into();
    }
    config
}

/// `v1` plus connection `back`: roamgate initiates from its first uplink to the road
/// warrior's address, `dynamic` on the road warrior's side.
fn v2(params: &TunnelParams, gw: &[String], lan: &str, rw: &str) -> ControlConfig {
    let mut config = v1(params, gw, lan);
    config.connections.insert(
        "back".into(),
        Connection {
            local_addrs: vec![gw[0].clone()],
            remote_addrs: vec![rw.into()],
            proposals: vec![params.proposals.clone()],
            local: Auth::psk(BACK_ID),
            remote: Auth::psk(RW_ID),
            children: BTreeMap::from([(
                "back".to_string(),
                Child {
                    local_ts: vec![lan.into()],
                    remote_ts: vec!["dynamic".into()],
                    esp_proposals: vec![params.esp_proposals.clone()],
                    ..Child::default()
                },
            )]),
            ..Connection::default()
        },
    );
    config
}

/// strongSwan's road warrior: `home` (initiates to the gateway, asks for a virtual IP) and
/// `back` (answers the gateway's `back`).
fn strongswan_rw(params: &TunnelParams, gw: &[String], lan: &str, rw: &str) -> Section {
    let auth = |id: &str| Section::new().set("auth", "psk").set("id", id);
    Section::new()
        .section(
            "connections",
            Section::new()
                .section(
                    "home",
                    Section::new()
                        .set("remote_addrs", gw.join(","))
                        .set("vips", "0.0.0.0")
                        .set("proposals", &params.proposals)
                        .section("local", auth(RW_ID))
                        .section("remote", auth(GW_ID))
                        .section(
                            "children",
                            Section::new().section(
                                "lan",
                                Section::new()
                                    .set("remote_ts", lan)
                                    .set("esp_proposals", &params.esp_proposals),
                            ),
                        ),
                )
                .section(
                    "back",
                    Section::new()
                        .set("local_addrs", rw)
                        .set("remote_addrs", gw.join(","))
                        .set("proposals", &params.proposals)
                        .section("local", auth(RW_ID))
                        .section("remote", auth(BACK_ID))
                        .section(
                            "children",
                            Section::new().section(
                                "back",
                                Section::new()
                                    .set("local_ts", "dynamic")
                                    .set("remote_ts", lan)
                                    .set("esp_proposals", &params.esp_proposals),
                            ),
                        ),
                ),
        )
        .section(
            "secrets",
            Section::new()
                .section(
                    "ike-lab",
                    Section::new()
                        .set("id-1", RW_ID)
                        .set("id-2", GW_ID)
                        .set("secret", format!("\"{}\"", params.psk)),
                )
                .section(
                    "ike-back",
                    Section::new()
                        .set("id-1", RW_ID)
                        .set("id-2", BACK_ID)
                        .set("secret", format!("\"{}\"", params.psk)),
                ),
        )
}

fn wait_reloads(gw: &Roamgate, want: (u64, u64)) {
    let deadline = Instant::now() + TIMEOUT;
    while gw.snapshot().reloads != want {
        assert!(
            Instant::now() < deadline,
            "reloads: {:?}, expected {want:?}; log: {}",
            gw.snapshot().reloads,
            gw.log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reload_keeps_sas_adds_connections_and_refuses_a_broken_file() {
    let lab = Lab::new("control_config_reload").unwrap();
    let topo = RoadWarrior::build(Options::default()).unwrap();
    let params = TunnelParams::default();
    let gw_addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let lan = topo.gw.lan.clone().unwrap().prefix_v4;
    let rw_addr = topo.rw.uplink(0).v4.to_string();
    let config = lab.logs().join("roamgate.toml");
    std::fs::write(&config, v1(&params, &gw_addrs, &lan).render()).unwrap();
    let gw = Roamgate::start_from_file(&lab, &topo.gw.ns, "gw", &config);
    let rw = Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan_rw(&params, &gw_addrs, &lan, &rw_addr),
    )
    .unwrap();
    rw.initiate("home", "lan").unwrap();
    let home = rw.wait_established("home", "lan", TIMEOUT).unwrap();
    let ours = gw.wait_established(TIMEOUT);
    assert_eq!(
        gw.handle.initiate("back").unwrap_err().to_string(),
        "no connection named `back`"
    );

    // Reload with a second connection.
    std::fs::write(&config, v2(&params, &gw_addrs, &lan, &rw_addr).render()).unwrap();
    gw.handle.reload();
    wait_reloads(&gw, (1, 0));
    let still = gw.snapshot();
    let kept = still
        .ike_sas
        .iter()
        .find(|sa| sa.handle == ours.handle)
        .expect("the IKE SA survives the reload");
    assert!(kept.established);
    assert_eq!(kept.children, ours.children, "same CHILD_SAs, same SPIs");
    gw.handle.initiate("back").unwrap();
    let back = rw.wait_established("back", "back", TIMEOUT).unwrap();
    assert_same_child(
        &back,
        &gw.sink.lock().unwrap().iter().cloned().collect::<Vec<_>>(),
    );
    // `dynamic` on roamgate's side of `back` is the road warrior's IKE address.
    let installed = gw.sink.lock().unwrap().iter().cloned().collect::<Vec<_>>();
    let back_sa = installed
        .iter()
        .find(|c| c.name == "back")
        .expect("roamgate installed `back`");
    assert_eq!(
        format!("{:?}", back_sa.remote_ts),
        format!(
            "{:?}",
            vec![roamgate_control::wire::payload::TrafficSelector::Ipv4(
                roamgate_control::wire::payload::AddressRange::any(
                    topo.rw.uplink(0).v4,
                    topo.rw.uplink(0).v4
                )
            )]
        )
    );
    // The first SA is still up on strongSwan's side too, with the same SPIs.
    let home_after = rw.wait_established("home", "lan", TIMEOUT).unwrap();
    assert_eq!(home_after.children[0].spi_in, home.children[0].spi_in);
    assert_eq!(home_after.children[0].spi_out, home.children[0].spi_out);

    // A broken file is refused; the running configuration (with `back`) stays.
    std::fs::write(&config, "[connections.rw\nbroken = \n").unwrap();
    gw.handle.reload();
    wait_reloads(&gw, (1, 1));
    let s = gw.snapshot();
    assert_eq!(
        s.ike_sas.iter().filter(|sa| sa.established).count(),
        2,
        "{:#?}",
        s.ike_sas
    );
    assert!(
        gw.handle.initiate("back").is_ok(),
        "the reloaded configuration stays"
    );
}
