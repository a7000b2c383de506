//! The `roamgate` command: one binary whose subcommands run the gateway's processes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod control;
mod gateway;
mod sd_notify;

/// Kernel-bypass IPsec security gateway with IKEv2 mobility and multihoming (MOBIKE).
#[derive(Debug, Parser)]
#[command(name = "roamgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the map ABI of the embedded XDP program (sizes and offsets of every map record).
    MapAbi,
    /// Run the control plane: the IKEv2/MOBIKE daemon on UDP 500 and 4500 (foreground;
    /// SIGHUP reloads the configuration, SIGTERM stops).
    Control {
        /// Path of the TOML configuration (docs/config.md).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Negotiate IKE and CHILD SAs without installing them in the data plane's maps.
        #[arg(long)]
        no_dataplane: bool,
    },
    /// Run the data plane: attach XDP, open AF_XDP sockets and forward ESP (foreground).
    Gateway {
        /// Path of the gateway's TOML configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the data plane's worker counters (drop reasons, then forwarding), summed over
    /// workers, one `name value` line each.
    Counters {
        /// The instance's pin directory (the gateway configuration's `pin_dir`).
        #[arg(long, value_name = "DIR")]
        pin_dir: PathBuf,
    },
    /// Remove the data plane's pinned maps (and its readiness marker) and their directory,
    /// after `roamgate gateway` and `roamgate control` have stopped: every SA installed in
    /// them is gone.
    Unpin {
        /// The instance's pin directory (the gateway configuration's `pin_dir`).
        #[arg(long, value_name = "DIR")]
        pin_dir: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Control {
        config,
        no_dataplane,
    }) = &cli.command
    {
        // The control process sets up logging from its configuration file.
        if let Err(failure) = control::run(config, !no_dataplane) {
            eprintln!("{}", failure.message());
            std::process::exit(i32::from(failure.exit_code()));
        }
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
        Some(Command::MapAbi) => {
            print!("{}", roamgate_ebpf::abi::describe());
            Ok(())
        }
        Some(Command::Gateway { config }) => gateway::run(&config),
        Some(Command::Counters { pin_dir }) => {
            for (name, value) in roamgate_gateway::dataplane::counters(&pin_dir)? {
                println!("{name} {value}");
            }
            Ok(())
        }
        Some(Command::Unpin { pin_dir }) => roamgate_ebpf::remove_pins(&pin_dir)
            .with_context(|| format!("removing the pinned maps in {}", pin_dir.display())),
        Some(Command::Control { .. }) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_the_release() {
        let err = Cli::try_parse_from(["roamgate", "--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(
            err.to_string().trim(),
            format!("roamgate {}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn unknown_subcommands_are_refused() {
        let err = Cli::try_parse_from(["roamgate", "frobnicate"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidSubcommand);
    }
}
