//! `cargo xtask fuzz`: every cargo-fuzz target of the workspace, for a bounded time each.
//!
//! Fuzz crates live beside the crate they fuzz (`control/fuzz`, `gateway/fuzz`), each with its
//! own `[workspace]`. They run on the stable toolchain with `-s none` (the address sanitizer
//! needs nightly, which the build machines do not have; the fuzzed code has no `unsafe`).
//! Seeds in `fuzz/seeds/<target>/` are read, never written; the corpus grows in
//! `target/fuzz-corpus/`. A crash fails the run and leaves its input in `fuzz/artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// The crates that carry a `fuzz/` folder.
const FUZZED: &[&str] = &["control", "gateway", "ebpf"];

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
fn targets(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for krate in FUZZED {
        let dir = root.join(krate).join("fuzz").join("fuzz_targets");
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
        out.extend(names.into_iter().map(|n| (root.join(krate), n)));
    }
    out
}

/// Runs every fuzz target for `seconds`.
pub(crate) fn run(seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    let targets = targets(&root);
    if targets.is_empty() {
        bail!("no fuzz targets found under {FUZZED:?}/fuzz/fuzz_targets");
    }
    for (krate, target) in targets {
        let name = krate
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
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
            bail!(
                "fuzz target {name}/{target} failed ({status}): the crashing input is in {}/fuzz/artifacts/{target}/",
                krate.display()
            );
        }
    }
    Ok(())
}
