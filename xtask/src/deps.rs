//! `cargo xtask deps`: installs the Debian packages the build, the demo, the tests and the
//! benchmarks need. The list is `roamgate_lab::packages::PACKAGES` (documented in docs/lab.md).
//!
//! `ROAMGATE_DEPS_OMIT=pkg[,pkg…]` leaves packages out, to show what fails without them
//! (`cargo xtask fresh --omit PKG` sets it inside a clean root).

use std::process::Command;

use anyhow::{Context, Result, bail};
use roamgate_lab::packages::{self, Package};

/// The environment variable naming packages to leave out.
pub(crate) const OMIT_ENV: &str = "ROAMGATE_DEPS_OMIT";

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    roamgate_lab::require_root().is_ok()
}

/// The packages to install: every listed one but those named in [`OMIT_ENV`].
fn wanted() -> Vec<&'static Package> {
    let omit = std::env::var(OMIT_ENV).unwrap_or_default();
    let omit: Vec<&str> = omit
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for name in &omit {
        if !packages::PACKAGES.iter().any(|p| p.name == *name) {
            println!("deps: warning: {OMIT_ENV} names {name}, which is not in the package list");
        } else {
            println!("deps: leaving out {name} ({OMIT_ENV})");
        }
    }
    packages::without(&omit).collect()
}

/// The wanted packages not installed yet.
fn missing(wanted: &[&'static Package]) -> Vec<&'static str> {
    wanted
        .iter()
        .map(|p| p.name)
        .filter(|p| !installed(p))
        .collect()
}

/// Runs `apt-get args…` non-interactively, failing with the command line.
pub(crate) fn apt_get(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .with_context(|| format!("running apt-get {}", args.join(" ")))?;
    if !status.success() {
        bail!(
            "`apt-get {}` failed ({status}); check the machine's Debian sources",
            args.join(" ")
        );
    }
    Ok(())
}

/// Installs those of `names` that are missing (as root); `what` is the command that needs
/// them, named in the error when this process is not root.
pub(crate) fn install(names: &[&str], what: &str) -> Result<()> {
    let missing: Vec<&str> = names.iter().copied().filter(|p| !installed(p)).collect();
    install_missing(&missing, what)
}

/// Installs `missing`, packages known not to be installed.
fn install_missing(missing: &[&str], what: &str) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{what} needs the Debian packages {} and installing them needs root: run {what} as root",
            missing.join(" ")
        );
    }
    println!("==> apt-get install {} ({what})", missing.join(" "));
    apt_get(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing);
    apt_get(&args)?;
    let still: Vec<&str> = missing.iter().copied().filter(|p| !installed(p)).collect();
    if !still.is_empty() {
        bail!("still missing after apt-get: {}", still.join(" "));
    }
    Ok(())
}

/// Installs what is missing (idempotent: nothing to do is a no-op); with `check_only`, only
/// says what is missing and fails if anything is.
pub(crate) fn run(check_only: bool) -> Result<()> {
    if !roamgate_lab::cmd::have("dpkg-query") || !roamgate_lab::cmd::have("apt-get") {
        bail!(
            "this machine has no dpkg/apt-get: install the packages listed in docs/lab.md by hand"
        );
    }
    let wanted = wanted();
    let missing = missing(&wanted);
    if missing.is_empty() {
        println!("deps: all {} Debian packages are installed", wanted.len());
        return Ok(());
    }
    println!("deps: missing {}", missing.join(" "));
    if check_only {
        bail!(
            "{} Debian packages are missing ({}): run `cargo xtask deps` as root",
            missing.len(),
            missing.join(" ")
        );
    }
    install_missing(&missing, "`cargo xtask deps`")?;
    println!("deps: installed {}", missing.join(" "));
    Ok(())
}
