//! `roamgate gateway --config FILE`: the data-plane process.

use std::path::Path;

use anyhow::{Result, bail};

/// Runs the gateway in the foreground until it is stopped.
pub(crate) fn run(config: &Path) -> Result<()> {
    bail!(
        "the gateway data plane is not built yet; cannot run {}",
        config.display()
    )
}
