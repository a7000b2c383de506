//! The loader on the real kernel: pinned maps shared between loads, refusal of pinned maps of
//! another layout, the sentences for a missing bpffs and a missing privilege, and attaching
//! with the fallback from native to generic XDP.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use roamgate_ebpf::abi::{Counter, SpiValue};
use roamgate_ebpf::{AttachMode, Classifier, EbpfError, XdpAction};
use roamgate_lab::Netns;
use support::frames::*;

fn esp_frame(spi: u32) -> Vec<u8> {
    eth(
        ETH_P_IP,
        &V4::new(
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
            IPPROTO_ESP,
        )
        .packet(&esp(spi, 1, &esp_body(32))),
    )
}

#[test]
fn a_second_load_shares_the_pinned_maps() {
    let (mut first, dir) = support::classifier("share");
    for map in roamgate_ebpf::abi::MAPS {
        assert!(
            dir.path().join(map.name).exists(),
            "{} is not pinned",
            map.name
        );
    }
    first
        .add_local_addr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        .unwrap();
    first.insert_spi(0x4242, SpiValue::new(5, 0)).unwrap();

    // As the control process would: load again from the same directory.
    let second = Classifier::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.spi(0x4242).unwrap(), Some(SpiValue::new(5, 0)));
    // The second program reads the maps the first one wrote, and counts in the same counters.
    assert_eq!(
        second.test_run(&esp_frame(0x4242)).unwrap(),
        XdpAction::Pass
    );
    assert_eq!(
        second.test_run(&esp_frame(0x4343)).unwrap(),
        XdpAction::Drop
    );
    let counters = first.counters().unwrap();
    assert_eq!(counters.get(Counter::EspNoXsk), 1);
    assert_eq!(counters.get(Counter::EspUnknownSpi), 1);

    // Dropping both leaves the maps pinned, with their contents.
    drop(first);
    drop(second);
    let third = Classifier::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(third.spi(0x4242).unwrap(), Some(SpiValue::new(5, 0)));
    assert_eq!(third.counters().unwrap().get(Counter::Esp), 2);
}

#[test]
fn a_pinned_map_of_another_layout_is_refused_with_a_clear_sentence() {
    support::require_root();
    let dir = support::PinDir::new("compat");
    std::fs::create_dir_all(dir.path()).unwrap();
    // An spi_index with 4-byte values, as an older or newer build might have left it.
    let pin = dir.path().join("spi_index");
    roamgate_lab::cmd::require("bpftool").unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new("bpftool")
        .args(["map", "create"])
        .arg(&pin)
        .args([
            "type",
            "hash",
            "key",
            "4",
            "value",
            "4",
            "entries",
            "16",
            "name",
            "spi_index",
        ])
        .output()
        .expect("bpftool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let err = Classifier::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, EbpfError::IncompatiblePinnedMap { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("value size 4, expected 8"), "{text}");
    assert!(text.contains("max_entries 16, expected 131072"), "{text}");
    assert!(text.contains("remove"), "{text}");
}

/// Runs `f` on a fresh thread (its own mount namespace or credentials die with it).
fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[test]
fn a_missing_bpffs_gives_the_mount_command() {
    support::require_root();
    let err = on_own_thread(|| {
        // A private mount namespace for this thread only, where /sys/fs/bpf is unmounted.
        // SAFETY: unshare only affects the calling thread, which ends with this closure.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
        assert_eq!(rc, 0, "unshare(CLONE_NEWNS)");
        // Make every mount private first, so the unmount below cannot propagate outside.
        // SAFETY: the arguments are valid NUL-terminated strings or null, as mount(2) allows.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "making the mount namespace private");
        // bpffs may be mounted more than once over the same directory.
        // SAFETY: a valid NUL-terminated path; the thread's namespace is private.
        while unsafe { libc::umount2(c"/sys/fs/bpf".as_ptr(), libc::MNT_DETACH) } == 0 {}
        Classifier::load(Path::new("/sys/fs/bpf/roamgate-test/unmounted")).unwrap_err()
    });
    assert!(matches!(err, EbpfError::BpffsNotMounted), "{err}");
    assert_eq!(
        err.to_string(),
        "bpffs is not mounted at /sys/fs/bpf: run `mount -t bpf bpf /sys/fs/bpf` (or `cargo xtask test`, which mounts it)"
    );
}

#[test]
fn without_root_the_error_says_to_run_as_root() {
    support::require_root();
    let err = on_own_thread(|| {
        // Drop to nobody for this thread only (the raw syscall, unlike libc's setresuid,
        // does not change the other threads); the thread's capabilities go with it.
        // SAFETY: setresuid has no memory preconditions; it affects this thread alone.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid");
        Classifier::load(Path::new("/sys/fs/bpf/roamgate-test/unprivileged")).unwrap_err()
    });
    assert!(matches!(err, EbpfError::NotRoot { .. }), "{err}");
    assert!(err.to_string().contains("run it as root"), "{err}");
}

#[test]
fn attach_falls_back_to_generic_where_there_is_no_native_xdp_and_detaches() {
    let (mut classifier, _dir) = support::classifier("attach");
    let ns = Netns::new("att").unwrap_or_else(|e| panic!("{e}"));
    // lo has no native XDP: the driver-mode request falls back to generic.
    let mode = ns
        .enter(|| classifier.attach("lo", AttachMode::Driver))
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mode, AttachMode::Generic);
    let link = ns.ip(&["-d", "link", "show", "lo"]).unwrap();
    assert!(link.contains("xdpgeneric"), "{link}");

    let again = ns
        .enter(|| classifier.attach("lo", AttachMode::Generic))
        .unwrap();
    assert!(
        matches!(again, Err(EbpfError::AlreadyAttached { .. })),
        "{again:?}"
    );
    let unknown = ns
        .enter(|| classifier.attach("nosuchif0", AttachMode::Driver))
        .unwrap();
    assert!(
        matches!(unknown, Err(EbpfError::UnknownInterface { .. })),
        "{unknown:?}"
    );

    ns.enter(|| classifier.detach("lo")).unwrap().unwrap();
    let link = ns.ip(&["-d", "link", "show", "lo"]).unwrap();
    assert!(!link.contains("xdp"), "{link}");
    let twice = ns.enter(|| classifier.detach("lo")).unwrap();
    assert!(
        matches!(twice, Err(EbpfError::NotAttached { .. })),
        "{twice:?}"
    );

    // Dropping the classifier detaches what is still attached.
    ns.enter(|| classifier.attach("lo", AttachMode::Generic))
        .unwrap()
        .unwrap();
    drop(classifier);
    let link = ns.ip(&["-d", "link", "show", "lo"]).unwrap();
    assert!(!link.contains("xdp"), "{link}");
}

#[test]
fn the_readiness_marker_is_pinned_only_when_published_and_removed_with_the_pins() {
    let (mut classifier, dir) = support::classifier("ready");
    let marker_path = roamgate_ebpf::ready_path(dir.path());
    assert_eq!(
        marker_path,
        dir.path().join(roamgate_ebpf::abi::maps::GATEWAY_READY)
    );
    // Loading pins every other map, never the marker.
    assert!(!marker_path.exists(), "the load pinned the marker");
    assert_eq!(roamgate_ebpf::read_ready(dir.path()).unwrap(), None);

    let mut marker = classifier.ready_marker().unwrap();
    assert!(
        classifier.ready_marker().is_err(),
        "a second marker from the same load"
    );
    assert!(!marker.is_published());
    let record = marker.publish(3).unwrap();
    assert!(marker_path.exists());
    assert_eq!(
        record,
        roamgate_ebpf::abi::GatewayReady {
            abi_version: roamgate_ebpf::abi::ABI_VERSION,
            pid: std::process::id(),
            workers: 3,
            pad: 0,
        }
    );
    // Another process's view: the record as written.
    assert_eq!(roamgate_ebpf::read_ready(dir.path()).unwrap(), Some(record));

    // A second gateway of the instance cannot pin its own over it.
    let mut second = Classifier::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let err = second.ready_marker().unwrap().publish(1).unwrap_err();
    assert!(matches!(err, EbpfError::Ready { .. }), "{err}");
    assert!(err.to_string().contains("already pinned"), "{err}");
    assert_eq!(
        roamgate_ebpf::read_ready(dir.path()).unwrap(),
        Some(record),
        "the failed publish left the first marker alone"
    );

    assert!(marker.withdraw().unwrap());
    assert!(!marker.withdraw().unwrap(), "withdrawing twice");
    assert!(!marker_path.exists());
    assert_eq!(roamgate_ebpf::read_ready(dir.path()).unwrap(), None);

    // A marker left behind (the process died) is removed by the next start, and by unpin.
    marker.publish(2).unwrap();
    std::mem::forget(marker);
    assert!(roamgate_ebpf::remove_stale_ready(dir.path()).unwrap());
    assert!(!marker_path.exists());
    assert!(!roamgate_ebpf::remove_stale_ready(dir.path()).unwrap());
    let mut third = classifier_marker(dir.path());
    third.publish(1).unwrap();
    std::mem::forget(third);
    roamgate_ebpf::remove_pins(dir.path()).unwrap();
    assert!(!marker_path.exists(), "remove_pins left the marker");
    assert!(!dir.path().exists(), "remove_pins left the directory");
}

/// A fresh classifier's readiness marker for `pin_dir` (its classifier is dropped: the marker
/// keeps the map).
fn classifier_marker(pin_dir: &Path) -> roamgate_ebpf::ReadyMarker {
    let mut c = Classifier::load(pin_dir).unwrap_or_else(|e| panic!("{e}"));
    c.ready_marker().unwrap()
}

#[test]
fn dropping_a_published_marker_unpins_it() {
    let (mut classifier, dir) = support::classifier("ready-drop");
    let marker = {
        let mut m = classifier.ready_marker().unwrap();
        m.publish(1).unwrap();
        m
    };
    assert!(roamgate_ebpf::read_ready(dir.path()).unwrap().is_some());
    drop(marker);
    assert_eq!(roamgate_ebpf::read_ready(dir.path()).unwrap(), None);
}
