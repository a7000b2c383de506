//! The life of an SA with a real strongSwan 5.9.8 (kernel-libipsec) in the lab, roamgate as the
//! gateway (responder) and strongSwan as the road warrior: CHILD_SA rekey and IKE SA rekey
//! started by each side, liveness checks (DPD) from each side, DELETE from each side. After
//! every step both sides must agree on the SPIs.
//!
//! Needs root and strongSwan (`cargo xtask deps`): fails, saying what is missing, without
//! them. Logs stay in /tmp/roamgate-lab/<test>/.

mod interop;

use std::time::{Duration, Instant};

use interop::{Roamgate, gateway_config, hex_spi};
use roamgate_control::engine::{DeleteReason, Event, IkeSaInfo};
use roamgate_lab::Lab;
use roamgate_lab::strongswan::{self, Charon, IkeSa, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A road warrior (strongSwan) connected to roamgate.
struct Tunnel {
    lab: Lab,
    gw: Roamgate,
    rw: Charon,
    _topo: RoadWarrior,
}

/// Connects a strongSwan road warrior to roamgate. `gw_dpd`: whether roamgate checks liveness
/// on its own after silence (strongSwan only checks when it hears nothing, so a test of
/// strongSwan's checks turns roamgate's off).
fn connect(name: &str, gw_dpd: bool) -> Tunnel {
    let lab = Lab::new(name).unwrap();
    let topo = RoadWarrior::build(Options::default()).unwrap();
    let params = TunnelParams::default();
    let gw_v4 = topo.gw.wan_v4();
    let gw_addrs: Vec<String> = gw_v4.iter().map(|a| a.to_string()).collect();
    let lan = topo.gw.lan.clone().unwrap();
    let mut config = gateway_config(&params, &gw_v4, &lan.prefix_v4);
    if !gw_dpd {
        config.connections[0].dpd_delay = None;
    }
    let gw = Roamgate::start(&lab, &topo.gw.ns, "gw", config);
    let rw = Charon::start(
        &lab,
        &topo.rw.ns,
        "rw",
        &strongswan::road_warrior_client(&params, &gw_addrs, &lan.prefix_v4),
    )
    .unwrap();
    rw.initiate("home", "lan").unwrap();
    rw.wait_established("home", "lan", TIMEOUT).unwrap();
    gw.wait_established(TIMEOUT);
    Tunnel {
        lab,
        gw,
        rw,
        _topo: topo,
    }
}

impl Tunnel {
    /// strongSwan's one IKE SA.
    fn theirs(&self) -> IkeSa {
        let sas = self.rw.list_sas().unwrap();
        assert_eq!(sas.len(), 1, "strongSwan has one IKE SA: {sas:#?}");
        sas.into_iter().next().unwrap()
    }

    /// roamgate's one established IKE SA.
    fn ours(&self) -> IkeSaInfo {
        let sas: Vec<IkeSaInfo> = self
            .gw
            .snapshot()
            .ike_sas
            .into_iter()
            .filter(|s| s.established)
            .collect();
        assert_eq!(
            sas.len(),
            1,
            "roamgate has one established IKE SA: {sas:#?}"
        );
        sas.into_iter().next().unwrap()
    }

    /// Waits until both sides show the same IKE SPIs and exactly one CHILD_SA with the same
    /// SPIs (roamgate's view, its data-plane sink and strongSwan's `--list-sas`), and until
    /// `done` holds for both views.
    fn wait_agree(
        &self,
        what: &str,
        done: impl Fn(&IkeSa, &IkeSaInfo) -> bool,
    ) -> (IkeSa, IkeSaInfo) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let theirs = self.rw.list_sas().unwrap();
            let ours: Vec<IkeSaInfo> = self
                .gw
                .snapshot()
                .ike_sas
                .into_iter()
                .filter(|s| s.established)
                .collect();
            let sink: Vec<(u32, u32)> = self
                .gw
                .sink
                .lock()
                .unwrap()
                .iter()
                .map(|c| (c.inbound.spi, c.outbound.spi))
                .collect();
            if let ([t], [o]) = (theirs.as_slice(), ours.as_slice()) {
                let same_ike = t.spi_i == format!("{:016x}", o.spi_i)
                    && t.spi_r == format!("{:016x}", o.spi_r);
                let same_child = match (
                    t.children.as_slice(),
                    o.children.as_slice(),
                    sink.as_slice(),
                ) {
                    ([tc], [oc], [(sin, sout)]) => {
                        tc.state == "INSTALLED"
                            && tc.spi_in == hex_spi(oc.outbound_spi)
                            && tc.spi_out == hex_spi(oc.inbound_spi)
                            && (*sin, *sout) == (oc.inbound_spi, oc.outbound_spi)
                    }
                    _ => false,
                };
                if t.state == "ESTABLISHED" && same_ike && same_child && done(t, o) {
                    return (t.clone(), o.clone());
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the two sides do not agree within {TIMEOUT:?}\nstrongSwan: {theirs:#?}\nroamgate: {ours:#?}\nsink: {sink:x?}\nlogs: {}",
                self.lab.logs().display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn events(&self) -> Vec<Event> {
        self.gw.snapshot().events.into_iter().collect()
    }
}

#[test]
fn child_and_ike_rekeys_started_by_each_side() {
    let t = connect("ike_lifecycle_rekeys", true);
    let (_, start) = t.wait_agree("after the handshake", |_, _| true);
    let child0 = start.children[0].inbound_spi;

    // strongSwan rekeys the CHILD_SA.
    t.rw.rekey_child("lan").unwrap();
    let (_, o) = t.wait_agree("CHILD_SA rekeyed by strongSwan", |_, o| {
        o.children[0].inbound_spi != child0
    });
    let child1 = o.children[0].inbound_spi;

    // roamgate rekeys the CHILD_SA.
    t.gw.handle.rekey_child(o.handle, child1);
    let (_, o) = t.wait_agree("CHILD_SA rekeyed by roamgate", |_, o| {
        o.children[0].inbound_spi != child1
    });
    let child2 = o.children[0].inbound_spi;

    // strongSwan rekeys the IKE SA: new IKE SPIs, the CHILD_SA stays.
    let ike0 = (o.spi_i, o.spi_r);
    t.rw.rekey_ike("home").unwrap();
    let (_, o) = t.wait_agree("IKE SA rekeyed by strongSwan", |_, o| {
        (o.spi_i, o.spi_r) != ike0 && o.children[0].inbound_spi == child2
    });

    // roamgate rekeys the IKE SA.
    let ike1 = (o.spi_i, o.spi_r);
    t.gw.handle.rekey_ike(o.handle);
    let (_, o) = t.wait_agree("IKE SA rekeyed by roamgate", |_, o| {
        (o.spi_i, o.spi_r) != ike1 && o.children[0].inbound_spi == child2
    });
    assert_eq!(o.handle, start.handle, "the handle survives rekeys");
    let stats = t.gw.snapshot().stats;
    assert_eq!(stats.authentication_failed, 0, "{stats:#?}");
    assert_eq!(stats.exchange_timeouts, 0, "{stats:#?}");
}

#[test]
fn liveness_checks_and_deletes_from_each_side() {
    let t = connect("ike_lifecycle_dpd_delete", false);
    let (_, o) = t.wait_agree("after the handshake", |_, _| true);

    // strongSwan checks liveness after dpd_delay (2 s) of silence; roamgate answers.
    std::thread::sleep(Duration::from_secs(5));
    let log = std::fs::read_to_string(t.rw.log()).unwrap();
    let checks = log.matches("sending DPD request").count();
    let answered = log.matches("parsed INFORMATIONAL response").count();
    assert!(
        checks >= 1 && answered >= checks,
        "strongSwan sent {checks} DPD requests in 5 s and got {answered} answers; {}",
        t.rw.log().display()
    );
    // roamgate checks, strongSwan answers: an empty INFORMATIONAL request reaches strongSwan
    // and the exchange completes (no retransmission, no timeout).
    let before = log.matches("parsed INFORMATIONAL request").count();
    let stats_before = t.gw.snapshot().stats;
    t.gw.handle.send_dpd(o.handle);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let log = std::fs::read_to_string(t.rw.log()).unwrap();
        if log.matches("parsed INFORMATIONAL request").count() > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "roamgate's liveness check never reached strongSwan; {}",
            t.rw.log().display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let s = t.gw.snapshot();
    assert!(
        s.stats.datagrams_received > stats_before.datagrams_received,
        "{:#?}",
        s.stats
    );
    assert_eq!(
        s.stats.requests_retransmitted,
        stats_before.requests_retransmitted
    );
    assert_eq!(s.stats.exchange_timeouts, 0, "{:#?}", s.stats);
    let (_, o) = t.wait_agree("after liveness checks", |_, _| true);
    assert_eq!(t.theirs().state, "ESTABLISHED");

    // strongSwan deletes the CHILD_SA, then the IKE SA.
    t.rw.swanctl(&["--terminate", "--child", "lan", "--timeout", "10"])
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while !t.gw.sink.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "roamgate kept the CHILD_SA strongSwan deleted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t.ours().children.is_empty(), "{:#?}", t.ours());
    t.rw.terminate("home").unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let deleted = t.events().iter().any(|e| {
            matches!(e, Event::IkeSaDeleted { handle, reason: DeleteReason::Peer } if *handle == o.handle)
        });
        if deleted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no IKE SA deletion by the peer: {:#?}",
            t.events()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t.gw.snapshot().ike_sas.iter().all(|s| !s.established));

    // A new tunnel, deleted by roamgate this time.
    t.rw.initiate("home", "lan").unwrap();
    t.rw.wait_established("home", "lan", TIMEOUT).unwrap();
    let (_, o) = t.wait_agree("re-established", |_, _| true);
    t.gw.handle.terminate_ike(o.handle);
    let deadline = Instant::now() + TIMEOUT;
    while !t.rw.list_sas().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "strongSwan kept the IKE SA roamgate deleted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t.gw.sink.lock().unwrap().is_empty());
}
