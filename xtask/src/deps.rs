//! `cargo xtask deps`: the Debian packages the build, the demo and the tests need.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Every Debian package the project needs, with what it is for.
pub(crate) const PACKAGES: &[(&str, &str)] = &[
    ("clang", "compiles the XDP programs (ebpf/build.rs)"),
    ("llvm", "BPF object tools"),
    ("libbpf-dev", "BPF helper headers for the XDP programs"),
    ("linux-libc-dev", "kernel UAPI headers"),
    ("gcc", "host C for the map ABI check"),
    ("g++", "libFuzzer, built by the fuzz targets"),
    (
        "iproute2",
        "namespaces, veth, bridges, XDP attach in the lab",
    ),
    ("nftables", "the lab's NAT and silent path cuts"),
    ("strongswan-charon", "the real IKEv2 peer"),
    ("strongswan-swanctl", "drives the peer"),
    (
        "strongswan-pki",
        "makes the lab's certificates for IKEv2 certificate authentication",
    ),
    (
        "libcharon-extra-plugins",
        "kernel-libipsec: userspace ESP for the peer",
    ),
    ("iperf3", "throughput in the lab"),
    (
        "ethtool",
        "turns off checksum offload on lab hosts behind the AF_XDP gateway",
    ),
    ("tshark", "dissects IKEv2 and ESP captures"),
    ("iputils-ping", "reachability in the lab"),
    ("prometheus", "scrapes the metrics in the demo and tests"),
    ("util-linux", "unshare, mount"),
    ("procps", "process tools"),
];

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The packages not installed yet.
pub(crate) fn missing() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect()
}

/// Installs what is missing (idempotent: nothing to do is a no-op).
pub(crate) fn run(check_only: bool) -> Result<()> {
    if which("dpkg-query").is_none() || which("apt-get").is_none() {
        bail!(
            "this machine has no dpkg/apt-get: install the packages listed in docs/lab.md by hand"
        );
    }
    let missing = missing();
    if missing.is_empty() {
        println!("deps: all {} Debian packages are installed", PACKAGES.len());
        return Ok(());
    }
    println!("deps: missing {}", missing.join(" "));
    if check_only {
        bail!(
            "{} Debian packages are missing: run `cargo xtask deps` as root",
            missing.len()
        );
    }
    if !is_root() {
        bail!(
            "{} Debian packages are missing ({}) and installing them needs root: run `sudo -E cargo xtask deps`",
            missing.len(),
            missing.join(" ")
        );
    }
    let status = Command::new("apt-get")
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get update")?;
    if !status.success() {
        bail!("`apt-get update` failed ({status}); check the machine's Debian sources");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !status.success() {
        bail!("`apt-get install {}` failed ({status})", missing.join(" "));
    }
    let still = self::missing();
    if !still.is_empty() {
        bail!("still missing after apt-get: {}", still.join(" "));
    }
    println!("deps: installed {}", missing.join(" "));
    Ok(())
}

/// The full path of `program` on PATH.
pub(crate) fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
