//! `cargo xtask test`: everything a change must pass, in the order that fails fastest.

use anyhow::{Result, bail};

use crate::{cargo, deps};

pub(crate) fn run(fuzz_seconds: u64, cargo_args: &[String]) -> Result<()> {
    if roamgate_lab::require_root().is_err() {
        bail!(
            "`cargo xtask test` needs root: the lab tests create network namespaces, attach XDP programs and run strongSwan; run it as root (e.g. `sudo -E cargo xtask test`)"
        );
    }
    deps::run(false)?;
    ensure_bpffs()?;
    for stale in roamgate_lab::netns::clean_stale(false) {
        println!("removed lab namespace {stale}, left behind by a killed run");
    }
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ])?;
    let mut args = vec!["test", "--workspace", "--locked"];
    if !cargo_args.is_empty() {
        args.push("--");
        args.extend(cargo_args.iter().map(String::as_str));
    }
    cargo(&args)?;
    crate::fuzz::run(fuzz_seconds)
}

/// Mounts bpffs at /sys/fs/bpf when it is not mounted (pinned maps live there).
pub(crate) fn ensure_bpffs() -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "))
    {
        return Ok(());
    }
    println!("==> mount -t bpf bpf /sys/fs/bpf");
    let status = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
        .status()?;
    if !status.success() {
        bail!(
            "bpffs is not mounted at /sys/fs/bpf and mounting it failed ({status}): mount it by hand with `mount -t bpf bpf /sys/fs/bpf`"
        );
    }
    Ok(())
}
