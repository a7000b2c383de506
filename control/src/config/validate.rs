//! Raw file contents → typed [`Config`], with every refusal naming the key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::raw::{RawChild, RawConfig, RawConnection, RawDaemon, RawSecretSection};
use super::types::*;
use super::value::{self, AddrSpec, RawDuration, TsSpec};
use crate::auth::{
    Certificate, Credential, Identity, PrivateKey, PublicKey, RsaPadding, TrustStore,
};
use crate::crypto::proposal::{ProposalSpec, Protocol};

/// IKE proposals used when a connection names none (or writes `default`).
pub const DEFAULT_IKE_PROPOSALS: &[&str] = &[
    "aes256gcm16-aes128gcm16-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp2048",
    "aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-modp2048",
];

/// ESP proposals used when a child names none (or writes `default`).
pub const DEFAULT_ESP_PROPOSALS: &[&str] = &[
    "aes128gcm16-aes256gcm16",
    "aes128-aes256-sha256-sha384-sha512",
];

pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Path,
    pub(crate) dir: &'a Path,
}

type Result<T> = std::result::Result<T, ConfigError>;

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            key: key.into(),
            reason: reason.into(),
            line: None,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.dir.join(p)
        }
    }

    fn duration(&self, key: &str, d: &Option<RawDuration>, default: Duration) -> Result<Duration> {
        match d {
            None => Ok(default),
            Some(d) => value::parse_duration(&d.0).map_err(|e| self.err(key, e)),
        }
    }

    /// A duration where 0 means "off".
    fn optional_duration(
        &self,
        key: &str,
        d: &Option<RawDuration>,
        default: Duration,
    ) -> Result<Option<Duration>> {
        let d = self.duration(key, d, default)?;
        Ok((!d.is_zero()).then_some(d))
    }

    fn choice<T: Copy>(
        &self,
        key: &str,
        v: &Option<String>,
        default: T,
        table: &[(&str, T)],
    ) -> Result<T> {
        let Some(v) = v else { return Ok(default) };
        table
            .iter()
            .find(|(name, _)| name == v)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<String> = table.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                self.err(key, format!("`{v}` is not one of {}", names.join(", ")))
            })
    }

    fn proposals(
        &self,
        key: &str,
        list: &Option<Vec<String>>,
        protocol: Protocol,
        defaults: &[&str],
    ) -> Result<Vec<ProposalSpec>> {
        let mut out = Vec::new();
        let Some(list) = list else {
            return Ok(defaults
                .iter()
                .filter_map(|p| ProposalSpec::parse(protocol, p).ok())
                .collect());
        };
        if list.is_empty() {
            return Err(self.err(key, "is empty; leave it out for the defaults"));
        }
        for (i, p) in list.iter().enumerate() {
            if p == "default" {
                out.extend(
                    defaults
                        .iter()
                        .filter_map(|p| ProposalSpec::parse(protocol, p).ok()),
                );
                continue;
            }
            out.push(
                ProposalSpec::parse(protocol, p)
                    .map_err(|e| self.err(format!("{key}[{i}]"), e.to_string()))?,
            );
        }
        Ok(out)
    }

    fn addrs(&self, key: &str, list: &Option<Vec<String>>) -> Result<Vec<AddrSpec>> {
        let Some(list) = list else {
            return Ok(vec![AddrSpec::Any(None)]);
        };
        if list.is_empty() {
            return Err(self.err(key, "is empty; write [\"%any\"] to accept any address"));
        }
        list.iter()
            .enumerate()
            .map(|(i, a)| value::parse_addr_spec(a).map_err(|e| self.err(format!("{key}[{i}]"), e)))
            .collect()
    }

    fn ips(&self, key: &str, list: &Option<Vec<String>>) -> Result<Vec<IpAddr>> {
        list.iter()
            .flatten()
            .enumerate()
            .map(|(i, a)| {
                a.trim().parse().map_err(|_| {
                    self.err(format!("{key}[{i}]"), format!("`{a}` is not an IP address"))
                })
            })
            .collect()
    }

    fn ts(&self, key: &str, list: &Option<Vec<String>>) -> Result<Vec<TsSpec>> {
        let Some(list) = list else {
            return Ok(vec![
                value::parse_ts("dynamic").map_err(|e| self.err(key, e))?,
            ]);
        };
        if list.is_empty() {
            return Err(self.err(key, "is empty; leave it out for `dynamic`"));
        }
        list.iter()
            .enumerate()
            .map(|(i, t)| value::parse_ts(t).map_err(|e| self.err(format!("{key}[{i}]"), e)))
            .collect()
    }

    fn certs(&self, key: &str, list: &[String]) -> Result<Vec<Certificate>> {
        let mut out = Vec::new();
        for (i, f) in list.iter().enumerate() {
            let path = self.path(f);
            out.extend(
                Certificate::load(&path)
                    .map_err(|e| self.err(format!("{key}[{i}]"), e.to_string()))?,
            );
        }
        Ok(out)
    }

    fn identity(&self, key: &str, s: &Option<String>) -> Result<Option<Identity>> {
        s.as_deref()
            .map(|s| Identity::parse(s).map_err(|e| self.err(key, e.to_string())))
            .transpose()
    }
}

/// A loaded `[secrets.private<suffix>]` key.
struct KeyFile {
    path: PathBuf,
    public: PublicKey,
}

pub(crate) fn validate(raw: RawConfig, ctx: &Ctx<'_>) -> Result<Config> {
    let daemon = daemon(&raw.daemon, ctx)?;
    let mut pools = BTreeMap::new();
    for (name, p) in &raw.pools {
        let key = format!("pools.{name}");
        let (first, last) =
            value::parse_pool(&p.addrs).map_err(|e| ctx.err(format!("{key}.addrs"), e))?;
        let dns = ctx.ips(&format!("{key}.dns"), &p.dns)?;
        pools.insert(
            name.clone(),
            Pool {
                name: name.clone(),
                first,
                last,
                dns,
            },
        );
    }
    let (shared_secrets, keys) = secrets(&raw.secrets, ctx)?;
    let mut connections = BTreeMap::new();
    for (name, c) in &raw.connections {
        let conn = connection(name, c, ctx, &pools, &shared_secrets, &keys)?;
        connections.insert(name.clone(), conn);
    }
    Ok(Config {
        file: ctx.file.to_owned(),
        daemon,
        connections,
        pools,
        shared_secrets: crate::auth::SharedSecrets::new(shared_secrets),
    })
}

fn daemon(d: &RawDaemon, ctx: &Ctx<'_>) -> Result<DaemonSettings> {
    let listen = match &d.listen {
        None => vec![IpAddr::from([0u8; 4]), IpAddr::from([0u16; 8])],
        Some(l) if l.is_empty() => {
            return Err(ctx.err(
                "daemon.listen",
                "is empty; the daemon would not listen at all",
            ));
        }
        Some(_) => ctx.ips("daemon.listen", &d.listen)?,
    };
    let port = d.port.unwrap_or(500);
    let port_nat_t = d.port_nat_t.unwrap_or(4500);
    if port == port_nat_t {
        return Err(ctx.err(
            "daemon.port_nat_t",
            format!("equals daemon.port ({port}); NAT-T needs its own port"),
        ));
    }
    let timeout = ctx.duration(
        "daemon.retransmit_timeout",
        &d.retransmit_timeout,
        Duration::from_secs(4),
    )?;
    if timeout.is_zero() {
        return Err(ctx.err("daemon.retransmit_timeout", "must be greater than 0"));
    }
    let base = d.retransmit_base.unwrap_or(1.8);
    if !(1.0..=10.0).contains(&base) {
        return Err(ctx.err(
            "daemon.retransmit_base",
            format!("{base} is outside 1.0 to 10.0"),
        ));
    }
    let limit = ctx.optional_duration(
        "daemon.retransmit_limit",
        &d.retransmit_limit,
        Duration::ZERO,
    )?;
    let log_level = ctx.choice(
        "daemon.log_level",
        &d.log_level,
        LogLevel::Info,
        &[
            ("error", LogLevel::Error),
            ("warn", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("debug", LogLevel::Debug),
            ("trace", LogLevel::Trace),
        ],
    )?;
    Ok(DaemonSettings {
        listen,
        port,
        port_nat_t,
        retransmit: Retransmit {
            timeout,
            tries: d.retransmit_tries.unwrap_or(5),
            base,
            limit,
        },
        cookie_threshold: d.cookie_threshold.unwrap_or(30),
        fragment_size: match d.fragment_size {
            None => 1280,
            Some(n) if (576..=65_535).contains(&n) => n,
            Some(n) => {
                return Err(ctx.err(
                    "daemon.fragment_size",
                    format!("{n} is outside 576 to 65535"),
                ));
            }
        },
        half_open_timeout: ctx.duration(
            "daemon.half_open_timeout",
            &d.half_open_timeout,
            Duration::from_secs(30),
        )?,
        bpf_pin_dir: ctx.path(d.bpf_pin_dir.as_deref().unwrap_or("/sys/fs/bpf/roamgate")),
        dataplane_wait: ctx.duration(
            "daemon.dataplane_wait",
            &d.dataplane_wait,
            Duration::from_secs(30),
        )?,
        log_level,
    })
}

fn secrets(
    raw: &BTreeMap<String, RawSecretSection>,
    ctx: &Ctx<'_>,
) -> Result<(Vec<SharedSecret>, Vec<KeyFile>)> {
    let mut shared = Vec::new();
    let mut keys = Vec::new();
    for (name, s) in raw {
        let key = format!("secrets.{name}");
        if name.starts_with("ike") {
            if s.file.is_some() {
                return Err(ctx.err(
                    format!("{key}.file"),
                    "an ike secret takes `secret`, not `file`",
                ));
            }
            let secret = s
                .secret
                .as_ref()
                .ok_or_else(|| ctx.err(format!("{key}.secret"), "missing"))?;
            let secret =
                value::decode_secret(&secret.0).map_err(|e| ctx.err(format!("{key}.secret"), e))?;
            let mut ids = Vec::new();
            if let Some(list) = &s.id {
                let many = matches!(list, super::raw::OneOrMany::Many(_));
                for (i, id) in list.as_slice().iter().enumerate() {
                    let k = if many {
                        format!("{key}.id[{i}]")
                    } else {
                        format!("{key}.id")
                    };
                    ids.push(Identity::parse(id).map_err(|e| ctx.err(k, e.to_string()))?);
                }
            }
            shared.push(SharedSecret {
                name: name.clone(),
                ids,
                secret,
            });
        } else if ["private", "rsa", "ecdsa", "pkcs8"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            if s.secret.is_some() {
                return Err(ctx.err(
                    format!("{key}.secret"),
                    "encrypted private keys are not supported; store the key unencrypted with tight file permissions",
                ));
            }
            if s.id.is_some() {
                return Err(ctx.err(
                    format!("{key}.id"),
                    "a private key takes no id; it is matched to certificates by its public key",
                ));
            }
            let file = s
                .file
                .as_ref()
                .ok_or_else(|| ctx.err(format!("{key}.file"), "missing"))?;
            let path = ctx.path(file);
            let bytes = std::fs::read(&path)
                .map_err(|e| ctx.err(format!("{key}.file"), format!("{}: {e}", path.display())))?;
            let bytes = zeroize::Zeroizing::new(bytes);
            let k = PrivateKey::from_pem_or_der(&bytes)
                .map_err(|e| ctx.err(format!("{key}.file"), format!("{}: {e}", path.display())))?;
            keys.push(KeyFile {
                path,
                public: k.public_key().clone(),
            });
        } else {
            let kind: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            return Err(ctx.err(
                key,
                format!("secret type `{kind}` is not supported; name the table ike<suffix> (pre-shared key) or private<suffix> (key file)"),
            ));
        }
    }
    Ok((shared, keys))
}

fn connection(
    name: &str,
    c: &RawConnection,
    ctx: &Ctx<'_>,
    pools: &BTreeMap<String, Pool>,
    shared: &[SharedSecret],
    keys: &[KeyFile],
) -> Result<Connection> {
    let key = format!("connections.{name}");
    if let Some(v) = c.version
        && v != 0
        && v != 2
    {
        return Err(ctx.err(
            format!("{key}.version"),
            format!("IKEv{v} is not supported; only 2 (or 0 for any)"),
        ));
    }
    let local_addrs = ctx.addrs(&format!("{key}.local_addrs"), &c.local_addrs)?;
    let links = c.links.clone().unwrap_or_default();
    for (i, link) in links.iter().enumerate() {
        let valid = !link.is_empty()
            && link.len() < 16
            && !link.contains(['/', ' ', '\t'])
            && link != "."
            && link != "..";
        if !valid {
            return Err(ctx.err(
                format!("{key}.links"),
                format!("{link:?} is not an interface name (1 to 15 characters, no '/' or spaces)"),
            ));
        }
        if links[..i].contains(link) {
            return Err(ctx.err(format!("{key}.links"), format!("{link:?} is listed twice")));
        }
    }
    let remote_addrs = ctx.addrs(&format!("{key}.remote_addrs"), &c.remote_addrs)?;
    let proposals = ctx.proposals(
        &format!("{key}.proposals"),
        &c.proposals,
        Protocol::Ike,
        DEFAULT_IKE_PROPOSALS,
    )?;
    let vips = ctx.ips(&format!("{key}.vips"), &c.vips)?;
    let pool_names = c.pools.clone().unwrap_or_default();
    for (i, p) in pool_names.iter().enumerate() {
        if !pools.contains_key(p) {
            return Err(ctx.err(format!("{key}.pools[{i}]"), format!("no [pools.{p}] table")));
        }
    }
    let rekey_time = ctx.optional_duration(
        &format!("{key}.rekey_time"),
        &c.rekey_time,
        Duration::from_secs(4 * 3600),
    )?;
    let reauth_time = ctx.optional_duration(
        &format!("{key}.reauth_time"),
        &c.reauth_time,
        Duration::ZERO,
    )?;
    let longest = rekey_time.max(reauth_time).unwrap_or(Duration::ZERO);
    let over_time = ctx.duration(&format!("{key}.over_time"), &c.over_time, longest / 10)?;
    let rand_time = ctx.duration(&format!("{key}.rand_time"), &c.rand_time, over_time)?;
    if let Some(r) = rekey_time.into_iter().chain(reauth_time).min()
        && rand_time >= r
    {
        return Err(ctx.err(
            format!("{key}.rand_time"),
            "must be shorter than rekey_time and reauth_time",
        ));
    }

    let raw_local = c.local.as_ref().ok_or_else(|| {
        ctx.err(
            format!("{key}.local"),
            "missing: every connection needs a [connections.<name>.local] table with `auth`",
        )
    })?;
    let raw_remote = c.remote.as_ref().ok_or_else(|| {
        ctx.err(
            format!("{key}.remote"),
            "missing: every connection needs a [connections.<name>.remote] table with `auth`",
        )
    })?;

    // Local side.
    let lkey = format!("{key}.local");
    let local_id = ctx.identity(&format!("{lkey}.id"), &raw_local.id)?;
    if let Some(id) = &local_id
        && id.has_wildcard()
    {
        return Err(ctx.err(
            format!("{lkey}.id"),
            format!("`{id}` is a pattern; our own identity must be exact"),
        ));
    }
    #[derive(Clone, Copy)]
    enum Auth {
        Psk,
        PubKey(RsaPadding),
    }
    let auth_table = [
        ("psk", Auth::Psk),
        ("pubkey", Auth::PubKey(RsaPadding::Pkcs1)),
        ("rsa/pss", Auth::PubKey(RsaPadding::Pss)),
    ];
    let local_auth = ctx.choice(
        &format!("{lkey}.auth"),
        &raw_local.auth,
        Auth::PubKey(RsaPadding::Pkcs1),
        &auth_table,
    )?;
    let local_method = match local_auth {
        Auth::Psk => {
            if raw_local.certs.is_some() {
                return Err(ctx.err(
                    format!("{lkey}.certs"),
                    "certificates need auth = \"pubkey\"",
                ));
            }
            LocalMethod::Psk
        }
        Auth::PubKey(padding) => {
            let files = raw_local.certs.clone().unwrap_or_default();
            if files.is_empty() {
                return Err(ctx.err(
                    format!("{lkey}.certs"),
                    "auth = \"pubkey\" needs our certificate (and chain)",
                ));
            }
            let chain = ctx.certs(&format!("{lkey}.certs"), &files)?;
            let ee = &chain[0];
            let key_file = keys
                .iter()
                .find(|k| &k.public == ee.public_key())
                .ok_or_else(|| {
                    ctx.err(
                        format!("{lkey}.certs[0]"),
                        format!(
                            "no [secrets.private*] key matches certificate `{}`",
                            ee.subject()
                        ),
                    )
                })?;
            let cert_paths: Vec<PathBuf> = files.iter().map(|f| ctx.path(f)).collect();
            let refs: Vec<&Path> = cert_paths.iter().map(PathBuf::as_path).collect();
            let cred = Credential::load(&key_file.path, &refs)
                .map_err(|e| ctx.err(format!("{lkey}.certs"), e.to_string()))?
                .with_rsa_padding(padding);
            if let Some(id) = &local_id
                && !cred.certificate().binds(id)
            {
                return Err(ctx.err(
                    format!("{lkey}.id"),
                    format!(
                        "`{id}` is neither the subject nor a subjectAltName of `{}`",
                        cred.certificate().subject()
                    ),
                ));
            }
            LocalMethod::PubKey(std::sync::Arc::new(cred))
        }
    };

    // Remote side.
    let rkey = format!("{key}.remote");
    let remote_id = ctx
        .identity(&format!("{rkey}.id"), &raw_remote.id)?
        .unwrap_or(Identity::Any);
    let remote_auth = ctx.choice(
        &format!("{rkey}.auth"),
        &raw_remote.auth,
        Auth::PubKey(RsaPadding::Pkcs1),
        &auth_table,
    )?;
    let remote_method = match remote_auth {
        Auth::Psk => {
            if raw_remote.cacerts.is_some() {
                return Err(ctx.err(
                    format!("{rkey}.cacerts"),
                    "CA certificates need auth = \"pubkey\"",
                ));
            }
            RemoteMethod::Psk
        }
        Auth::PubKey(_) => {
            let files = raw_remote.cacerts.clone().unwrap_or_default();
            if files.is_empty() {
                return Err(ctx.err(
                    format!("{rkey}.cacerts"),
                    "auth = \"pubkey\" needs at least one trust anchor",
                ));
            }
            let cas = ctx.certs(&format!("{rkey}.cacerts"), &files)?;
            RemoteMethod::PubKey(std::sync::Arc::new(
                TrustStore::new(cas)
                    .map_err(|e| ctx.err(format!("{rkey}.cacerts"), e.to_string()))?,
            ))
        }
    };
    if matches!(local_auth, Auth::Psk) || matches!(remote_auth, Auth::Psk) {
        let usable = shared.iter().any(|s| {
            s.ids.is_empty()
                || s.ids
                    .iter()
                    .any(|id| remote_id.matches(id).is_some() || local_id.as_ref() == Some(id))
        });
        if !usable {
            let which = if matches!(remote_auth, Auth::Psk) {
                &rkey
            } else {
                &lkey
            };
            return Err(ctx.err(
                format!("{which}.auth"),
                format!("auth = \"psk\" but no [secrets.ike*] table has an id matching `{remote_id}` or our id"),
            ));
        }
    }

    let mut children = BTreeMap::new();
    for (cname, ch) in &c.children {
        children.insert(
            cname.clone(),
            child(&format!("{key}.children.{cname}"), cname, ch, ctx)?,
        );
    }
    Ok(Connection {
        name: name.to_owned(),
        local_addrs,
        links,
        remote_addrs,
        local_port: c.local_port.unwrap_or(500),
        remote_port: c.remote_port.unwrap_or(500),
        proposals,
        vips,
        pools: pool_names,
        encap: c.encap.unwrap_or(false),
        mobike: c.mobike.unwrap_or(true),
        return_routability: {
            use crate::engine::ReturnRoutability as R;
            ctx.choice(
                &format!("{key}.return_routability"),
                &c.return_routability,
                R::NewAddresses,
                &[
                    ("always", R::Always),
                    ("new_addresses", R::NewAddresses),
                    ("never", R::Never),
                    ("certificate", R::Certificate),
                ],
            )?
        },
        dpd_delay: ctx.optional_duration(
            &format!("{key}.dpd_delay"),
            &c.dpd_delay,
            Duration::ZERO,
        )?,
        hold: ctx.optional_duration(&format!("{key}.hold"), &c.hold, Duration::ZERO)?,
        fragmentation: c.fragmentation.unwrap_or(true),
        send_certreq: c.send_certreq.unwrap_or(true),
        send_cert: ctx.choice(
            &format!("{key}.send_cert"),
            &c.send_cert,
            SendCert::IfAsked,
            &[
                ("always", SendCert::Always),
                ("ifasked", SendCert::IfAsked),
                ("never", SendCert::Never),
            ],
        )?,
        keyingtries: c.keyingtries.unwrap_or(1),
        unique: ctx.choice(
            &format!("{key}.unique"),
            &c.unique,
            Unique::No,
            &[
                ("no", Unique::No),
                ("never", Unique::Never),
                ("keep", Unique::Keep),
                ("replace", Unique::Replace),
            ],
        )?,
        rekey_time,
        reauth_time,
        over_time,
        rand_time,
        local: LocalAuth {
            id: local_id,
            method: local_method,
        },
        remote: RemoteAuth {
            id: remote_id,
            method: remote_method,
        },
        children,
    })
}

fn child(key: &str, name: &str, c: &RawChild, ctx: &Ctx<'_>) -> Result<Child> {
    let rekey_time = ctx.optional_duration(
        &format!("{key}.rekey_time"),
        &c.rekey_time,
        Duration::from_secs(3600),
    )?;
    let life_default = rekey_time.map_or(Duration::ZERO, |r| r + r / 10);
    let life_time =
        ctx.optional_duration(&format!("{key}.life_time"), &c.life_time, life_default)?;
    if let (Some(r), Some(l)) = (rekey_time, life_time)
        && l <= r
    {
        return Err(ctx.err(format!("{key}.life_time"), "must be longer than rekey_time"));
    }
    let rand_default = match (rekey_time, life_time) {
        (Some(r), Some(l)) => l - r,
        _ => Duration::ZERO,
    };
    let rand_time = ctx.duration(&format!("{key}.rand_time"), &c.rand_time, rand_default)?;
    if let Some(r) = rekey_time
        && rand_time >= r
    {
        return Err(ctx.err(
            format!("{key}.rand_time"),
            "must be shorter than rekey_time",
        ));
    }
    let gone = [
        ("clear", PeerGoneAction::Clear),
        ("none", PeerGoneAction::Clear),
        ("trap", PeerGoneAction::Trap),
        ("restart", PeerGoneAction::Restart),
        ("start", PeerGoneAction::Restart),
    ];
    Ok(Child {
        name: name.to_owned(),
        local_ts: ctx.ts(&format!("{key}.local_ts"), &c.local_ts)?,
        remote_ts: ctx.ts(&format!("{key}.remote_ts"), &c.remote_ts)?,
        esp_proposals: ctx.proposals(
            &format!("{key}.esp_proposals"),
            &c.esp_proposals,
            Protocol::Esp,
            DEFAULT_ESP_PROPOSALS,
        )?,
        mode: ctx.choice(
            &format!("{key}.mode"),
            &c.mode,
            Mode::Tunnel,
            &[
                ("tunnel", Mode::Tunnel),
                ("beet", Mode::Beet),
                ("transport", Mode::Transport),
            ],
        )?,
        start_action: ctx.choice(
            &format!("{key}.start_action"),
            &c.start_action,
            StartAction::None,
            &[
                ("none", StartAction::None),
                ("trap", StartAction::Trap),
                ("start", StartAction::Start),
            ],
        )?,
        dpd_action: ctx.choice(
            &format!("{key}.dpd_action"),
            &c.dpd_action,
            PeerGoneAction::Clear,
            &gone,
        )?,
        close_action: ctx.choice(
            &format!("{key}.close_action"),
            &c.close_action,
            PeerGoneAction::Clear,
            &gone,
        )?,
        rekey_time,
        life_time,
        rand_time,
    })
}
