//! Project tasks, run as `cargo xtask <task>` (the alias lives in `.cargo/config.toml`).
//!
//! | task | what it does |
//! |---|---|
//! | `deps` | installs the Debian packages the build, demo and tests need (only what is missing) |
//! | `test` | deps, bpffs, `cargo fmt --check`, `cargo clippy -D warnings`, every test, a short fuzz run |
//! | `fuzz` | every cargo-fuzz target, for a given time each |
//! | `demo` | the lab demo: road warrior, gateway, LAN host, live traffic, a failover |
//! | `fresh` | the README's commands in a clean Debian 12 root made with debootstrap (what CI runs) |
//! | `bench` | the benchmarks; results go to the terminal and `target/bench-results/` |
//! | `lab clean` | removes every lab namespace and what runs in it |

mod bench;
mod demo;
mod deps;
mod fresh;
mod fuzz;
mod lab;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "roamgate's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the Debian packages the build, demo and tests need (as root; only what is missing).
    Deps {
        /// List what is missing and exit without installing.
        #[arg(long)]
        check: bool,
    },
    /// Run every check and test: deps, bpffs, fmt, clippy, unit, lab and end-to-end tests,
    /// then every fuzz target for a short time.
    Test {
        /// Seconds each fuzz target runs after the tests.
        #[arg(long, default_value_t = 20)]
        fuzz_seconds: u64,
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run every cargo-fuzz target (stable toolchain, `-s none`) for a bounded time each.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Run the lab demo: real strongSwan road warrior with two uplinks, gateway, LAN host,
    /// live traffic, a failover, the measured outage.
    Demo,
    /// Run the README's commands (or the one after `--`) as root in a clean Debian 12 root:
    /// debootstrap minbase plus what a new machine of this kind has, nothing else.
    Fresh(fresh::Args),
    /// Run the benchmarks.
    Bench {
        /// Runs per measurement (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Lab housekeeping.
    Lab {
        #[command(subcommand)]
        action: lab::Action,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One clear sentence (with its causes), never a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .without_time()
        .init();
    match Cli::parse().task {
        Task::Deps { check } => deps::run(check),
        Task::Test {
            fuzz_seconds,
            cargo_args,
        } => test::run(fuzz_seconds, &cargo_args),
        Task::Fuzz { seconds } => {
            let failures = fuzz::run(seconds)?;
            for f in &failures {
                eprintln!("{}: {}", f.check, f.reason);
            }
            anyhow::ensure!(
                failures.is_empty(),
                "{} fuzz target(s) failed",
                failures.len()
            );
            Ok(())
        }
        Task::Demo => demo::run(),
        Task::Fresh(args) => fresh::run(&args),
        Task::Bench { runs } => bench::run(runs),
        Task::Lab { action } => lab::run(action),
    }
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Runs `cargo args…` in the workspace root, failing with the command line when it fails.
fn cargo(args: &[&str]) -> Result<()> {
    cargo_env(args, &[])
}

/// Like [`cargo`], with extra environment variables for the child.
fn cargo_env(args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("==> cargo {}", args.join(" "));
    let status = std::process::Command::new(&cargo)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "`cargo {}` failed ({status})",
        args.join(" ")
    );
    Ok(())
}
