//! `cargo xtask fuzz`: every cargo-fuzz target of the workspace, for a bounded time each.
//!
//! Fuzz crates live beside the crate they fuzz (`control/fuzz`, `gateway/fuzz`), each with its
//! own `[workspace]`. They run on the stable toolchain with `-s none` (the address sanitizer
//! needs nightly, which the build machines do not have; the fuzzed code has no `unsafe`).
//! Seeds in `fuzz/seeds/<target>/` are read, never written; the corpus grows in
//! `target/fuzz-corpus/`. A target that does not build is a build failure; a crash fails the run
//! and leaves its input in `fuzz/artifacts/`; a fuzz crate's `Cargo.lock` that a build rewrites
//! is a failure too (the fuzz crates are also checked by fmt and `clippy --locked`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// The crates that carry a `fuzz/` folder.
const FUZZED: &[&str] = &["control", "gateway"];

/// The folders of the crates with a `fuzz/` crate beside their sources.
pub(crate) fn crates() -> Vec<PathBuf> {
    let root = workspace_root();
    FUZZED
        .iter()
        .map(|k| root.join(k))
        .filter(|k| k.join("fuzz/Cargo.toml").is_file())
        .collect()
}

/// A fuzzed crate's short name (its folder's).
pub(crate) fn name(krate: &Path) -> String {
    krate
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn cargo_fuzz_installed() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs cargo-fuzz from crates.io when it is missing.
fn ensure_cargo_fuzz() -> Result<()> {
    if cargo_fuzz_installed() {
        return Ok(());
    }
    println!("==> cargo install cargo-fuzz --locked");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("`cargo install cargo-fuzz --locked` failed ({status})");
    }
    Ok(())
}

/// Every (crate folder, target name) pair.
fn targets() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for krate in crates() {
        let dir = krate.join("fuzz").join("fuzz_targets");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_suffix(".rs").map(str::to_string)
            })
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| (krate.clone(), n)));
    }
    out
}

/// One fuzz target that did not pass.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The check's name (`fuzz control/decode_message`).
    pub(crate) check: String,
    /// Why: a build failure or a crash, with where the input is.
    pub(crate) reason: String,
}

/// Runs every fuzz target for `seconds`; a target that does not build is reported as a build
/// failure, one that crashes with the place of its input. Each fuzz crate's `Cargo.lock` must
/// be current (`--locked`): a run never rewrites it.
pub(crate) fn run(seconds: u64) -> Result<Vec<Failure>> {
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    let targets = targets();
    if targets.is_empty() {
        bail!("no fuzz targets found under {FUZZED:?}/fuzz/fuzz_targets");
    }
    let mut failures = Vec::new();
    for (krate, target) in targets {
        let name = name(&krate);
        let check = format!("fuzz {name}/{target}");
        // cargo fuzz has no --locked: the lock file is compared before and after instead.
        let lock = krate.join("fuzz/Cargo.lock");
        let lock_before = std::fs::read(&lock).ok();
        println!("==> cargo fuzz build -s none {target} ({name}/fuzz)");
        let status = Command::new("cargo")
            .current_dir(&krate)
            .args(["fuzz", "build", "-s", "none", &target])
            .status()
            .context("running cargo fuzz build")?;
        if !status.success() {
            failures.push(Failure {
                check,
                reason: format!("did not build ({status}); see the compiler's output above"),
            });
            continue;
        }
        if std::fs::read(&lock).ok() != lock_before {
            failures.push(Failure {
                check: format!("{check} (Cargo.lock)"),
                reason: format!(
                    "{} was stale: building rewrote it; commit the rewritten file",
                    lock.display()
                ),
            });
        }
        let corpus = root
            .join("target/fuzz-corpus")
            .join(format!("{name}-{target}"));
        std::fs::create_dir_all(&corpus)?;
        let seeds = krate.join("fuzz/seeds").join(&target);
        println!("==> fuzz {name}/{target} for {seconds} s");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&krate)
            .args(["fuzz", "run", "-s", "none", &target])
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-max_len=65536",
            "-print_final_stats=1",
        ]);
        let status = cmd.status().context("running cargo fuzz")?;
        if !status.success() {
            failures.push(Failure {
                check,
                reason: format!(
                    "crashed ({status}): the crashing input is in {}/fuzz/artifacts/{target}/",
                    krate.display()
                ),
            });
        }
    }
    Ok(failures)
}
