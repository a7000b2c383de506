//! `cargo xtask bench`: runs the benchmarks in benches/.

use anyhow::Result;

use crate::cargo_env;

pub(crate) fn run(runs: usize) -> Result<()> {
    if roamgate_lab::require_root().is_err() {
        anyhow::bail!("`cargo xtask bench` needs root (the lab benchmarks use namespaces)");
    }
    crate::deps::run(false)?;
    crate::test::ensure_bpffs()?;
    cargo_env(
        &["bench", "--locked", "-p", "roamgate-benches"],
        &[("ROAMGATE_BENCH_RUNS", &runs.to_string())],
    )
}
