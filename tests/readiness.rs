//! Readiness, not races: `roamgate control` started before `roamgate gateway` waits for the
//! gateway's readiness marker (pinned last, once every map is pinned and the workers run)
//! instead of failing, then opens the maps and keeps running; a gracefully stopped gateway
//! unpins the marker and leaves the maps.
//!
//! Both are the real binary, in a lab namespace, with a scratch pin directory under
//! /sys/fs/bpf. Needs root and bpffs; fails (never skips) with the reason otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use roamgate_lab::process::{Supervised, tail, wait_for};
use roamgate_lab::roamgate::{
    ControlConfig, READY_MARKER, gateway_toml, spawn, wait_gateway_ready,
};
use roamgate_lab::{Lab, Netns, veth};

const BIN: &str = env!("CARGO_BIN_EXE_roamgate");

/// A scratch pin directory, removed (maps and marker) when dropped: declare it before the
/// processes that use it, so they stop first.
struct Pins(PathBuf);

impl Pins {
    fn new(tag: &str) -> Pins {
        let path = PathBuf::from(format!(
            "/sys/fs/bpf/roamgate-test-{tag}-{}",
            std::process::id()
        ));
        let _ = roamgate_ebpf::remove_pins(&path);
        Pins(path)
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if let Err(e) = roamgate_ebpf::remove_pins(&self.0) {
            eprintln!("removing {}: {e}", self.0.display());
        }
    }
}

fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn log_of(p: &Supervised) -> String {
    std::fs::read_to_string(p.log()).unwrap_or_default()
}

/// Waits until `p`'s log contains `text`, failing early if `p` exits.
fn wait_log(p: &mut Supervised, text: &str, timeout: Duration, logs: &Path) {
    must(wait_for(
        &format!("{text:?} in {}", p.log().display()),
        timeout,
        logs,
        || {
            if let Err(e) = p.check_running() {
                panic!("the process exited before logging {text:?}: {e}");
            }
            log_of(p).contains(text).then_some(())
        },
    ));
}

/// Starts `roamgate control` in `ns` with its pins in `pins` and `dataplane_wait = wait`.
fn spawn_control(lab: &Lab, ns: &Netns, pins: &Pins, wait: &str) -> Supervised {
    let mut config = ControlConfig::default();
    config.daemon.bpf_pin_dir = Some(pins.0.display().to_string());
    config.daemon.log_level = Some("info".into());
    config.daemon.dataplane_wait = Some(wait.into());
    let conf = must(lab.write_log("control.toml", &config.render()));
    must(spawn(
        ns,
        "roamgate-control",
        Path::new(BIN),
        &["control", "--config", &conf.to_string_lossy()],
        lab.logs(),
    ))
}

/// Waits until `control` says it is waiting for the data plane.
fn wait_until_waiting(control: &mut Supervised, lab: &Lab) {
    wait_log(
        control,
        "waiting for the data plane",
        Duration::from_secs(10),
        lab.logs(),
    );
}

#[test]
fn the_lab_knows_the_marker_by_the_abi_s_name() {
    assert_eq!(READY_MARKER, roamgate_ebpf::abi::maps::GATEWAY_READY);
    assert_eq!(
        roamgate_ebpf::ready_path(Path::new("/sys/fs/bpf/x")),
        Path::new("/sys/fs/bpf/x").join(READY_MARKER)
    );
}

#[test]
fn control_started_before_the_gateway_waits_for_it_then_opens_the_maps() {
    let lab = must(Lab::new("readiness_control_first"));
    // The gateway's namespace with the interfaces of `gateway_toml`, their peers elsewhere.
    let gw = must(Netns::new("gw"));
    let peer = must(Netns::new("peer"));
    for (a, b) in [("wan1", "p1"), ("wan2", "p2"), ("lan", "p3")] {
        must(veth(&gw, a, &peer, b));
    }
    let pins = Pins::new("readiness");
    let marker = pins.0.join(READY_MARKER);
    let gateway_conf = must(lab.write_log("gateway.toml", &gateway_toml(&pins.0)));
    let gateway_conf = gateway_conf.to_string_lossy().into_owned();
    let bin = Path::new(BIN);

    // Control first: it waits, says for what, and keeps running.
    let mut control = spawn_control(&lab, &gw, &pins, "60s");
    wait_until_waiting(&mut control, &lab);
    let waiting = log_of(&control);
    assert!(
        waiting.contains(&marker.display().to_string()),
        "the wait does not name the marker:\n{waiting}"
    );
    assert!(
        waiting.contains("`roamgate gateway`"),
        "the wait does not say what must start:\n{waiting}"
    );
    std::thread::sleep(Duration::from_secs(1));
    if let Err(e) = control.check_running() {
        panic!("control did not wait for the data plane: {e}");
    }
    assert!(!marker.exists());
    assert!(
        !log_of(&control).contains("data plane ready"),
        "control opened maps that do not exist:\n{}",
        tail(control.log(), 20)
    );

    // Then the gateway: once its marker is pinned, control opens the maps and keeps running.
    let mut gateway = must(spawn(
        &gw,
        "roamgate-gateway",
        bin,
        &["gateway", "--config", &gateway_conf],
        lab.logs(),
    ));
    must(wait_gateway_ready(
        &pins.0,
        Duration::from_secs(30),
        &mut gateway,
    ));
    for map in roamgate_ebpf::abi::MAPS {
        assert!(
            pins.0.join(map.name).exists(),
            "the marker is pinned but {} is not",
            map.name
        );
    }
    let record = must(roamgate_ebpf::read_ready(&pins.0)).expect("a readiness record");
    assert_eq!(record.pid, gateway.pid());
    assert_eq!(record.workers, 1);
    assert_eq!(record.abi_version, roamgate_ebpf::abi::ABI_VERSION);
    wait_log(
        &mut control,
        "data plane ready: opened its maps",
        Duration::from_secs(10),
        lab.logs(),
    );
    wait_log(
        &mut control,
        "control daemon running",
        Duration::from_secs(10),
        lab.logs(),
    );
    std::thread::sleep(Duration::from_millis(500));
    must(control.check_running());
    must(gateway.check_running());

    // A graceful stop unpins the marker and leaves the maps.
    control.stop(Duration::from_secs(10));
    gateway.stop(Duration::from_secs(10));
    let gateway_log = log_of(&gateway);
    assert!(
        gateway_log.contains("stopping"),
        "the gateway did not stop gracefully:\n{gateway_log}"
    );
    assert!(
        !marker.exists(),
        "the stopped gateway left its marker:\n{gateway_log}"
    );
    assert!(pins.0.join(roamgate_ebpf::abi::maps::SA_TABLE).exists());
}

#[test]
fn control_gives_up_after_dataplane_wait_with_one_sentence_and_reminders() {
    let lab = must(Lab::new("readiness_gives_up"));
    let ns = must(Netns::new("ctl"));
    let pins = Pins::new("readiness-none");
    // Long enough for the reminder every 5 s to be logged once.
    let mut control = spawn_control(&lab, &ns, &pins, "5.5s");
    let exited = must(wait_for(
        "control to give up",
        Duration::from_secs(20),
        lab.logs(),
        || control.check_running().err(),
    ));
    let log = log_of(&control);
    assert_eq!(
        log.matches("waiting for the data plane").count(),
        2,
        "once at start, once 5 s later:\n{log}"
    );
    let error = log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line ({exited}):\n{log}"));
    for part in [
        pins.0.display().to_string(),
        pins.0.join(READY_MARKER).display().to_string(),
        "after 5.5s".to_string(),
        "--no-dataplane".to_string(),
    ] {
        assert!(error.contains(&part), "{part:?} missing in: {error}");
    }
}

#[test]
fn a_waiting_control_process_stops_on_sigterm() {
    let lab = must(Lab::new("readiness_sigterm"));
    let pins = Pins::new("readiness-sigterm");
    let ns = must(Netns::new("ctl"));
    let mut control = spawn_control(&lab, &ns, &pins, "60s");
    wait_until_waiting(&mut control, &lab);
    let pid = libc_pid(control.pid());
    // SAFETY: kill only sends SIGTERM to our own child, which is still running (checked by
    // wait_log) and has not been reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let exited = must(wait_for(
        "control to stop on SIGTERM",
        Duration::from_secs(5),
        lab.logs(),
        || control.check_running().err(),
    ));
    assert!(
        exited.to_string().contains("exit status: 0"),
        "a stop while waiting is not a failure: {exited}"
    );
    let log = log_of(&control);
    assert!(
        log.contains("stopped while waiting for the data plane"),
        "{log}"
    );
    assert!(!log.contains("error:"), "{log}");
}

fn libc_pid(pid: u32) -> libc::pid_t {
    libc::pid_t::try_from(pid).expect("a process id fits pid_t")
}
