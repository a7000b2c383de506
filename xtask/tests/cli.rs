//! The tasks' answers to a machine that is not ready: one clear sentence, nothing left behind.

use std::process::Command;

/// Runs the xtask binary as the unprivileged user `nobody`.
fn as_nobody(args: &[&str]) -> std::process::Output {
    roamgate_lab::require_root().expect("this test drops from root to nobody; run it as root");
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("setpriv (util-linux) runs")
}

#[test]
fn tasks_that_need_root_say_so() {
    for (task, words) in [
        (&["test"][..], "`cargo xtask test` needs root"),
        (&["demo"][..], "`cargo xtask demo` needs root"),
        (&["bench"][..], "`cargo xtask bench` needs root"),
        (&["lab", "clean"][..], "the lab needs root"),
    ] {
        let out = as_nobody(task);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{task:?} succeeded as nobody");
        assert!(stderr.contains(words), "{task:?}: {stderr}");
        assert!(
            stderr.lines().filter(|l| !l.trim().is_empty()).count() <= 2,
            "{task:?} should answer in one sentence: {stderr}"
        );
    }
}

#[test]
fn deps_check_lists_nothing_missing_after_deps() {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["deps", "--check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`cargo xtask deps --check` found missing packages: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("are installed"), "{stdout}");
}

/// `cargo xtask` must build on a machine that has only the Rust toolchain and a C compiler,
/// so that `cargo xtask deps` can install the rest: it links none of the crates whose builds
/// need clang and libbpf (the XDP object) or anything else the project installs.
#[test]
fn xtask_links_nothing_that_needs_the_packages_it_installs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "-p",
            "xtask",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    for forbidden in [
        "roamgate-ebpf",
        "roamgate-gateway",
        "roamgate-control",
        "aya",
        "aws-lc-sys",
    ] {
        assert!(
            !tree
                .lines()
                .any(|l| l.starts_with(&format!("{forbidden} "))),
            "xtask depends on {forbidden}, whose build needs packages `cargo xtask deps` installs:\n{tree}"
        );
    }
}
