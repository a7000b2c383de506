//! The engine's configuration: plain typed values, no file format. The TOML configuration
//! (`control/src/config/`) is converted into these types by the daemon.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Credential, Identity, SharedSecrets, TrustStore};
use crate::crypto::proposal::ProposalSpec;
use crate::wire::payload::TrafficSelector;

/// Everything the engine needs to know.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The connections, in preference order (a responder takes the first one that matches).
    pub connections: Vec<ConnectionConfig>,
    /// Virtual-IP pools a responder assigns from ([RFC 7296 § 2.19]).
    ///
    /// [RFC 7296 § 2.19]: https://www.rfc-editor.org/rfc/rfc7296#section-2.19
    pub pools: Vec<PoolConfig>,
    /// Pre-shared keys, looked up by the identities of each IKE SA
    /// ([`SharedSecrets::lookup`]).
    pub secrets: SharedSecrets,
    /// Request retransmission.
    pub retransmit: RetransmitConfig,
    /// Above this many half-open IKE SAs a responder demands a COOKIE
    /// ([RFC 7296 § 2.6](https://www.rfc-editor.org/rfc/rfc7296#section-2.6)); `0` always
    /// demands one.
    pub cookie_threshold: usize,
    /// How often the COOKIE secret is replaced (the previous one stays valid for one period).
    pub cookie_secret_lifetime: Duration,
    /// How long a responder keeps a half-open IKE SA (IKE_SA_INIT answered, no IKE_AUTH).
    pub half_open_timeout: Duration,
    /// Behind a NAT, a NAT keepalive goes out after this much outbound silence
    /// ([RFC 3948 § 4](https://www.rfc-editor.org/rfc/rfc3948#section-4); strongSwan's
    /// `keep_alive`, 20 s); `None` disables them.
    pub nat_keepalive: Option<Duration>,
    /// The largest IP datagram an IKE fragment may fill (strongSwan's `fragment_size`,
    /// 1280): protected messages larger than that are sent as fragments when both sides
    /// announced IKE fragmentation ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)).
    pub fragment_size: usize,
    /// At most this many INVALID_IKE_SPI notifications per second are sent
    /// ([RFC 7296 § 2.21.4](https://www.rfc-editor.org/rfc/rfc7296#section-2.21.4)).
    pub invalid_spi_rate: u32,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            connections: Vec::new(),
            pools: Vec::new(),
            secrets: SharedSecrets::default(),
            retransmit: RetransmitConfig::default(),
            cookie_threshold: 10,
            cookie_secret_lifetime: Duration::from_secs(60),
            half_open_timeout: Duration::from_secs(30),
            nat_keepalive: Some(Duration::from_secs(20)),
            fragment_size: 1280,
            invalid_spi_rate: 10,
        }
    }
}

/// Retransmission of requests: the n-th retransmission is sent `timeout × base^n` after the
/// previous send; after `tries` retransmissions and one more wait the exchange has failed.
/// The defaults are strongSwan's (`charon.retransmit_timeout`, `_base`, `_tries`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetransmitConfig {
    /// The first timeout.
    pub timeout: Duration,
    /// The exponential base.
    pub base: f64,
    /// How many retransmissions before giving up.
    pub tries: u32,
    /// The longest single wait (strongSwan's `retransmit_limit`); `None`: only
    /// [`RetransmitConfig::MAX_WAIT`].
    pub limit: Option<Duration>,
}

impl Default for RetransmitConfig {
    fn default() -> RetransmitConfig {
        RetransmitConfig {
            timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 5,
            limit: None,
        }
    }
}

impl RetransmitConfig {
    /// How long to wait after send number `n` (0 = the first send) before the next action,
    /// at most `limit` and [`RetransmitConfig::MAX_WAIT`].
    pub fn wait(&self, n: u32) -> Duration {
        let exp = i32::try_from(n).unwrap_or(i32::MAX);
        let secs = self.timeout.as_secs_f64() * self.base.powi(exp);
        Duration::try_from_secs_f64(secs)
            .unwrap_or(Self::MAX_WAIT)
            .min(self.limit.unwrap_or(Self::MAX_WAIT))
            .min(Self::MAX_WAIT)
    }

    /// The longest wait between two sends (a nonsensical configuration cannot stall an
    /// exchange for longer).
    pub const MAX_WAIT: Duration = Duration::from_secs(3600);
}

/// One IKE connection (strongSwan's `connections.<name>`).
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The connection's name.
    pub name: String,
    /// Our addresses, most preferred first; empty matches any (responder).
    pub local_addrs: Vec<IpAddr>,
    /// The link policy: the host interfaces the connection may use, most preferred first
    /// (its addresses on others are neither used nor announced); empty: any.
    pub links: Vec<String>,
    /// The peer's addresses, most preferred first; an initiator sends to the first; empty
    /// matches any (responder).
    pub remote_addrs: Vec<IpAddr>,
    /// IKE proposals, in preference order.
    pub ike_proposals: Vec<ProposalSpec>,
    /// Our identity (IDi or IDr); `None` sends the certificate's subject DN with
    /// [`LocalAuth::PubKey`] and our IKE address with [`LocalAuth::Psk`], as strongSwan does.
    pub local_id: Option<Identity>,
    /// How we authenticate.
    pub local_auth: LocalAuth,
    /// The identity the peer must prove: exact, a pattern (`*@roamgate.test`) or
    /// [`Identity::Any`]. An initiator sends an exact one as IDr.
    pub remote_id: Identity,
    /// How the peer must authenticate.
    pub remote_auth: RemoteAuth,
    /// When we send our certificate chain ([`LocalAuth::PubKey`] only).
    pub send_cert: SendCert,
    /// Whether we ask for the peer's certificate with CERTREQ payloads naming our trust
    /// anchors ([RFC 7296 § 3.7](https://www.rfc-editor.org/rfc/rfc7296#section-3.7);
    /// [`RemoteAuth::PubKey`] only).
    pub send_certreq: bool,
    /// Whether IKE fragmentation ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)) is
    /// offered (IKEV2_FRAGMENTATION_SUPPORTED) and used when the peer offers it too.
    pub fragmentation: bool,
    /// Whether MOBIKE ([RFC 4555](https://www.rfc-editor.org/rfc/rfc4555)) is offered;
    /// without it no MOBIKE notification is sent and every one received is ignored.
    pub mobike: bool,
    /// Which new peer addresses are checked before an SA moves to them (MOBIKE).
    pub return_routability: ReturnRoutability,
    /// Liveness check after this much inbound silence; `None` disables it.
    pub dpd_delay: Option<Duration>,
    /// The hold policy (MOBIKE): when the peer stops answering on every pair, its SAs are
    /// kept this long — checked again and again, their traffic lost meanwhile — and resume
    /// the moment it answers; `None` gives them up at once.
    pub hold: Option<Duration>,
    /// IKE SA rekeying interval; `None` disables it.
    pub rekey_time: Option<Duration>,
    /// Hard lifetime after the rekey time.
    pub over_time: Option<Duration>,
    /// Up to this much (uniformly random) is taken off each rekey interval so that both
    /// sides rarely rekey at once (strongSwan's `rand_time`); `None`: no jitter.
    pub rand_time: Option<Duration>,
    /// The CHILD_SAs.
    pub children: Vec<ChildConfig>,
    /// Pool names to assign virtual IPs from (responder).
    pub pools: Vec<String>,
    /// Virtual IPs to request (initiator): `0.0.0.0` asks for any IPv4 address, `::` for any
    /// IPv6 address, another address asks for that one.
    pub vips: Vec<IpAddr>,
}

/// How we prove our identity ([RFC 7296 § 2.15](https://www.rfc-editor.org/rfc/rfc7296#section-2.15)).
#[derive(Debug, Clone)]
pub enum LocalAuth {
    /// Pre-shared key: AUTH method 2 (Shared Key Message Integrity Code), with the key
    /// [`EngineConfig::secrets`] holds for our identity and the peer's.
    Psk,
    /// Digital signature ([RFC 7427](https://www.rfc-editor.org/rfc/rfc7427) method 14, or
    /// the classic ECDSA methods of [RFC 4754](https://www.rfc-editor.org/rfc/rfc4754) when
    /// the peer announced no hash algorithms) with this key and certificate chain.
    PubKey(Arc<Credential>),
}

/// How the peer must prove its identity.
#[derive(Debug, Clone)]
pub enum RemoteAuth {
    /// Pre-shared key (AUTH method 2), looked up in [`EngineConfig::secrets`].
    Psk,
    /// A signature with a certificate that chains to one of these trust anchors and binds
    /// the identity the peer sent.
    PubKey(Arc<TrustStore>),
}

/// When the responder checks that a peer address an UPDATE_SA_ADDRESSES moves to answers
/// before the SA and its CHILD_SAs move there (the return routability check of
/// [RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5) and
/// [RFC 4621 § 3.2](https://www.rfc-editor.org/rfc/rfc4621#section-3.2)): an authenticated
/// INFORMATIONAL request with COOKIE2 on the new pair, whose answer must echo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnRoutability {
    /// Every move is checked.
    Always,
    /// A move to an address the peer did not announce (in IKE_AUTH or in a later address
    /// list) is checked; one it announced is not (the default).
    #[default]
    NewAddresses,
    /// No move is checked.
    Never,
    /// A move to an IP address in the peer certificate's subjectAltName is not checked;
    /// any other is.
    Certificate,
}

/// When to send our certificate chain (strongSwan's `send_cert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendCert {
    /// In every IKE_AUTH message we send.
    Always,
    /// Only when the peer sent a CERTREQ (the default).
    #[default]
    IfAsked,
    /// Never (the peer has our certificate already).
    Never,
}

/// The IPsec mode of a CHILD_SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Tunnel mode.
    Tunnel,
    /// Transport mode ([RFC 7296 § 1.3.1](https://www.rfc-editor.org/rfc/rfc7296#section-1.3.1),
    /// `USE_TRANSPORT_MODE`).
    Transport,
    /// Bound End-to-End Tunnel (strongSwan's private `USE_BEET_MODE` notify).
    Beet,
}

/// What to do with a CHILD_SA when the engine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartAction {
    /// Wait for the peer (or an explicit `initiate`).
    None,
    /// Initiate at once ([`crate::engine::Engine::start`]).
    Start,
    /// Install a trap policy (the data plane triggers `initiate`).
    Trap,
}

/// A configured traffic selector ([RFC 7296 § 2.9](https://www.rfc-editor.org/rfc/rfc7296#section-2.9)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsConfig {
    /// These addresses, protocol and ports.
    Fixed(TrafficSelector),
    /// strongSwan's `dynamic`: the side's IKE address, or its virtual IP once one is assigned,
    /// with this protocol and port range.
    Dynamic {
        /// The IP protocol (0: any).
        ip_protocol: u8,
        /// The first port.
        start_port: u16,
        /// The last port.
        end_port: u16,
    },
}

impl TsConfig {
    /// `dynamic`, any protocol and port.
    pub const DYNAMIC: TsConfig = TsConfig::Dynamic {
        ip_protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
    };
}

impl From<TrafficSelector> for TsConfig {
    fn from(ts: TrafficSelector) -> TsConfig {
        TsConfig::Fixed(ts)
    }
}

/// One CHILD_SA of a connection.
#[derive(Debug, Clone)]
pub struct ChildConfig {
    /// The CHILD_SA's name.
    pub name: String,
    /// Our side's traffic selectors.
    pub local_ts: Vec<TsConfig>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TsConfig>,
    /// ESP proposals, in preference order.
    pub esp_proposals: Vec<ProposalSpec>,
    /// The mode.
    pub mode: Mode,
    /// The start action.
    pub start_action: StartAction,
    /// CHILD_SA rekeying interval; `None` disables it.
    pub rekey_time: Option<Duration>,
    /// Up to this much (uniformly random) is taken off each rekey interval; `None`: no
    /// jitter.
    pub rand_time: Option<Duration>,
}

/// A virtual-IP pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The pool's name.
    pub name: String,
    /// The first address handed out.
    pub first: IpAddr,
    /// The last address handed out (same family as `first`).
    pub last: IpAddr,
}
