//! The lab's error type: every variant reads as one sentence that says what to do.

use std::path::PathBuf;

/// Everything that can go wrong while building or driving a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab needs root for namespaces, veth pairs, bpffs and strongSwan.
    #[error(
        "the lab needs root (network namespaces, veth pairs, XDP, strongSwan): run the tests as root, e.g. `sudo -E cargo xtask test`"
    )]
    NotRoot,
    /// A program the lab runs is not installed.
    #[error(
        "`{program}` is not installed (Debian package {package}): run `cargo xtask deps` as root"
    )]
    MissingProgram {
        /// The program that was looked for.
        program: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, as run.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on standard error (trimmed).
        stderr: String,
    },
    /// An I/O error with the path or action it concerns.
    #[error("{context}: {source}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A condition did not become true in time.
    #[error("timed out after {seconds:.1} s waiting for {what}; logs are in {logs}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the lab waited.
        seconds: f64,
        /// Where the test's logs are kept.
        logs: PathBuf,
    },
    /// strongSwan said something the lab did not expect.
    #[error("strongSwan in {netns}: {message}")]
    StrongSwan {
        /// The namespace whose charon answered.
        netns: String,
        /// What went wrong.
        message: String,
    },
    /// A lab was set up wrongly by its caller.
    #[error("lab misuse: {0}")]
    Usage(String),
}

impl LabError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The lab's result type.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
