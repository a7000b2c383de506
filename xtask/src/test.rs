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
    warn_if_disk_is_short();
    ensure_bpffs()?;
    for stale in roamgate_lab::netns::clean_stale(false) {
        println!("removed lab namespace {stale}, left behind by a killed run");
    }
    // Every step runs even when an earlier one failed, so one run shows every failure.
    let mut failed_checks: Vec<String> = Vec::new();
    let mut check = |name: &str, result: Result<()>| {
        if let Err(e) = result {
            println!("FAILED: {name}: {e:#}");
            failed_checks.push(name.to_string());
        }
    };
    check(
        "cargo fmt --check",
        cargo(&["fmt", "--all", "--", "--check"]),
    );
    check(
        "cargo clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    );
    for krate in crate::fuzz::crates() {
        let manifest = krate.join("fuzz/Cargo.toml");
        let manifest = manifest.to_string_lossy();
        let name = crate::fuzz::name(&krate);
        check(
            &format!("cargo fmt --check ({name}/fuzz)"),
            cargo(&["fmt", "--manifest-path", &manifest, "--", "--check"]),
        );
        check(
            &format!("cargo clippy ({name}/fuzz)"),
            cargo(&[
                "clippy",
                "--manifest-path",
                &manifest,
                "--locked",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        );
    }
    let mut args = vec!["test", "--workspace", "--locked", "--no-fail-fast"];
    if !cargo_args.is_empty() {
        args.push("--");
        args.extend(cargo_args.iter().map(String::as_str));
    }
    let totals = cargo_test(&args)?;
    let regressions = print_proptest_regressions();
    if totals.passed == 0 && totals.failed == 0 {
        check(
            "cargo test",
            Err(anyhow::anyhow!("`cargo {}` ran no test", args.join(" "))),
        );
    }
    for failure in crate::fuzz::run(fuzz_seconds)? {
        check(&failure.check, Err(anyhow::anyhow!("{}", failure.reason)));
    }
    let failed = totals.failed + failed_checks.len() as u64;
    if failed > 0 {
        println!();
        for name in &totals.failed_tests {
            println!("failed test: {name}");
        }
        for target in &totals.crashed {
            println!("failed test binary (no result line; it crashed or did not build): {target}");
        }
        for name in &failed_checks {
            println!("failed check: {name}");
        }
        if regressions > 0 {
            println!(
                "proptest saved {regressions} failing seed(s) under proptest-regressions/ (printed above)"
            );
        }
    }
    // The last line of the run: every test binary's result, added up, and the checks that
    // failed.
    println!("summary: {} passed, {failed} failed", totals.passed);
    if failed > 0 {
        bail!("{failed} failed (see the list above)");
    }
    Ok(())
}

/// What a `cargo test` run reported.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    passed: u64,
    /// Failed tests, and one per test binary that ended without a result line.
    failed: u64,
    /// `test NAME ... FAILED` lines, as `binary: NAME`.
    failed_tests: Vec<String>,
    /// Test binaries cargo reports as failed that printed no result line (a crash, an abort,
    /// a build failure).
    crashed: Vec<String>,
    /// The test binary running now, and whether it printed its result line.
    current: Option<(String, bool)>,
}

impl Totals {
    /// Takes one line of `cargo test`'s output (standard output and error in order).
    fn add_line(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Running ") {
            // `Running tests/foo.rs (target/debug/deps/foo-0123)` or `Running unittests …`.
            let name = rest.split(" (").next().unwrap_or(rest).to_string();
            self.current = Some((name, false));
        } else if let Some(rest) = line.strip_prefix("Doc-tests ") {
            self.current = Some((format!("doc-tests {rest}"), false));
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            let binary = self.current.as_ref().map_or("?", |(b, _)| b.as_str());
            self.failed_tests.push(format!("{binary}: {name}"));
        } else if let Some(rest) = line.strip_prefix("test result: ") {
            if let Some((_, seen)) = &mut self.current {
                *seen = true;
            }
            for part in rest.split([';', '.']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next())
                    && let Ok(n) = n.parse::<u64>()
                {
                    match what {
                        "passed" => self.passed += n,
                        "failed" => self.failed += n,
                        _ => {}
                    }
                }
            }
        } else if line.contains("test failed, to rerun pass")
            && let Some((binary, false)) = &self.current
        {
            // The binary failed without a result line: it crashed or was killed.
            self.crashed.push(binary.clone());
            self.failed += 1;
            self.current = None;
        }
    }
}

/// Runs `cargo test …`, echoing its output (standard error folded into standard output, so
/// each result follows its binary), and adds up the results. A failing run is reported in the
/// totals, not as an error.
fn cargo_test(args: &[&str]) -> Result<Totals> {
    use std::io::BufRead;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("==> cargo {}", args.join(" "));
    let (reader, writer) = std::io::pipe()?;
    let mut command = std::process::Command::new(&cargo);
    command
        .args(args)
        .current_dir(crate::workspace_root())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut child = command.spawn()?;
    // The parent's copies of the pipe's writing end must be gone for EOF to come.
    drop(command);
    let mut totals = Totals::default();
    for line in std::io::BufReader::new(reader).lines() {
        let line = line?;
        println!("{line}");
        totals.add_line(&line);
    }
    let status = child.wait()?;
    if !status.success() && totals.failed == 0 {
        // cargo failed before or around the tests (a build error): one failure, named.
        totals.failed = 1;
        totals
            .crashed
            .push(format!("`cargo {}` ({status})", args.join(" ")));
    }
    Ok(totals)
}

/// Prints every proptest regression file in the workspace (each holds the seeds of failing
/// cases, `cc <seed>`), so a failure in CI can be replayed elsewhere; returns how many seeds
/// there are. proptest writes them next to the failing test's source
/// (`proptest-regressions/…`).
fn print_proptest_regressions() -> usize {
    let mut seeds = 0;
    let mut stack = vec![crate::workspace_root()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
            } else if path
                .parent()
                .is_some_and(|p| p.ends_with("proptest-regressions"))
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("cc ")).collect();
                if !lines.is_empty() {
                    println!("proptest seeds in {}:", path.display());
                    for l in &lines {
                        println!("  {l}");
                    }
                    seeds += lines.len();
                }
            }
        }
    }
    seeds
}

/// Disk a whole run writes into the target directory (test, clippy, release and fuzz
/// builds), measured from a fresh clone, with room to spare.
const DISK_NEEDED: u64 = 8 << 30;

/// Says so, before any build, when the target directory's filesystem has less room than
/// a whole run writes: a full disk otherwise shows up later as a linker crash.
fn warn_if_disk_is_short() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    // The target directory may not exist yet; its nearest existing ancestor is on the
    // filesystem it will be made on.
    let Some(dir) = target.ancestors().find(|d| d.exists()) else {
        return;
    };
    let Some(free) = free_bytes(dir) else {
        println!(
            "warning: could not read the free disk space of {}",
            dir.display()
        );
        return;
    };
    println!(
        "==> {:.1} GiB free for {}",
        free as f64 / f64::from(1 << 30),
        target.display()
    );
    if free < DISK_NEEDED {
        println!(
            "warning: a whole test run writes up to {} GiB into {}; builds may fail with \"No space left on device\" (free space, or point CARGO_TARGET_DIR elsewhere)",
            DISK_NEEDED >> 30,
            target.display()
        );
    }
}

/// Bytes available to this user on the filesystem holding `dir`, as `df` reports them.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .ok()?;
    parse_df_avail(&String::from_utf8_lossy(&out.stdout))
}

/// The number under `df --output=avail`'s header.
fn parse_df_avail(text: &str) -> Option<u64> {
    text.lines().nth(1)?.trim().parse().ok()
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

#[cfg(test)]
mod tests {
    use super::{Totals, parse_df_avail};

    #[test]
    fn df_avail_is_the_number_under_the_header() {
        assert_eq!(
            parse_df_avail("    Avail\n38654705664\n"),
            Some(38_654_705_664)
        );
        assert_eq!(parse_df_avail("    Avail\n"), None);
        assert_eq!(
            parse_df_avail("df: /nope: No such file or directory\n"),
            None
        );
    }

    #[test]
    fn result_lines_add_up_and_failures_are_named() {
        let mut t = Totals::default();
        for line in [
            "     Running unittests src/lib.rs (target/debug/deps/a-0123)",
            "test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
            "     Running tests/b.rs (target/debug/deps/b-4567)",
            "test x::y ... FAILED",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.5s",
            "error: test failed, to rerun pass `-p b --test b`",
            "     Running tests/c.rs (target/debug/deps/c-89ab)",
            "running 3 tests",
            "error: test failed, to rerun pass `-p c --test c`",
        ] {
            t.add_line(line);
        }
        assert_eq!((t.passed, t.failed), (10, 2));
        assert_eq!(t.failed_tests, ["tests/b.rs: x::y"]);
        assert_eq!(t.crashed, ["tests/c.rs"]);
    }
}
