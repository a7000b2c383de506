//! `cargo xtask lab …`: lab housekeeping.

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum Action {
    /// Remove every lab namespace (names starting with `rg`), kill what runs in them, and
    /// remove their /etc/netns folders and vici sockets.
    Clean,
}

pub(crate) fn run(action: Action) -> Result<()> {
    match action {
        Action::Clean => clean(),
    }
}

fn clean() -> Result<()> {
    roamgate_lab::require_root()?;
    let removed = roamgate_lab::netns::clean_stale(true);
    let _ = std::fs::remove_dir_all("/tmp/roamgate-vici");
    if removed.is_empty() {
        println!("lab clean: no lab namespaces were left");
    } else {
        println!("lab clean: removed {}", removed.join(" "));
    }
    Ok(())
}
