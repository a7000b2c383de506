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

use std::time::{Duration, Instant};

use interop::{Roamgate, assert_same_child};
use roamgate_lab::Lab;
use roamgate_lab::strongswan::{Charon, GW_ID, RW_ID, Section, TunnelParams};
use roamgate_lab::topology::{Options, RW_POOL, RoadWarrior};

const TIMEOUT: Duration = Duration::from_secs(20);
/// The identity roamgate uses for the connection the reload adds.
const BACK_ID: &str = "gw-back.roamgate.test";

fn quoted(list: &[String]) -> String {
    list.iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The gateway for strongSwan's road warrior (connection `rw`, child `lan`).
fn v1(params: &TunnelParams, gw: &[String], lan: &str) -> String {
    format!(
        r#"[daemon]
log_level = "debug"

[connections.rw]
local_addrs = [{gw}]
proposals = ["{ike}"]
pools = ["rw_pool"]

[connections.rw.local]
auth = "psk"
id = "{gw_id}"

[connections.rw.remote]
auth = "psk"
id = "*@roamgate.test"

[connections.rw.children.lan]
local_ts = ["{lan}"]
remote_ts = ["dynamic"]
esp_proposals = ["{esp}"]

[pools.rw_pool]
addrs = "{pool}"

[secrets.ike-lab]
id = ["{gw_id}", "{rw_id}"]
secret = "{psk}"
"#,
        gw = quoted(gw),
        ike = params.proposals,
        esp = params.esp_proposals,
        gw_id = GW_ID,
        rw_id = RW_ID,
        psk = params.psk,
        pool = RW_POOL,
    )
}

/// `v1` plus connection `back`: roamgate initiates from its first uplink to the road
/// warrior's address, `dynamic` on the road warrior's side.
fn v2(params: &TunnelParams, gw: &[String], lan: &str, rw: &str) -> String {
    format!(
        r#"{v1}
[connections.back]
local_addrs = ["{gw0}"]
remote_addrs = ["{rw}"]
proposals = ["{ike}"]

[connections.back.local]
auth = "psk"
id = "{back_id}"

[connections.back.remote]
auth = "psk"
id = "{rw_id}"

[connections.back.children.back]
local_ts = ["{lan}"]
remote_ts = ["dynamic"]
esp_proposals = ["{esp}"]
"#,
        v1 = v1(params, gw, lan),
        gw0 = gw[0],
        ike = params.proposals,
        esp = params.esp_proposals,
        back_id = BACK_ID,
        rw_id = RW_ID,
    )
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
    std::fs::write(&config, v1(&params, &gw_addrs, &lan)).unwrap();
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
    std::fs::write(&config, v2(&params, &gw_addrs, &lan, &rw_addr)).unwrap();
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
