//! The file as serde reads it: one struct per table, every key optional, unknown keys refused.
//! Validation into the typed [`Config`](super::Config) happens in `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::value::{RawDuration, RawSecretValue};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) daemon: RawDaemon,
    #[serde(default)]
    pub(crate) connections: BTreeMap<String, RawConnection>,
    #[serde(default)]
    pub(crate) pools: BTreeMap<String, RawPool>,
    #[serde(default)]
    pub(crate) secrets: BTreeMap<String, RawSecretSection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDaemon {
    pub(crate) listen: Option<Vec<String>>,
    pub(crate) port: Option<u16>,
    pub(crate) port_nat_t: Option<u16>,
    pub(crate) retransmit_timeout: Option<RawDuration>,
    pub(crate) retransmit_tries: Option<u32>,
    pub(crate) retransmit_base: Option<f64>,
    pub(crate) retransmit_limit: Option<RawDuration>,
    pub(crate) cookie_threshold: Option<u32>,
    pub(crate) half_open_timeout: Option<RawDuration>,
    pub(crate) fragment_size: Option<u32>,
    pub(crate) bpf_pin_dir: Option<String>,
    pub(crate) dataplane_wait: Option<RawDuration>,
    pub(crate) log_level: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnection {
    pub(crate) version: Option<u8>,
    pub(crate) local_addrs: Option<Vec<String>>,
    pub(crate) links: Option<Vec<String>>,
    pub(crate) remote_addrs: Option<Vec<String>>,
    pub(crate) local_port: Option<u16>,
    pub(crate) remote_port: Option<u16>,
    pub(crate) proposals: Option<Vec<String>>,
    pub(crate) vips: Option<Vec<String>>,
    pub(crate) pools: Option<Vec<String>>,
    pub(crate) encap: Option<bool>,
    pub(crate) mobike: Option<bool>,
    pub(crate) return_routability: Option<String>,
    pub(crate) dpd_delay: Option<RawDuration>,
    pub(crate) hold: Option<RawDuration>,
    pub(crate) fragmentation: Option<bool>,
    pub(crate) send_certreq: Option<bool>,
    pub(crate) send_cert: Option<String>,
    pub(crate) keyingtries: Option<u32>,
    pub(crate) unique: Option<String>,
    pub(crate) rekey_time: Option<RawDuration>,
    pub(crate) reauth_time: Option<RawDuration>,
    pub(crate) over_time: Option<RawDuration>,
    pub(crate) rand_time: Option<RawDuration>,
    pub(crate) local: Option<RawLocal>,
    pub(crate) remote: Option<RawRemote>,
    #[serde(default)]
    pub(crate) children: BTreeMap<String, RawChild>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocal {
    pub(crate) auth: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) certs: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemote {
    pub(crate) auth: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) cacerts: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChild {
    pub(crate) local_ts: Option<Vec<String>>,
    pub(crate) remote_ts: Option<Vec<String>>,
    pub(crate) esp_proposals: Option<Vec<String>>,
    pub(crate) mode: Option<String>,
    pub(crate) start_action: Option<String>,
    pub(crate) dpd_action: Option<String>,
    pub(crate) close_action: Option<String>,
    pub(crate) rekey_time: Option<RawDuration>,
    pub(crate) life_time: Option<RawDuration>,
    pub(crate) rand_time: Option<RawDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub(crate) addrs: String,
    pub(crate) dns: Option<Vec<String>>,
}

/// One string or a list of them (`id = "a"` or `id = ["a", "b"]`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A `[secrets.<type><suffix>]` table; which keys are allowed depends on the type prefix of
/// its name and is checked during validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecretSection {
    pub(crate) id: Option<OneOrMany>,
    pub(crate) secret: Option<RawSecretValue>,
    pub(crate) file: Option<String>,
}
