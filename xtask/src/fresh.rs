//! `cargo xtask fresh`: the README's commands on a fresh machine of this kind, made here.
//!
//! A new machine has a Debian 12 base, the Rust toolchain (rustup), and a few packages
//! ([`NEW_MACHINE`]); everything else the project needs, its own commands must install. This
//! task makes such a machine as a root directory and runs commands in it as root:
//!
//! 1. **The pristine root** is made once with debootstrap (minbase plus [`NEW_MACHINE`]) and
//!    cached under [`CACHE`], keyed by the suite, the mirror and the package list; it is never
//!    written to afterwards.
//! 2. **Each run** gets its own overlay on it (upper layer under [`RUNS`], removed after the
//!    run), in a private mount namespace of this process: proc, a fresh sysfs, bpffs, `/dev`,
//!    tmpfs `/run` and `/tmp`, as a booted machine has them. The machine's apt sources, DNS
//!    and CA certificates are copied in (a new machine has them; the package registries are
//!    reached through them); the Rust toolchain (`~/.rustup`) is bind-mounted read-only and
//!    `~/.cargo` starts with the toolchain's proxies only (no registry cache, no installed
//!    tools). The repository is cloned in at `HEAD` (uncommitted changes are not part of it).
//! 3. **The commands** (by default the README's two, `cargo xtask demo` then
//!    `cargo xtask test`) run inside with `chroot`, each timed; the first that fails ends the
//!    run with its exit status.
//!
//! Network namespaces, XDP, AF_XDP, bpffs and strongSwan work inside as outside: the root is
//! a mount point (`ip netns` needs that) and the kernel is the machine's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::deps;

/// The Debian release a new machine of this kind runs.
const SUITE: &str = "bookworm";

/// What a new machine of this kind has besides Debian's minbase and the Rust toolchain
/// (DESIGN.md, "Names the issues fix").
pub(crate) const NEW_MACHINE: &[&str] = &[
    "gcc",
    "g++",
    "make",
    "git",
    "python3",
    "iproute2",
    "llvm",
    "openssl",
    "curl",
    "ca-certificates",
    "procps",
    "util-linux",
];

/// Where pristine roots are kept between runs.
const CACHE: &str = "/var/cache/roamgate/fresh";

/// Where each run's overlay lives while it runs.
const RUNS: &str = "/var/tmp/roamgate-fresh";

/// The repository's place inside the root.
const CHECKOUT: &str = "/root/roamgate";

/// The README's two commands, in the order a new user runs them.
const README_COMMANDS: &[&str] = &["cargo xtask demo", "cargo xtask test"];

/// What `cargo xtask fresh` was asked to do.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Leave this package out of `cargo xtask deps` inside the root (repeatable), to see the
    /// run fail without it.
    #[arg(long = "omit", value_name = "PACKAGE")]
    omit: Vec<String>,
    /// Keep the run's overlay (the root as the commands left it) instead of removing it.
    #[arg(long)]
    keep: bool,
    /// Make the pristine root again even if one is cached.
    #[arg(long)]
    rebuild: bool,
    /// The command to run inside, as one shell line after `--` (default: the README's two
    /// commands, one after the other).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    if roamgate_lab::require_root().is_err() {
        bail!(
            "`cargo xtask fresh` needs root (debootstrap, mounts, then the README's commands as root): run it as root"
        );
    }
    deps::install(&["debootstrap"], "`cargo xtask fresh`")?;
    let commands: Vec<String> = if args.command.is_empty() {
        README_COMMANDS.iter().map(|c| c.to_string()).collect()
    } else {
        vec![args.command.join(" ")]
    };
    let repo = crate::workspace_root();
    let head = git(&repo, &["rev-parse", "--short", "HEAD"])?;
    if !git(&repo, &["status", "--porcelain", "--untracked-files=no"])?.is_empty() {
        println!(
            "fresh: warning: the work tree has uncommitted changes; the fresh root gets HEAD ({head}) only"
        );
    }
    let mirror = mirror()?;
    let pristine = pristine_root(&mirror, args.rebuild)?;
    clean_stale_runs();

    let run_dir = PathBuf::from(RUNS).join(std::process::id().to_string());
    let result = in_private_mounts(|| {
        let root = mount_overlay(&pristine, &run_dir)?;
        prepare(&root, &repo)?;
        let mut timings = Vec::new();
        let mut summary = None;
        for command in &commands {
            println!("\nfresh: running `{command}` in the fresh root (HEAD {head})");
            let start = Instant::now();
            let outcome = run_inside(&root, command, &args.omit, &mut summary)?;
            let took = start.elapsed().as_secs_f64();
            timings.push(format!(
                "fresh: `{command}` {} in {took:.0} s",
                if outcome { "passed" } else { "FAILED" }
            ));
            if !outcome {
                break;
            }
        }
        println!();
        for line in &timings {
            println!("{line}");
        }
        // The test runner's closing line stays the last line of the run.
        if let Some(line) = &summary {
            println!("{line}");
        }
        ensure!(
            timings.len() == commands.len() && timings.iter().all(|t| t.contains(" passed ")),
            "a command failed in the fresh root (see its output above)"
        );
        Ok(())
    });
    // Detach the root and everything on it (/dev is the machine's own, bound in) before any
    // file under the run's folder is removed.
    let root = run_dir.join("root");
    let _ = roamgate_lab::cmd::run("umount", &["-R", "-l", &root.to_string_lossy()]);
    if args.keep {
        println!(
            "fresh: the run's upper layer is kept in {}",
            run_dir.display()
        );
    } else if mounted_under(&run_dir) {
        println!(
            "fresh: warning: something is still mounted under {}; not removing it",
            run_dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    result
}

/// Whether any mount point of this process's mount namespace lies under `dir`.
fn mounted_under(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .any(|mount_point| Path::new(mount_point).starts_with(dir))
}

/// `git args…` in `repo`, its trimmed standard output.
fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .context("running git")?;
    ensure!(
        out.status.success(),
        "`git {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The Debian mirror this machine's apt uses for [`SUITE`], read from its sources (deb822
/// `.sources` files or one-line `.list` files), so the fresh root reaches the registry the
/// same way the machine does.
fn mirror() -> Result<String> {
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let name = path.to_string_lossy();
            if (name.ends_with(".sources") || name.ends_with(".list"))
                && let Ok(t) = std::fs::read_to_string(&path)
            {
                texts.push(t);
            }
        }
    }
    texts.iter().find_map(|t| mirror_in(t)).context(
        "no Debian source for bookworm in /etc/apt/sources.list{,.d}: debootstrap needs a mirror",
    )
}

/// The first mirror serving [`SUITE`] in one sources file.
fn mirror_in(text: &str) -> Option<String> {
    // One-line format: `deb [options] URI SUITE COMPONENTS…`.
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            // Options run to the word that closes the bracket.
            let close = rest.iter().position(|w| w.ends_with(']'))?;
            rest.drain(..=close);
        }
        if rest.get(1) == Some(&SUITE) {
            return rest.first().map(|u| u.to_string());
        }
    }
    // deb822: stanzas separated by blank lines with `Types:`, `URIs:`, `Suites:`.
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let enabled = field("Enabled:").is_none_or(|v| v != "no");
        if enabled
            && field("Types:").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
            && field("Suites:").is_some_and(|s| s.split_whitespace().any(|s| s == SUITE))
            && let Some(uris) = field("URIs:")
        {
            return uris.split_whitespace().next().map(str::to_string);
        }
    }
    None
}

/// The cached pristine root for `mirror`, made with debootstrap when missing (or asked to).
fn pristine_root(mirror: &str, rebuild: bool) -> Result<PathBuf> {
    let key = cache_key(mirror);
    let dir = PathBuf::from(CACHE).join(format!("{SUITE}-{key:016x}"));
    if dir.join("etc/debian_version").exists() && !rebuild {
        println!("fresh: pristine root {} (cached)", dir.display());
        return Ok(dir);
    }
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(CACHE).with_context(|| format!("creating {CACHE}"))?;
    println!(
        "fresh: making the pristine root with debootstrap ({SUITE} minbase + {})",
        NEW_MACHINE.join(" ")
    );
    let start = Instant::now();
    let log = PathBuf::from(CACHE).join("debootstrap.log");
    let status = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={}", NEW_MACHINE.join(",")),
        ])
        .arg(SUITE)
        .arg(&partial)
        .arg(mirror)
        .stdout(std::fs::File::create(&log)?)
        .stderr(Stdio::inherit())
        .status()
        .context("running debootstrap")?;
    if !status.success() {
        bail!(
            "debootstrap failed ({status}); its log is {} (the machine's apt sources give the mirror {mirror})",
            log.display()
        );
    }
    std::fs::rename(&partial, &dir)?;
    println!(
        "fresh: pristine root made in {:.0} s: {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(dir)
}

/// A stable hash of what the pristine root is made from (FNV-1a: no dependency, stable
/// across builds, unlike `DefaultHasher`).
fn cache_key(mirror: &str) -> u64 {
    let text = format!("{SUITE}\n{mirror}\n{}", NEW_MACHINE.join(","));
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Removes the overlays of runs whose process is gone (a killed run leaves its upper layer).
fn clean_stale_runs() {
    let Ok(dir) = std::fs::read_dir(RUNS) else {
        return;
    };
    for entry in dir.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        let alive = name
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            println!(
                "fresh: removing {} (left by a killed run)",
                entry.path().display()
            );
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs `f` in a private mount namespace of this process: every mount made in it is gone
/// when the process ends, and none reaches the machine's.
fn in_private_mounts<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    // SAFETY: unshare takes flags only; this process is single-threaded here (xtask starts no
    // threads), and only its own mount namespace changes.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    if rc != 0 {
        bail!(
            "unshare(CLONE_NEWNS) failed: {}",
            std::io::Error::last_os_error()
        );
    }
    mount(&["--make-rprivate", "/"])?;
    f()
}

/// `mount args…`, failing with the command line.
fn mount(args: &[&str]) -> Result<()> {
    roamgate_lab::cmd::run("mount", args)
        .map(drop)
        .map_err(anyhow::Error::from)
}

/// The run's root: an overlay with `pristine` below and the run's own upper layer on top.
fn mount_overlay(pristine: &Path, run_dir: &Path) -> Result<PathBuf> {
    let (upper, work, root) = (
        run_dir.join("upper"),
        run_dir.join("work"),
        run_dir.join("root"),
    );
    for d in [&upper, &work, &root] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        pristine.display(),
        upper.display(),
        work.display()
    );
    mount(&[
        "-t",
        "overlay",
        "overlay",
        "-o",
        &options,
        &root.to_string_lossy(),
    ])?;
    Ok(root)
}

/// Mounts what a booted machine has, copies in what a new machine of this kind has besides
/// its packages, and clones the repository.
fn prepare(root: &Path, repo: &Path) -> Result<()> {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let path = |p: &str| at(p).to_string_lossy().into_owned();
    mount(&["-t", "proc", "proc", &path("/proc")])?;
    mount(&["-t", "sysfs", "sysfs", &path("/sys")])?;
    mount(&["-t", "bpf", "bpf", &path("/sys/fs/bpf")])?;
    mount(&["--rbind", "/dev", &path("/dev")])?;
    mount(&["--make-rslave", &path("/dev")])?;
    for tmp in ["/run", "/tmp"] {
        mount(&["-t", "tmpfs", "-o", "mode=1777", "tmpfs", &path(tmp)])?;
    }

    // The machine's apt sources and settings, DNS and CA certificates.
    for file in [
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/ssl/certs/ca-certificates.crt",
    ] {
        copy_in(Path::new(file), &at(file))?;
    }
    for dir in [
        "/etc/apt/sources.list.d",
        "/etc/apt/apt.conf.d",
        "/usr/local/share/ca-certificates",
    ] {
        copy_dir_in(Path::new(dir), &at(dir))?;
    }
    if Path::new("/etc/apt/sources.list").exists() {
        copy_in(
            Path::new("/etc/apt/sources.list"),
            &at("/etc/apt/sources.list"),
        )?;
    } else {
        // debootstrap's one-line source would duplicate the machine's deb822 ones.
        let _ = std::fs::remove_file(at("/etc/apt/sources.list"));
    }

    // The Rust toolchain: rustup's toolchains read-only; a new ~/.cargo with the proxies.
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let rustup =
        std::env::var_os("RUSTUP_HOME").map_or_else(|| home.join(".rustup"), PathBuf::from);
    let cargo_home =
        std::env::var_os("CARGO_HOME").map_or_else(|| home.join(".cargo"), PathBuf::from);
    ensure!(
        rustup.join("toolchains").is_dir(),
        "no rustup toolchain in {} (a machine of this kind has one)",
        rustup.display()
    );
    std::fs::create_dir_all(at("/root/.rustup"))?;
    mount(&["--bind", &rustup.to_string_lossy(), &path("/root/.rustup")])?;
    mount(&["-o", "remount,bind,ro", &path("/root/.rustup")])?;
    copy_dir_in(&cargo_home.join("bin"), &at("/root/.cargo/bin"))?;

    println!("fresh: cloning {} into {CHECKOUT}", repo.display());
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(repo)
        .arg(at(CHECKOUT))
        .status()
        .context("running git clone")?;
    ensure!(
        status.success(),
        "`git clone {}` failed ({status})",
        repo.display()
    );
    Ok(())
}

/// Copies one file to `to`, making its directory.
fn copy_in(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // resolv.conf may be a symlink into /run on the machine: copy what it points to.
    let _ = std::fs::remove_file(to);
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} into the fresh root", from.display()))
}

/// Copies the files of one directory (not recursively) to `to`.
fn copy_dir_in(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    std::fs::create_dir_all(to)?;
    for entry in entries.filter_map(|e| e.ok()) {
        if entry.path().is_file() {
            copy_in(&entry.path(), &to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Runs one shell command line as root inside the root, with the environment a login on a
/// new machine has; echoes its output and remembers the test runner's `summary:` line.
fn run_inside(
    root: &Path,
    command: &str,
    omit: &[String],
    summary: &mut Option<String>,
) -> Result<bool> {
    use std::io::BufRead;
    let mut cmd = Command::new("chroot");
    cmd.arg(root)
        .args(["/bin/sh", "-c", &format!("cd {CHECKOUT} && {command}")])
        .env_clear()
        .env("HOME", "/root")
        .env(
            "PATH",
            "/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8")
        .env("USER", "root");
    for var in ["SSL_CERT_FILE", "SSL_CERT_DIR", "TERM", "CI"] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    if !omit.is_empty() {
        cmd.env(deps::OMIT_ENV, omit.join(","));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("running chroot")?;
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if line.starts_with("summary: ") {
                *summary = Some(line);
            }
        }
    }
    Ok(child.wait()?.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_comes_from_either_sources_format() {
        let deb822 = "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.invalid/debian")
        );
        let disabled =
            "Types: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\nEnabled: no\n";
        assert_eq!(mirror_in(disabled), None);
        let list =
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/d bookworm main\n";
        assert_eq!(mirror_in(list).as_deref(), Some("http://mirror.invalid/d"));
        assert_eq!(
            mirror_in("deb http://m.invalid/d bookworm main").as_deref(),
            Some("http://m.invalid/d")
        );
        assert_eq!(mirror_in("deb http://m.invalid/d trixie main"), None);
    }

    #[test]
    fn the_cache_key_changes_with_the_mirror() {
        assert_eq!(cache_key("a"), cache_key("a"));
        assert_ne!(cache_key("a"), cache_key("b"));
    }
}
