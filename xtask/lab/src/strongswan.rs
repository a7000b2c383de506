//! strongSwan 5.9.8 as a lab peer: one charon per namespace, configured from Rust.
//!
//! As DESIGN.md records for these machines: the kernel has no ESP, so charon runs the
//! `kernel-libipsec` plugin (userspace ESP over a TUN device) with `kernel-netlink`; each charon
//! gets a private `/run` (`unshare -m` + tmpfs) and reads `/etc/netns/<ns>/strongswan.conf` and
//! `/etc/netns/<ns>/swanctl/`, which `ip netns exec` binds over `/etc`; its vici socket is a
//! per-namespace path that `swanctl --uri` names.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::netns::Netns;
use crate::process::{Supervised, tail, wait_for};

/// charon's path in Debian's strongswan-charon.
pub const CHARON: &str = "/usr/lib/ipsec/charon";

/// The plugins each lab charon loads (no `kernel-netlink` ESP: the kernel has none).
pub const PLUGINS: &str = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints sha1 sha2 hmac gcm aes kdf attr kernel-libipsec kernel-netlink socket-default vici updown";

/// A section of a swanctl.conf or strongswan.conf, written one setting per line.
#[derive(Debug, Clone, Default)]
pub struct Section {
    entries: Vec<(String, Entry)>,
}

#[derive(Debug, Clone)]
enum Entry {
    Value(String),
    Section(Section),
}

impl Section {
    /// An empty section.
    pub fn new() -> Section {
        Section::default()
    }

    /// Adds `key = value`.
    pub fn set(mut self, key: &str, value: impl std::fmt::Display) -> Section {
        self.entries
            .push((key.to_string(), Entry::Value(value.to_string())));
        self
    }

    /// Adds a subsection `name { … }`.
    pub fn section(mut self, name: &str, section: Section) -> Section {
        self.entries
            .push((name.to_string(), Entry::Section(section)));
        self
    }

    /// Renders the section's body, one setting per line, indented by `depth` tabs.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = "\t".repeat(depth);
        for (key, entry) in &self.entries {
            match entry {
                Entry::Value(v) => {
                    let _ = writeln!(out, "{pad}{key} = {v}");
                }
                Entry::Section(s) => {
                    let _ = writeln!(out, "{pad}{key} {{");
                    s.write(out, depth + 1);
                    let _ = writeln!(out, "{pad}}}");
                }
            }
        }
    }
}

/// A file charon loads from its swanctl folder: a CA certificate (`x509ca`), its own
/// certificate (`x509`) or a private key (`rsa`, `ecdsa`, `private`).
#[derive(Debug, Clone)]
pub struct Credential {
    /// The swanctl sub-folder.
    pub dir: &'static str,
    /// The file to copy there.
    pub file: PathBuf,
}

impl Credential {
    /// The credentials of a peer with certificate `own` issued by `ca`: the CA certificate,
    /// its certificate and its private key.
    pub fn peer(ca: &crate::pki::Issued, own: &crate::pki::Issued) -> Vec<Credential> {
        vec![
            Credential {
                dir: "x509ca",
                file: ca.cert.clone(),
            },
            Credential {
                dir: "x509",
                file: own.cert.clone(),
            },
            Credential {
                dir: own.kind.swanctl_dir(),
                file: own.key.clone(),
            },
        ]
    }
}

/// How a lab charon starts beyond its swanctl.conf.
#[derive(Debug, Clone, Default)]
pub struct CharonOptions {
    /// Extra filelog levels (`("chd", 4)` logs CHILD_SA keys), replacing the defaults for those
    /// subsystems.
    pub log_levels: Vec<(&'static str, u8)>,
    /// Certificates and keys to install in the swanctl folders before loading.
    pub credentials: Vec<Credential>,
    /// Extra `charon.<key> = <value>` settings of strongswan.conf (for example
    /// `("cookie_threshold", "100000")`).
    pub settings: Vec<(&'static str, String)>,
}

/// A running charon in one namespace.
#[derive(Debug)]
pub struct Charon {
    netns: String,
    vici: PathBuf,
    log: PathBuf,
    process: Supervised,
}

impl Charon {
    /// Writes the configuration for namespace `ns`, starts charon there (as `charon-<role>`),
    /// waits for its vici socket, and loads `swanctl` (the body of a swanctl.conf).
    pub fn start(lab: &Lab, ns: &Netns, role: &str, swanctl: &Section) -> Result<Charon> {
        Charon::start_with(lab, ns, role, swanctl, &CharonOptions::default())
    }

    /// Like [`Charon::start`], with extra log levels and credentials.
    pub fn start_with(
        lab: &Lab,
        ns: &Netns,
        role: &str,
        swanctl: &Section,
        options: &CharonOptions,
    ) -> Result<Charon> {
        for program in [CHARON, "swanctl", "unshare"] {
            cmd::require(program)?;
        }
        let vici_dir = Path::new("/tmp/roamgate-vici");
        std::fs::create_dir_all(vici_dir)
            .map_err(|e| LabError::io(format!("creating {}", vici_dir.display()), e))?;
        let vici = vici_dir.join(format!("{}.vici", ns.name()));
        let _ = std::fs::remove_file(&vici);
        let log = lab.logs().join(format!("charon-{role}.log"));
        let mut levels: Vec<(&str, u8)> = vec![
            ("default", 1),
            ("ike", 2),
            ("knl", 2),
            ("net", 1),
            ("cfg", 1),
        ];
        for &(subsystem, level) in &options.log_levels {
            match levels.iter_mut().find(|(s, _)| *s == subsystem) {
                Some(entry) => entry.1 = level,
                None => levels.push((subsystem, level)),
            }
        }
        let mut filelog = Section::new()
            .set("path", log.display())
            .set("time_format", "%H:%M:%S")
            .set("ike_name", "yes")
            .set("flush_line", "yes");
        for (subsystem, level) in levels {
            filelog = filelog.set(subsystem, level);
        }
        let mut charon = Section::new();
        for (key, value) in &options.settings {
            charon = charon.set(key, value);
        }
        let conf = Section::new().section(
            "charon",
            charon
                .set("load", PLUGINS)
                .set("port", 500)
                .set("port_nat_t", 4500)
                .set("install_virtual_ip", "yes")
                .section(
                    "plugins",
                    Section::new()
                        .section(
                            "vici",
                            Section::new().set("socket", format!("unix://{}", vici.display())),
                        )
                        .section(
                            "kernel-libipsec",
                            Section::new().set("allow_peer_ts", "yes"),
                        ),
                )
                .section("filelog", Section::new().section("lab", filelog)),
        );
        let etc = ns.etc_dir();
        let swanctl_dir = etc.join("swanctl");
        for sub in ["", "x509", "x509ca", "private", "ecdsa", "rsa", "conf.d"] {
            let d = swanctl_dir.join(sub);
            std::fs::create_dir_all(&d)
                .map_err(|e| LabError::io(format!("creating {}", d.display()), e))?;
        }
        for credential in &options.credentials {
            let name = credential.file.file_name().ok_or_else(|| {
                LabError::Usage(format!("{} names no file", credential.file.display()))
            })?;
            let to = swanctl_dir.join(credential.dir).join(name);
            std::fs::copy(&credential.file, &to).map_err(|e| {
                LabError::io(
                    format!("copying {} to {}", credential.file.display(), to.display()),
                    e,
                )
            })?;
        }
        let strongswan_conf = conf.render();
        let swanctl_conf = swanctl.render();
        write(&etc.join("strongswan.conf"), &strongswan_conf)?;
        write(&swanctl_dir.join("swanctl.conf"), &swanctl_conf)?;
        lab.write_log(&format!("strongswan-{role}.conf"), &strongswan_conf)?;
        lab.write_log(&format!("swanctl-{role}.conf"), &swanctl_conf)?;

        let mut command = ns.command("unshare");
        command.args([
            "-m",
            "sh",
            "-c",
            &format!("mount -t tmpfs none /run && exec {CHARON}"),
        ]);
        let mut process = Supervised::spawn(&format!("charon-{role}-stdio"), command, lab.logs())?;
        let ok = wait_for(
            &format!("charon's vici socket in {}", ns.name()),
            Duration::from_secs(15),
            lab.logs(),
            || {
                if process.check_running().is_err() {
                    return Some(false);
                }
                vici.exists().then_some(true)
            },
        )?;
        if !ok {
            return Err(LabError::StrongSwan {
                netns: ns.name().to_string(),
                message: format!(
                    "charon exited at start; its log ends with:\n{}\n{}",
                    tail(process.log(), 10),
                    tail(&log, 10)
                ),
            });
        }
        let charon = Charon {
            netns: ns.name().to_string(),
            vici,
            log,
            process,
        };
        charon.load_all()?;
        Ok(charon)
    }

    /// (Re)loads the namespace's swanctl.conf: connections, pools and secrets.
    pub fn load_all(&self) -> Result<()> {
        self.swanctl(&["--load-all", "--noprompt"]).map(|_| ())
    }

    /// charon's process id (in the lab's namespace; `unshare` and `sh` exec it in place).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// charon's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Runs `swanctl args…` against this charon and returns its output.
    pub fn swanctl(&self, args: &[&str]) -> Result<String> {
        let uri = format!("unix://{}", self.vici.display());
        // swanctl takes its command first, then the command's options (`--uri` among them).
        let mut full = vec!["netns", "exec", &self.netns, "swanctl"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--uri", &uri]);
        cmd::run_text("ip", &full).map_err(|e| LabError::StrongSwan {
            netns: self.netns.clone(),
            message: format!("{e}; charon's log ends with:\n{}", tail(&self.log, 15)),
        })
    }

    /// Initiates CHILD_SA `child` of connection `ike` and waits for the result.
    pub fn initiate(&self, ike: &str, child: &str) -> Result<()> {
        self.swanctl(&[
            "--initiate",
            "--ike",
            ike,
            "--child",
            child,
            "--timeout",
            "20",
        ])
        .map(|_| ())
    }

    /// Rekeys CHILD_SA `child` (`swanctl --rekey --child`).
    pub fn rekey_child(&self, child: &str) -> Result<()> {
        self.swanctl(&["--rekey", "--child", child]).map(|_| ())
    }

    /// Rekeys IKE SA `ike` (`swanctl --rekey --ike`).
    pub fn rekey_ike(&self, ike: &str) -> Result<()> {
        self.swanctl(&["--rekey", "--ike", ike]).map(|_| ())
    }

    /// Terminates IKE SA `ike`.
    pub fn terminate(&self, ike: &str) -> Result<()> {
        self.swanctl(&["--terminate", "--ike", ike, "--timeout", "10"])
            .map(|_| ())
    }

    /// The IKE SAs as `swanctl --list-sas` shows them.
    pub fn list_sas(&self) -> Result<Vec<IkeSa>> {
        Ok(parse_list_sas(&self.swanctl(&["--list-sas"])?))
    }

    /// Waits until IKE SA `ike` is ESTABLISHED with CHILD_SA `child` INSTALLED.
    pub fn wait_established(&self, ike: &str, child: &str, timeout: Duration) -> Result<IkeSa> {
        let logs = self.log.parent().unwrap_or(Path::new("/tmp")).to_path_buf();
        wait_for(
            &format!("{ike}/{child} ESTABLISHED/INSTALLED in {}", self.netns),
            timeout,
            &logs,
            || {
                self.list_sas().ok()?.into_iter().find(|sa| {
                    sa.name == ike
                        && sa.state == "ESTABLISHED"
                        && sa
                            .children
                            .iter()
                            .any(|c| c.name == child && c.state == "INSTALLED")
                })
            },
        )
    }

    /// Fails with charon's log tail if charon has exited.
    pub fn check_running(&mut self) -> Result<()> {
        self.process.check_running()
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

/// An IKE SA as `swanctl --list-sas` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IkeSa {
    /// The connection name.
    pub name: String,
    /// ESTABLISHED, CONNECTING, …
    pub state: String,
    /// The initiator's IKE SPI, hex (16 digits).
    pub spi_i: String,
    /// The responder's IKE SPI, hex.
    pub spi_r: String,
    /// The local address and port, `198.18.1.2[4500]`.
    pub local: String,
    /// The remote address and port.
    pub remote: String,
    /// The virtual IPs assigned to the local side.
    pub local_vips: Vec<String>,
    /// The negotiated IKE algorithms, e.g. `AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519`.
    pub algorithms: String,
    /// Its CHILD_SAs.
    pub children: Vec<ChildSa>,
}

impl IkeSa {
    /// The remote address without the port.
    pub fn remote_addr(&self) -> &str {
        self.remote.split('[').next().unwrap_or("")
    }

    /// The local address without the port.
    pub fn local_addr(&self) -> &str {
        self.local.split('[').next().unwrap_or("")
    }
}

/// A CHILD_SA as `swanctl --list-sas` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildSa {
    /// The child name.
    pub name: String,
    /// INSTALLED, REKEYED, …
    pub state: String,
    /// `TUNNEL`, `TUNNEL-in-UDP`, …
    pub mode: String,
    /// The ESP algorithms.
    pub algorithms: String,
    /// Inbound SPI, hex.
    pub spi_in: String,
    /// Outbound SPI, hex.
    pub spi_out: String,
}

/// Parses the human output of `swanctl --list-sas`.
pub fn parse_list_sas(text: &str) -> Vec<IkeSa> {
    let mut sas: Vec<IkeSa> = Vec::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if indent == 0 && t.contains(": #") && t.contains("IKEv") {
            let mut parts = t.split(", ");
            let name = parts.next().and_then(|p| p.split(':').next()).unwrap_or("");
            let state = parts.next().unwrap_or("");
            // `IKEv2, 8c1e0a6b3f9d2e01_i* 1b2c3d4e5f607182_r`: the star marks our side.
            let spis = parts.nth(1).unwrap_or("");
            let spi = |suffix: &str| {
                spis.split_whitespace()
                    .find_map(|s| s.trim_end_matches('*').strip_suffix(suffix))
                    .unwrap_or("")
                    .to_string()
            };
            sas.push(IkeSa {
                name: name.into(),
                state: state.into(),
                spi_i: spi("_i"),
                spi_r: spi("_r"),
                ..IkeSa::default()
            });
            continue;
        }
        let Some(sa) = sas.last_mut() else { continue };
        if indent == 2 {
            if let Some(rest) = t.strip_prefix("local ") {
                sa.local = after_at(rest);
                if let Some(vips) = rest.split_once(" [") {
                    sa.local_vips = vips
                        .1
                        .trim_end_matches(']')
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                }
            } else if let Some(rest) = t.strip_prefix("remote ") {
                sa.remote = after_at(rest);
            } else if t.contains(": #") && t.contains("reqid") {
                let parts: Vec<&str> = t.split(", ").collect();
                sa.children.push(ChildSa {
                    name: parts[0].split(':').next().unwrap_or("").into(),
                    state: parts.get(2).copied().unwrap_or("").into(),
                    mode: parts.get(3).copied().unwrap_or("").into(),
                    algorithms: parts.get(4..).map(|p| p.join(", ")).unwrap_or_default(),
                    ..ChildSa::default()
                });
            } else if sa.algorithms.is_empty() && t.contains('/') && !t.contains(' ') {
                sa.algorithms = t.into();
            }
        } else if indent >= 4
            && let Some(child) = sa.children.last_mut()
        {
            let spi = |rest: &str| rest.split([',', ' ']).next().unwrap_or("").to_string();
            if let Some(rest) = t.strip_prefix("in ") {
                child.spi_in = spi(rest.trim());
            } else if let Some(rest) = t.strip_prefix("out ") {
                child.spi_out = spi(rest.trim());
            }
        }
    }
    sas
}

fn after_at(rest: &str) -> String {
    rest.split(" @ ")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or("")
        .to_string()
}

/// What a lab tunnel negotiates.
#[derive(Debug, Clone)]
pub struct TunnelParams {
    /// IKE proposals (strongSwan keywords).
    pub proposals: String,
    /// ESP proposals.
    pub esp_proposals: String,
    /// DPD interval.
    pub dpd_delay: Duration,
    /// MOBIKE on or off.
    pub mobike: bool,
    /// The pre-shared key (the lab's own; never a real secret).
    pub psk: String,
    /// How both ends authenticate.
    pub auth: LabAuth,
    /// The virtual IPs a road-warrior client asks for (strongSwan's `vips`): `0.0.0.0` for
    /// an IPv4 address, `0.0.0.0,::` for one of each family.
    pub vips: String,
}

/// How a lab peer authenticates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LabAuth {
    /// With [`TunnelParams::psk`].
    #[default]
    Psk,
    /// With certificates: each end's own certificate file name in its `swanctl/x509/`
    /// folder (see [`CharonOptions::credentials`]); the peer is trusted through the CA in
    /// `x509ca/`. The identities are the certificates' subjectAltNames ([`RW_ID`], [`GW_ID`]).
    Pubkey {
        /// The certificate file name (no folder).
        cert: String,
    },
}

impl Default for TunnelParams {
    fn default() -> Self {
        TunnelParams {
            proposals: "aes128gcm16-prfsha256-x25519".into(),
            esp_proposals: "aes128gcm16".into(),
            dpd_delay: Duration::from_secs(2),
            mobike: true,
            psk: "lab-only-pre-shared-key-0123456789".into(),
            auth: LabAuth::Psk,
            vips: "0.0.0.0".into(),
        }
    }
}

/// The road warrior's identity in the lab.
pub const RW_ID: &str = "rw@roamgate.test";
/// The gateway's identity in the lab.
pub const GW_ID: &str = "gw.roamgate.test";

fn psk_secrets(params: &TunnelParams, a: &str, b: &str) -> Section {
    match params.auth {
        LabAuth::Psk => Section::new().section(
            "ike-lab",
            Section::new()
                .set("id-1", a)
                .set("id-2", b)
                .set("secret", format!("\"{}\"", params.psk)),
        ),
        LabAuth::Pubkey { .. } => Section::new(),
    }
}

/// The `local` and `remote` sections of a connection between identities `local_id` and
/// `remote_id`.
fn auth_sections(params: &TunnelParams, local_id: &str, remote_id: &str) -> (Section, Section) {
    match &params.auth {
        LabAuth::Psk => (
            Section::new().set("auth", "psk").set("id", local_id),
            Section::new().set("auth", "psk").set("id", remote_id),
        ),
        LabAuth::Pubkey { cert } => (
            Section::new()
                .set("auth", "pubkey")
                .set("certs", cert)
                .set("id", local_id),
            Section::new().set("auth", "pubkey").set("id", remote_id),
        ),
    }
}

/// A connection between identities `local_id` and `remote_id` with what every lab
/// connection has: MOBIKE and DPD as `params` say, its IKE proposals and authentication.
/// The caller adds the addresses and children.
fn connection(params: &TunnelParams, local_id: &str, remote_id: &str) -> Section {
    let (local, remote) = auth_sections(params, local_id, remote_id);
    Section::new()
        .set("mobike", yes(params.mobike))
        .set("dpd_delay", format!("{}s", params.dpd_delay.as_secs()))
        .set("proposals", &params.proposals)
        .section("local", local)
        .section("remote", remote)
}

/// swanctl.conf of a road-warrior client: connection `home` (child `lan`) to the gateway's
/// addresses `gw_addrs` (most preferred first), asking for the virtual IPs of
/// [`TunnelParams::vips`], protecting `remote_ts`.
pub fn road_warrior_client(params: &TunnelParams, gw_addrs: &[String], remote_ts: &str) -> Section {
    Section::new()
        .section(
            "connections",
            Section::new().section(
                "home",
                connection(params, RW_ID, GW_ID)
                    .set("remote_addrs", gw_addrs.join(","))
                    .set("vips", &params.vips)
                    .section(
                        "children",
                        Section::new().section(
                            "lan",
                            Section::new()
                                .set("remote_ts", remote_ts)
                                .set("esp_proposals", &params.esp_proposals)
                                .set("dpd_action", "restart"),
                        ),
                    ),
            ),
        )
        .section("secrets", psk_secrets(params, RW_ID, GW_ID))
}

/// swanctl.conf of a gateway for road warriors: connection `rw` (child `lan`) on `local_addrs`,
/// handing out virtual IPs from [`crate::topology::RW_POOL`], protecting `local_ts`.
pub fn road_warrior_gateway(
    params: &TunnelParams,
    local_addrs: &[String],
    local_ts: &str,
) -> Section {
    Section::new()
        .section(
            "connections",
            Section::new().section(
                "rw",
                connection(params, GW_ID, RW_ID)
                    .set("local_addrs", local_addrs.join(","))
                    .set("pools", "rw_pool")
                    .section(
                        "children",
                        Section::new().section(
                            "lan",
                            Section::new()
                                .set("local_ts", local_ts)
                                .set("esp_proposals", &params.esp_proposals),
                        ),
                    ),
            ),
        )
        .section(
            "pools",
            Section::new().section(
                "rw_pool",
                Section::new().set("addrs", crate::topology::RW_POOL),
            ),
        )
        .section("secrets", psk_secrets(params, GW_ID, RW_ID))
}

/// One end of a site-to-site tunnel: its address, identity and protected prefixes.
#[derive(Debug, Clone)]
pub struct SiteEnd {
    /// The IKE and ESP address.
    pub addr: String,
    /// The identity (an FQDN in the lab).
    pub id: String,
    /// The protected prefixes (`local_ts` / `remote_ts` syntax).
    pub ts: String,
}

/// swanctl.conf of one end of a site-to-site (net-to-net) tunnel: connection `site` (child
/// `net`) from `local` to `remote`, authenticated with [`TunnelParams::psk`]. The end with
/// `initiate` brings the tunnel up as soon as the configuration is loaded.
pub fn site_to_site(
    params: &TunnelParams,
    local: &SiteEnd,
    remote: &SiteEnd,
    initiate: bool,
) -> Section {
    let mut child = Section::new()
        .set("local_ts", &local.ts)
        .set("remote_ts", &remote.ts)
        .set("esp_proposals", &params.esp_proposals);
    if initiate {
        child = child.set("start_action", "start");
    }
    Section::new()
        .section(
            "connections",
            Section::new().section(
                "site",
                connection(params, &local.id, &remote.id)
                    .set("local_addrs", &local.addr)
                    .set("remote_addrs", &remote.addr)
                    .section("children", Section::new().section("net", child)),
            ),
        )
        .section("secrets", psk_secrets(params, &local.id, &remote.id))
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_render_one_setting_per_line() {
        let s = Section::new()
            .set("a", 1)
            .section("b", Section::new().set("c", "x y"));
        assert_eq!(s.render(), "a = 1\nb {\n\tc = x y\n}\n");
    }

    const LIST: &str = "\
home: #1, ESTABLISHED, IKEv2, 8c1e0a6b3f9d2e01_i* 1b2c3d4e5f607182_r
  local  'rw@roamgate.test' @ 198.18.1.2[4500] [10.200.0.1]
  remote 'gw.roamgate.test' @ 198.18.1.1[4500]
  AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519
  established 3s ago, rekeying in 14102s
  active: IKE_DPD
  lan: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-128
    installed 3s ago, rekeying in 3296s, expires in 3957s
    in  c4f2a1b0,    840 bytes,    10 packets,     0s ago
    out ca9b8e7d,    840 bytes,    10 packets,     0s ago
    local  10.200.0.1/32
    remote 10.101.0.0/24
";

    #[test]
    fn list_sas_is_parsed() {
        let sas = parse_list_sas(LIST);
        assert_eq!(sas.len(), 1);
        let sa = &sas[0];
        assert_eq!(sa.name, "home");
        assert_eq!(sa.state, "ESTABLISHED");
        assert_eq!(sa.spi_i, "8c1e0a6b3f9d2e01");
        assert_eq!(sa.spi_r, "1b2c3d4e5f607182");
        assert_eq!(sa.local, "198.18.1.2[4500]");
        assert_eq!(sa.remote_addr(), "198.18.1.1");
        assert_eq!(sa.local_vips, vec!["10.200.0.1".to_string()]);
        assert_eq!(
            sa.algorithms,
            "AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519"
        );
        assert_eq!(sa.children.len(), 1);
        let c = &sa.children[0];
        assert_eq!(c.name, "lan");
        assert_eq!(c.state, "INSTALLED");
        assert_eq!(c.mode, "TUNNEL-in-UDP");
        assert_eq!(c.algorithms, "ESP:AES_GCM_16-128");
        assert_eq!(c.spi_in, "c4f2a1b0");
        assert_eq!(c.spi_out, "ca9b8e7d");
    }
}
