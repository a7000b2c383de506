//! A lab run: its name, its log folder, and the clean-up of runs that were killed.

use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};
use crate::netns;

/// One test's (or the demo's, or a benchmark's) lab context.
///
/// The log folder is `$ROAMGATE_LAB_LOGS/<name>` (default: `<tmp>/roamgate-lab/<name>`). It is
/// emptied when a lab of the same name starts and kept afterwards, so the logs of a failed run
/// can be read after the test is over.
#[derive(Debug)]
pub struct Lab {
    name: String,
    logs: PathBuf,
}

impl Lab {
    /// Starts a lab named `name` (use the test's name): checks for root, removes namespaces
    /// left by killed runs, and prepares the log folder.
    pub fn new(name: &str) -> Result<Lab> {
        netns::require_root()?;
        crate::cmd::require("ip")?;
        for stale in netns::clean_stale(false) {
            tracing::warn!(
                netns = stale,
                "removed a namespace left behind by a killed run"
            );
        }
        let root = std::env::var_os("ROAMGATE_LAB_LOGS")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("roamgate-lab"));
        let logs = root.join(name);
        if logs.exists() {
            std::fs::remove_dir_all(&logs)
                .map_err(|e| LabError::io(format!("emptying {}", logs.display()), e))?;
        }
        std::fs::create_dir_all(&logs)
            .map_err(|e| LabError::io(format!("creating {}", logs.display()), e))?;
        Ok(Lab {
            name: name.to_string(),
            logs,
        })
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder that keeps this lab's logs.
    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// Writes `text` to `<logs>/<file>` (for reports and generated configs).
    pub fn write_log(&self, file: &str, text: &str) -> Result<PathBuf> {
        let path = self.logs.join(file);
        std::fs::write(&path, text)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        Ok(path)
    }
}
