//! The control daemon's TOML configuration, shaped like strongSwan's swanctl.conf:
//! `[daemon]`, `[connections.<name>]` with `local`, `remote` and `children.<child>`,
//! `[pools.<name>]` and `[secrets.<type><suffix>]`. `docs/config.md` lists every key, its
//! type and default, and how the file differs from swanctl.conf.
//!
//! Loading happens in two steps: serde reads the file into raw structs that refuse unknown
//! keys, then validation turns them into typed values — proposals through
//! [`ProposalSpec`](crate::crypto::proposal::ProposalSpec), addresses, traffic selectors,
//! durations, identities, certificates and keys (through [`crate::auth`]), with relative paths
//! resolved against the file's directory. A refusal is a [`ConfigError`] naming the file, the
//! key (`connections.rw.children.lan.local_ts[0]`) and the reason; it never contains a secret.

mod raw;
mod types;
mod validate;
mod value;

use std::fmt;
use std::path::{Path, PathBuf};

pub use types::*;
pub use validate::{DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS};
pub use value::{AddrSpec, AddressFamily, TsAddrs, TsSpec};

use crate::auth::Identity;
use crate::crypto::Secret;

/// A configuration the daemon refuses: which file, which key, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// The dotted key path (`connections.rw.local.id`), or `(syntax)` for a TOML syntax error.
    pub key: String,
    /// Why.
    pub reason: String,
    /// The line, when known.
    pub line: Option<usize>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(
                f,
                "{}:{l}: {}: {}",
                self.file.display(),
                self.key,
                self.reason
            ),
            None => write!(f, "{}: {}: {}", self.file.display(), self.key, self.reason),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            key: "(file)".into(),
            reason: e.to_string(),
            line: None,
        })?;
        Config::parse(&text, path)
    }

    /// Validates `text` as if read from `path` (relative paths inside resolve against its
    /// directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let syntax = |e: toml::de::Error| ConfigError {
            file: path.to_owned(),
            key: "(syntax)".into(),
            // Only the message: TOML's rendering quotes the offending line, which may hold a
            // secret.
            reason: e.message().to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
        };
        let de = toml::de::Deserializer::parse(text).map_err(syntax)?;
        let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            // The path names the offending key, an unknown one included.
            let key = e.path().to_string();
            let inner = e.inner();
            ConfigError {
                file: path.to_owned(),
                key,
                reason: inner.message().to_owned(),
                line: inner.span().map(|s| line_of(text, s.start)),
            }
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        validate::validate(raw, &validate::Ctx { file: path, dir })
    }

    /// The pre-shared key for an IKE SA between `local` (our identity, if known) and `remote`
    /// (see [`crate::auth::SharedSecrets::lookup`]).
    pub fn psk_for(&self, local: Option<&Identity>, remote: &Identity) -> Option<&Secret> {
        self.shared_secrets.lookup(local, remote)
    }
}
