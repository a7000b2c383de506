//! The validated configuration.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::value::{AddrSpec, TsSpec};
use crate::auth::{Credential, Identity, SharedSecrets, TrustStore};
use crate::crypto::proposal::ProposalSpec;

/// The whole configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// `[daemon]`.
    pub daemon: DaemonSettings,
    /// `[connections.<name>]`, by name.
    pub connections: BTreeMap<String, Connection>,
    /// `[pools.<name>]`, by name.
    pub pools: BTreeMap<String, Pool>,
    /// `[secrets.ike<suffix>]`: pre-shared keys, in table-name order.
    pub shared_secrets: SharedSecrets,
}

/// `[daemon]`: settings of the control process.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    /// Addresses to bind the IKE sockets to (default `0.0.0.0` and `::`).
    pub listen: Vec<IpAddr>,
    /// The IKE port (default 500).
    pub port: u16,
    /// The NAT-T port (default 4500).
    pub port_nat_t: u16,
    /// Retransmission of requests.
    pub retransmit: Retransmit,
    /// Half-open IKE SAs above which IKE_SA_INIT responses demand a COOKIE
    /// ([RFC 7296 § 2.6](https://www.rfc-editor.org/rfc/rfc7296#section-2.6)); default 30.
    pub cookie_threshold: u32,
    /// How long a half-open IKE SA may wait for IKE_AUTH (default 30 s).
    pub half_open_timeout: Duration,
    /// The largest IP datagram of a sent IKE fragment (default 1280, strongSwan's
    /// `charon.fragment_size`; [RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)).
    pub fragment_size: u32,
    /// The bpffs directory holding the data plane's pinned maps
    /// (default `/sys/fs/bpf/roamgate`).
    pub bpf_pin_dir: PathBuf,
    /// How long `roamgate control` waits at start for the data plane's readiness marker in
    /// `bpf_pin_dir` (default 30 s; zero: not at all, a missing data plane is an error at
    /// once).
    pub dataplane_wait: Duration,
    /// Log level (default `info`).
    pub log_level: LogLevel,
}

/// Retransmission schedule, as strongSwan's: try `n` (0-based) waits
/// `timeout * base^n`, capped at `limit`; after `tries` retransmissions the exchange fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retransmit {
    /// The first wait (default 4 s).
    pub timeout: Duration,
    /// Retransmissions before giving up (default 5).
    pub tries: u32,
    /// Growth factor (default 1.8).
    pub base: f64,
    /// Upper bound of one wait (default none).
    pub limit: Option<Duration>,
}

impl Retransmit {
    /// The wait before retransmission `n` (0 = after the first send), or `None` when the
    /// exchange has failed.
    pub fn wait(&self, n: u32) -> Option<Duration> {
        if n > self.tries {
            return None;
        }
        let secs = self.timeout.as_secs_f64() * self.base.powi(n as i32);
        let d = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
        Some(self.limit.map_or(d, |l| d.min(l)))
    }
}

/// Log level of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `error`.
    Error,
    /// `warn`.
    Warn,
    /// `info`.
    Info,
    /// `debug`.
    Debug,
    /// `trace`.
    Trace,
}

impl LogLevel {
    /// The name as written in the file (and as tracing's filters spell it).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `[connections.<name>]`: one IKE SA configuration.
#[derive(Debug)]
pub struct Connection {
    /// The table's name.
    pub name: String,
    /// Our addresses, most preferred first (MOBIKE announces them in this order). Default
    /// `%any`.
    pub local_addrs: Vec<AddrSpec>,
    /// The link policy: the interfaces the connection may use, most preferred first. Default
    /// none (any interface).
    pub links: Vec<String>,
    /// Peer addresses; `%any` for a responder accepting anyone. Default `%any`.
    pub remote_addrs: Vec<AddrSpec>,
    /// Our IKE port (default 500).
    pub local_port: u16,
    /// The peer's IKE port (default 500).
    pub remote_port: u16,
    /// IKE proposals, in preference order.
    pub proposals: Vec<ProposalSpec>,
    /// Virtual IPs to request (initiator); `0.0.0.0` / `::` asks for any.
    pub vips: Vec<IpAddr>,
    /// Pools to assign virtual IPs from (responder), by name.
    pub pools: Vec<String>,
    /// Force UDP encapsulation of ESP (default false).
    pub encap: bool,
    /// MOBIKE ([RFC 4555](https://www.rfc-editor.org/rfc/rfc4555)), default true.
    pub mobike: bool,
    /// Which new peer addresses are checked before an SA moves there
    /// (`return_routability`: `always`, `new_addresses` (the default), `never`,
    /// `certificate`).
    pub return_routability: crate::engine::ReturnRoutability,
    /// Liveness check interval; `None` (0 s, the default) disables DPD.
    pub dpd_delay: Option<Duration>,
    /// The hold policy: how long the SAs of a MOBIKE peer that went silent are kept
    /// (checked again and again) before they are given up; `None` (0 s, the default) gives
    /// them up at once.
    pub hold: Option<Duration>,
    /// IKE fragmentation ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)), default true.
    pub fragmentation: bool,
    /// Send CERTREQ payloads (default true).
    pub send_certreq: bool,
    /// When to send our certificate.
    pub send_cert: SendCert,
    /// Initiation attempts; 0 = forever (default 1).
    pub keyingtries: u32,
    /// Uniqueness policy for IKE SAs with the same identities.
    pub unique: Unique,
    /// IKE SA rekeying interval; `None` disables (default 4 h).
    pub rekey_time: Option<Duration>,
    /// Reauthentication interval; `None` disables (default).
    pub reauth_time: Option<Duration>,
    /// Hard lifetime beyond rekey/reauth time (default 10 % of the larger).
    pub over_time: Duration,
    /// Random jitter subtracted from rekey/reauth time (default `over_time`).
    pub rand_time: Duration,
    /// `[connections.<name>.local]`.
    pub local: LocalAuth,
    /// `[connections.<name>.remote]`.
    pub remote: RemoteAuth,
    /// `[connections.<name>.children.<child>]`, by name.
    pub children: BTreeMap<String, Child>,
}

/// How we authenticate ourselves.
pub struct LocalAuth {
    /// Our identity; `None` sends the address (PSK) or the certificate subject (pubkey).
    pub id: Option<Identity>,
    /// The method.
    pub method: LocalMethod,
}

/// Our authentication method.
pub enum LocalMethod {
    /// `auth = "psk"`: the key comes from `[secrets]` by identity.
    Psk,
    /// `auth = "pubkey"` (or `"rsa/pss"`): sign with this credential.
    PubKey(Arc<Credential>),
}

impl fmt::Debug for LocalAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match &self.method {
            LocalMethod::Psk => "psk".to_owned(),
            LocalMethod::PubKey(c) => format!("pubkey({})", c.certificate().subject()),
        };
        f.debug_struct("LocalAuth")
            .field("id", &self.id)
            .field("method", &method)
            .finish()
    }
}

/// How the peer must authenticate.
#[derive(Debug)]
pub struct RemoteAuth {
    /// The identity (or pattern) the peer must present; default `%any`.
    pub id: Identity,
    /// The method.
    pub method: RemoteMethod,
}

/// The peer's authentication method.
#[derive(Debug)]
pub enum RemoteMethod {
    /// `auth = "psk"`.
    Psk,
    /// `auth = "pubkey"`: a certificate chain to one of these anchors.
    PubKey(Arc<TrustStore>),
}

/// When to send our certificate (`send_cert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendCert {
    /// `always`.
    Always,
    /// `ifasked` (the default): only after a CERTREQ.
    IfAsked,
    /// `never`.
    Never,
}

/// Uniqueness policy (`unique`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    /// `no` (the default): keep all; replace on INITIAL_CONTACT.
    No,
    /// `never`: keep all, ignore INITIAL_CONTACT.
    Never,
    /// `keep`: refuse the new IKE SA.
    Keep,
    /// `replace`: delete the old IKE SA.
    Replace,
}

/// `[connections.<name>.children.<child>]`: one CHILD_SA configuration.
#[derive(Debug, Clone)]
pub struct Child {
    /// The table's name.
    pub name: String,
    /// Our traffic selectors (default `dynamic`).
    pub local_ts: Vec<TsSpec>,
    /// The peer's traffic selectors (default `dynamic`).
    pub remote_ts: Vec<TsSpec>,
    /// ESP proposals, in preference order.
    pub esp_proposals: Vec<ProposalSpec>,
    /// Encapsulation mode.
    pub mode: Mode,
    /// What to do when the configuration is loaded.
    pub start_action: StartAction,
    /// What to do when DPD declares the peer dead.
    pub dpd_action: PeerGoneAction,
    /// What to do when the peer closes the CHILD_SA.
    pub close_action: PeerGoneAction,
    /// Rekeying interval; `None` disables (default 1 h).
    pub rekey_time: Option<Duration>,
    /// Hard lifetime (default `rekey_time` + 10 %).
    pub life_time: Option<Duration>,
    /// Random jitter subtracted from `rekey_time` (default `life_time - rekey_time`).
    pub rand_time: Duration,
}

/// IPsec mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `tunnel` (the default).
    Tunnel,
    /// `beet`: Bound End-to-End Tunnel, tunnel semantics with transport-mode overhead.
    Beet,
    /// `transport`.
    Transport,
}

/// `start_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAction {
    /// `none` (the default).
    None,
    /// `trap`: install policies, initiate on traffic.
    Trap,
    /// `start`: initiate at once.
    Start,
}

/// `dpd_action` / `close_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerGoneAction {
    /// `clear` / `none`: remove the CHILD_SA.
    Clear,
    /// `trap`: reinstall the trap.
    Trap,
    /// `restart` / `start`: initiate again.
    Restart,
}

/// `[pools.<name>]`: virtual IP addresses to hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The table's name.
    pub name: String,
    /// First address handed out.
    pub first: IpAddr,
    /// Last address handed out.
    pub last: IpAddr,
    /// DNS servers to send with an address.
    pub dns: Vec<IpAddr>,
}

/// `[secrets.ike<suffix>]`: a pre-shared key and the identities it is for.
pub use crate::auth::SharedSecret;
