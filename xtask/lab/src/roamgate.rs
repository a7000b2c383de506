//! roamgate's own configuration files for lab tests and the demo, written from typed values
//! (serde + toml), so every test and the demo speak the format docs/config.md and
//! docs/gateway.md describe, and none of them hand-writes TOML; and [`RoamgateGateway`], the
//! two roamgate processes of a lab gateway started the way an operator starts them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::lab::Lab;
use crate::netns::Netns;
use crate::process::Supervised;

use crate::strongswan::{GW_ID, RW_ID, SiteEnd, TunnelParams};
use crate::topology::RW_POOL;

/// `roamgate control`'s configuration (the subset the lab uses).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ControlConfig {
    /// `[daemon]`.
    pub daemon: Daemon,
    /// `[connections.<name>]`.
    pub connections: BTreeMap<String, Connection>,
    /// `[pools.<name>]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, Pool>,
    /// `[secrets.<name>]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretEntry>,
}

/// `[daemon]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Daemon {
    /// The data plane's pinned maps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_pin_dir: Option<String>,
    /// `error` … `trace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// IKE fragment size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_size: Option<u32>,
    /// How long to wait at start for the data plane's readiness marker (`"30s"`; `"0s"`:
    /// not at all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_wait: Option<String>,
}

/// `[connections.<name>]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Connection {
    /// Our addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_addrs: Vec<String>,
    /// The peer's addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_addrs: Vec<String>,
    /// Virtual IPs to ask for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vips: Vec<String>,
    /// IKE proposals.
    pub proposals: Vec<String>,
    /// MOBIKE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobike: Option<bool>,
    /// DPD delay (`"2s"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpd_delay: Option<String>,
    /// Pools to assign virtual IPs from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<String>,
    /// `[connections.<name>.local]`.
    pub local: Auth,
    /// `[connections.<name>.remote]`.
    pub remote: Auth,
    /// `[connections.<name>.children.<child>]`.
    pub children: BTreeMap<String, Child>,
}

/// `local` / `remote`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Auth {
    /// `psk` or `pubkey`.
    pub auth: String,
    /// The identity (or pattern).
    pub id: String,
    /// Our certificate files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<String>,
    /// Trust anchors for the peer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cacerts: Vec<String>,
}

impl Auth {
    /// Pre-shared key authentication as `id`.
    pub fn psk(id: &str) -> Auth {
        Auth {
            auth: "psk".into(),
            id: id.into(),
            ..Auth::default()
        }
    }

    /// Our certificate `cert` (a file), as `id`.
    pub fn own_cert(id: &str, cert: &Path) -> Auth {
        Auth {
            auth: "pubkey".into(),
            id: id.into(),
            certs: vec![cert.display().to_string()],
            ..Auth::default()
        }
    }

    /// A peer `id` whose certificate chains to the CA certificate file `ca`.
    pub fn peer_cert(id: &str, ca: &Path) -> Auth {
        Auth {
            auth: "pubkey".into(),
            id: id.into(),
            cacerts: vec![ca.display().to_string()],
            ..Auth::default()
        }
    }
}

/// `[connections.<name>.children.<child>]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Child {
    /// Our selectors (`dynamic` or prefixes).
    pub local_ts: Vec<String>,
    /// The peer's selectors.
    pub remote_ts: Vec<String>,
    /// ESP proposals.
    pub esp_proposals: Vec<String>,
    /// `none`, `trap` or `start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_action: Option<String>,
}

/// `[pools.<name>]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pool {
    /// A prefix or range.
    pub addrs: String,
}

/// `[secrets.<name>]`: a pre-shared key for identities, or a private key file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretEntry {
    /// The identities a pre-shared key is for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id: Vec<String>,
    /// The pre-shared key (the lab's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A private key file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl SecretEntry {
    /// The lab's pre-shared key for `ids`.
    pub fn psk(params: &TunnelParams, ids: &[&str]) -> SecretEntry {
        SecretEntry {
            id: ids.iter().map(|s| s.to_string()).collect(),
            secret: Some(params.psk.clone()),
            file: None,
        }
    }

    /// A private key file.
    pub fn key_file(path: &Path) -> SecretEntry {
        SecretEntry {
            file: Some(path.display().to_string()),
            ..SecretEntry::default()
        }
    }
}

impl ControlConfig {
    /// The gateway for the lab's road warriors, as strongSwan's
    /// [`road_warrior_gateway`](crate::strongswan::road_warrior_gateway) is: connection `rw`
    /// on `local_addrs`, child `lan` protecting `lan`, virtual IPs from [`RW_POOL`], PSK with
    /// the road warrior identity [`RW_ID`] (change `remote.id` for a pattern).
    pub fn road_warrior_gateway(
        params: &TunnelParams,
        local_addrs: &[String],
        lan: &str,
    ) -> ControlConfig {
        let connection = Connection {
            local_addrs: local_addrs.to_vec(),
            remote_addrs: vec!["%any".into()],
            proposals: vec![params.proposals.clone()],
            mobike: Some(params.mobike),
            dpd_delay: Some(format!("{}s", params.dpd_delay.as_secs())),
            pools: vec!["rw_pool".into()],
            local: Auth::psk(GW_ID),
            remote: Auth::psk(RW_ID),
            children: BTreeMap::from([(
                "lan".to_string(),
                Child {
                    local_ts: vec![lan.into()],
                    remote_ts: vec!["dynamic".into()],
                    esp_proposals: vec![params.esp_proposals.clone()],
                    start_action: None,
                },
            )]),
            ..Connection::default()
        };
        ControlConfig {
            connections: BTreeMap::from([("rw".to_string(), connection)]),
            pools: BTreeMap::from([(
                "rw_pool".to_string(),
                Pool {
                    addrs: RW_POOL.into(),
                },
            )]),
            secrets: BTreeMap::from([(
                "ike-rw".to_string(),
                SecretEntry::psk(params, &[GW_ID, RW_ID]),
            )]),
            ..ControlConfig::default()
        }
    }

    /// A road-warrior client, as strongSwan's
    /// [`road_warrior_client`](crate::strongswan::road_warrior_client) is: connection `home`
    /// to `gw_addrs`, asking for a virtual IPv4 address, child `lan` reaching `lan`.
    pub fn road_warrior_client(
        params: &TunnelParams,
        gw_addrs: &[String],
        lan: &str,
    ) -> ControlConfig {
        let connection = Connection {
            remote_addrs: gw_addrs.to_vec(),
            vips: vec!["0.0.0.0".into()],
            proposals: vec![params.proposals.clone()],
            mobike: Some(params.mobike),
            dpd_delay: Some(format!("{}s", params.dpd_delay.as_secs())),
            local: Auth::psk(RW_ID),
            remote: Auth::psk(GW_ID),
            children: BTreeMap::from([(
                "lan".to_string(),
                Child {
                    local_ts: vec!["dynamic".into()],
                    remote_ts: vec![lan.into()],
                    esp_proposals: vec![params.esp_proposals.clone()],
                    start_action: None,
                },
            )]),
            ..Connection::default()
        };
        ControlConfig {
            connections: BTreeMap::from([("home".to_string(), connection)]),
            secrets: BTreeMap::from([(
                "ike-rw".to_string(),
                SecretEntry::psk(params, &[GW_ID, RW_ID]),
            )]),
            ..ControlConfig::default()
        }
    }

    /// One end of a site-to-site tunnel, as strongSwan's
    /// [`site_to_site`](crate::strongswan::site_to_site) is: connection `site` (child `net`)
    /// on `local_addrs` (most preferred first; MOBIKE announces the others) to `remote.addr`,
    /// protecting `local.ts` ↔ `remote.ts`; with `initiate`, the child's start action is
    /// `start`.
    pub fn site_to_site(
        params: &TunnelParams,
        local: &SiteEnd,
        local_addrs: &[String],
        remote: &SiteEnd,
        initiate: bool,
    ) -> ControlConfig {
        let connection = Connection {
            local_addrs: local_addrs.to_vec(),
            remote_addrs: vec![remote.addr.clone()],
            proposals: vec![params.proposals.clone()],
            mobike: Some(params.mobike),
            dpd_delay: Some(format!("{}s", params.dpd_delay.as_secs())),
            local: Auth::psk(&local.id),
            remote: Auth::psk(&remote.id),
            children: BTreeMap::from([(
                "net".to_string(),
                Child {
                    local_ts: vec![local.ts.clone()],
                    remote_ts: vec![remote.ts.clone()],
                    esp_proposals: vec![params.esp_proposals.clone()],
                    start_action: initiate.then(|| "start".to_string()),
                },
            )]),
            ..Connection::default()
        };
        ControlConfig {
            connections: BTreeMap::from([("site".to_string(), connection)]),
            secrets: BTreeMap::from([(
                "ike-site".to_string(),
                SecretEntry::psk(params, &[&local.id, &remote.id]),
            )]),
            ..ControlConfig::default()
        }
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        toml::to_string(self).expect("the lab's configuration serialises")
    }
}

/// `roamgate gateway`'s configuration with interfaces `wan1`, `wan2` (WAN) and `lan` (LAN),
/// one queue with small rings, no static SAs: the data plane for SAs the control process
/// negotiates.
pub fn gateway_toml(pin_dir: &Path) -> String {
    format!(
        "[gateway]\npin_dir = \"{}\"\nqueues = 1\nframe_count = 2048\nring_size = 512\nbatch_size = 64\n\n\
         [[interface]]\nname = \"wan1\"\nrole = \"wan\"\n\n\
         [[interface]]\nname = \"wan2\"\nrole = \"wan\"\n\n\
         [[interface]]\nname = \"lan\"\nrole = \"lan\"\n",
        pin_dir.display()
    )
}

/// A roamgate gateway in a lab host: `roamgate gateway` (the XDP data plane on `wan1`, `wan2`
/// and `lan`, [`gateway_toml`]) and then `roamgate control` with a configuration whose SAs go
/// into the data plane's maps. Both logs and both configuration files are in the lab's log
/// directory. Dropping it stops both processes and removes the pinned maps.
#[derive(Debug)]
pub struct RoamgateGateway {
    gateway: Supervised,
    control: Supervised,
    bin: PathBuf,
    pins: PathBuf,
}

impl RoamgateGateway {
    /// Starts both processes in `ns` from the `roamgate` binary `bin`; `control` is the
    /// control process's configuration (its `daemon.bpf_pin_dir` is set here, its log level
    /// to `info` unless given). Returns once the data plane is ready and the control process
    /// runs.
    pub fn start(
        lab: &Lab,
        ns: &Netns,
        bin: &Path,
        mut control: ControlConfig,
    ) -> crate::Result<RoamgateGateway> {
        let pins = PathBuf::from(format!(
            "/sys/fs/bpf/roamgate-{}-{}",
            lab.name(),
            std::process::id()
        ));
        control.daemon.bpf_pin_dir = Some(pins.display().to_string());
        control
            .daemon
            .log_level
            .get_or_insert_with(|| "info".into());
        let gateway_conf = lab.write_log("gateway.toml", &gateway_toml(&pins))?;
        let control_conf = lab.write_log("control.toml", &control.render())?;
        let mut gateway = spawn(
            ns,
            "roamgate-gateway",
            bin,
            &["gateway", "--config", &gateway_conf.to_string_lossy()],
            lab.logs(),
        )?;
        // Every map pinned and the workers running: the gateway pins its marker last.
        wait_gateway_ready(&pins, Duration::from_secs(20), &mut gateway)?;
        let mut control = spawn(
            ns,
            "roamgate-control",
            bin,
            &["control", "--config", &control_conf.to_string_lossy()],
            lab.logs(),
        )?;
        std::thread::sleep(Duration::from_millis(500));
        control.check_running()?;
        Ok(RoamgateGateway {
            gateway,
            control,
            bin: bin.to_path_buf(),
            pins,
        })
    }

    /// Where the data plane's maps are pinned.
    pub fn pins(&self) -> &Path {
        &self.pins
    }

    /// The data plane's worker counters ([`dataplane_counters`]).
    pub fn counters(&self) -> crate::Result<BTreeMap<String, u64>> {
        dataplane_counters(&self.bin, &self.pins)
    }

    /// Fails, with the tail of its log, if either process has exited.
    pub fn check_running(&mut self) -> crate::Result<()> {
        self.gateway.check_running()?;
        self.control.check_running()
    }

    /// Stops the control process (it deletes its IKE SAs), then the data plane, and removes
    /// the pinned maps.
    pub fn stop(mut self) -> crate::Result<()> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> crate::Result<()> {
        self.control.stop(Duration::from_secs(5));
        self.gateway.stop(Duration::from_secs(5));
        if self.pins.exists() {
            unpin(&self.bin, &self.pins)?;
        }
        Ok(())
    }
}

impl Drop for RoamgateGateway {
    fn drop(&mut self) {
        if let Err(e) = self.shut_down() {
            tracing::warn!("stopping the roamgate gateway: {e}");
        }
    }
}

/// Builds the `roamgate` binary with the release profile (`cargo build --release -p roamgate`,
/// with the cargo that runs us) and returns its path under the target directory, for the demo
/// and the benchmarks (tests use `CARGO_BIN_EXE_roamgate`).
pub fn release_binary() -> crate::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::cmd::run(
        &cargo,
        &[
            "build",
            "--quiet",
            "--release",
            "--locked",
            "--package",
            "roamgate",
        ],
    )?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("release/roamgate");
    if !bin.exists() {
        return Err(crate::LabError::Usage(format!(
            "`cargo build --release -p roamgate` left no {}",
            bin.display()
        )));
    }
    Ok(bin)
}

/// The name of the readiness marker `roamgate gateway` pins in its pin directory, last, once
/// every map is pinned and its workers run (`roamgate_ebpf::abi::maps::GATEWAY_READY`; the
/// lab does not link the data plane, so it knows the name only).
pub const READY_MARKER: &str = "gateway_ready";

/// Starts `bin` (the `roamgate` binary) with `args` in `ns` as the supervised process `name`,
/// logging to `<logs>/<name>.log` at level info. `nsenter --net` keeps the host's /sys, so
/// bpffs stays visible (`ip netns exec` would mount a fresh /sys and hide the pinned maps).
pub fn spawn(
    ns: &Netns,
    name: &str,
    bin: &Path,
    args: &[&str],
    logs: &Path,
) -> crate::Result<Supervised> {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net=/run/netns/{}", ns.name()))
        .arg(bin)
        .args(args)
        .env("RUST_LOG", "info");
    Supervised::spawn(name, command, logs)
}

/// Waits until the `roamgate gateway` process `gateway` has pinned its readiness marker in
/// `pin_dir` (every map is pinned and its workers run) and returns the marker's path; fails
/// early, with the tail of its log, if the process exits, and after `timeout` otherwise.
///
/// Only the marker's presence is checked: the lab does not link the data plane.
pub fn wait_gateway_ready(
    pin_dir: &Path,
    timeout: Duration,
    gateway: &mut Supervised,
) -> crate::Result<PathBuf> {
    let marker = pin_dir.join(READY_MARKER);
    let start = Instant::now();
    loop {
        gateway.check_running()?;
        if marker.exists() {
            return Ok(marker);
        }
        if start.elapsed() > timeout {
            return Err(crate::LabError::Timeout {
                what: format!(
                    "`roamgate gateway` to pin its readiness marker {}",
                    marker.display()
                ),
                seconds: timeout.as_secs_f64(),
                logs: gateway
                    .log()
                    .parent()
                    .map_or_else(PathBuf::new, Path::to_path_buf),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The data plane's worker counters, summed over workers, read with `roamgate counters` from
/// the maps pinned in `pin_dir` (the lab does not link the data plane, so that it builds on a
/// machine without the XDP toolchain).
pub fn dataplane_counters(bin: &Path, pin_dir: &Path) -> crate::Result<BTreeMap<String, u64>> {
    let text = crate::cmd::run_text(
        &bin.to_string_lossy(),
        &["counters", "--pin-dir", &pin_dir.to_string_lossy()],
    )?;
    parse_counters(&text)
}

/// `name value` lines, as `roamgate counters` prints them.
fn parse_counters(text: &str) -> crate::Result<BTreeMap<String, u64>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            line.split_once(' ')
                .and_then(|(name, value)| Some((name.to_string(), value.trim().parse().ok()?)))
                .ok_or_else(|| {
                    crate::LabError::Usage(format!("`roamgate counters` printed {line:?}"))
                })
        })
        .collect()
}

/// Removes the data plane's maps pinned in `pin_dir` with `roamgate unpin` (both processes
/// must have stopped).
pub fn unpin(bin: &Path, pin_dir: &Path) -> crate::Result<()> {
    crate::cmd::run(
        &bin.to_string_lossy(),
        &["unpin", "--pin-dir", &pin_dir.to_string_lossy()],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(logs: &Path, seconds: &str) -> Supervised {
        let mut command = Command::new("sleep");
        command.arg(seconds);
        Supervised::spawn("gateway", command, logs).unwrap()
    }

    #[test]
    fn the_wait_for_the_marker_ends_when_it_appears_times_out_or_the_gateway_exits() {
        let dir = tempfile_dir("ready");
        let pins = dir.join("pins");
        std::fs::create_dir_all(&pins).unwrap();

        // No marker: times out, naming the marker.
        let mut running = sleeper(&dir, "30");
        let err = wait_gateway_ready(&pins, Duration::from_millis(200), &mut running).unwrap_err();
        assert!(matches!(err, crate::LabError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("gateway_ready"), "{err}");

        // The marker appears: found.
        std::fs::write(pins.join(READY_MARKER), "").unwrap();
        assert_eq!(
            wait_gateway_ready(&pins, Duration::from_secs(5), &mut running).unwrap(),
            pins.join(READY_MARKER)
        );
        running.stop(Duration::from_secs(1));

        // The gateway exits: fails at once, not after the timeout.
        std::fs::remove_file(pins.join(READY_MARKER)).unwrap();
        let mut exited = sleeper(&dir, "0");
        let begin = Instant::now();
        let err = wait_gateway_ready(&pins, Duration::from_secs(30), &mut exited).unwrap_err();
        assert!(matches!(err, crate::LabError::Command { .. }), "{err}");
        assert!(begin.elapsed() < Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A fresh scratch directory for one test.
    fn tempfile_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("roamgate-lab-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn counters_parse_by_name_and_garbage_is_refused() {
        let c = parse_counters("replay 3\ndecapsulated 1200\n").unwrap();
        assert_eq!(c["replay"], 3);
        assert_eq!(c["decapsulated"], 1200);
        assert!(parse_counters("replay three\n").is_err());
    }

    #[test]
    fn road_warrior_gateway_renders_swanctl_shaped_toml() {
        let params = TunnelParams::default();
        let text = ControlConfig::road_warrior_gateway(
            &params,
            &["198.18.1.1".into(), "198.18.2.1".into()],
            "10.101.0.0/24",
        )
        .render();
        for line in [
            "[connections.rw]",
            "local_addrs = [\"198.18.1.1\", \"198.18.2.1\"]",
            "[connections.rw.local]",
            "auth = \"psk\"",
            "[connections.rw.children.lan]",
            "remote_ts = [\"dynamic\"]",
            "[pools.rw_pool]",
            "[secrets.ike-rw]",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        assert!(!text.contains("[daemon]\nbpf_pin_dir"), "{text}");
    }
}
