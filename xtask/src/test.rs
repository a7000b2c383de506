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
    let totals = cargo_test(&args)?;
    crate::fuzz::run(fuzz_seconds)?;
    // The last line of the run: every test binary's result, added up.
    println!(
        "summary: {} passed, {} failed",
        totals.passed, totals.failed
    );
    Ok(())
}

/// Tests counted over every `test result:` line of a `cargo test` run.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    passed: u64,
    failed: u64,
}

impl Totals {
    /// Adds a libtest closing line (`test result: ok. 8 passed; 0 failed; …`).
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
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
    }
}

/// Runs `cargo test …`, echoing its output, and adds up the results.
fn cargo_test(args: &[&str]) -> Result<Totals> {
    use std::io::BufRead;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("==> cargo {}", args.join(" "));
    let mut child = std::process::Command::new(&cargo)
        .args(args)
        .current_dir(crate::workspace_root())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut totals = Totals::default();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            totals.add_line(&line);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "`cargo {}` failed ({status}): {} passed, {} failed",
            args.join(" "),
            totals.passed,
            totals.failed
        );
    }
    if totals.passed == 0 {
        bail!("`cargo {}` ran no test", args.join(" "));
    }
    Ok(totals)
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
    fn result_lines_add_up() {
        let mut t = Totals::default();
        t.add_line("test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        t.add_line("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.5s");
        t.add_line("running 3 tests");
        assert_eq!(
            t,
            Totals {
                passed: 10,
                failed: 1
            }
        );
    }
}
