//! `roamgate control --config FILE`: the control process (IKEv2 daemon) in the foreground.
//! Negotiated CHILD_SAs go into the data plane's pinned maps under `daemon.bpf_pin_dir`, or,
//! with `--no-dataplane`, nowhere but the log. It may start before `roamgate gateway`: it
//! waits up to `daemon.dataplane_wait` for the gateway's readiness marker, then opens the
//! maps. Under systemd (`Type=notify`) it sends `READY=1` once its IKE sockets are bound and
//! the maps are open.
//! It follows the host's links, addresses and routes over netlink, so that MOBIKE SAs move
//! when an uplink or an address goes away or comes back.
//! SIGHUP re-reads the file and keeps every SA; SIGTERM or SIGINT deletes the IKE SAs and
//! exits. A configuration that does not load exits non-zero with
//! `error: <file>:<line>: <key>: <reason>` (the line when it is known).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use roamgate_control::config::ConfigError;
use roamgate_control::daemon::config::{Loaded, load_full};
use roamgate_control::daemon::signals::{SignalRequest, Signals};
use roamgate_control::daemon::{ConfigLoader, Daemon, HostWatch};
use roamgate_control::engine::path::HostAddress;
use roamgate_control::engine::{MemorySaSink, SaSink};
use roamgate_control::pinned_sink::{OpenError, PinnedMapSink};
use roamgate_gateway::netlink::{self, Change, ChangeEvents};

/// Why the control process did not run.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The configuration was refused (exit status 2).
    Config(ConfigError),
    /// Anything else (exit status 1).
    Other(anyhow::Error),
}

impl Failure {
    /// The line printed on standard error.
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Config(e) => format!("error: {e}"),
            Failure::Other(e) => format!("error: {e:#}"),
        }
    }

    /// The process exit status.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) => 2,
            Failure::Other(_) => 1,
        }
    }
}

/// The host's addresses as the kernel reports them: netlink notifications of link, address
/// and route changes, and the addresses of the interfaces that are up with carrier.
struct NetlinkHost {
    events: Option<ChangeEvents>,
}

impl NetlinkHost {
    fn open() -> NetlinkHost {
        let events = ChangeEvents::open(&[Change::Links, Change::Addresses, Change::Routes])
            .map_err(|e| {
                tracing::warn!(
                    error = %e,
                    "no netlink notifications: local addresses are re-read every {:?}",
                    roamgate_control::daemon::host::REREAD
                )
            })
            .ok();
        NetlinkHost { events }
    }
}

impl HostWatch for NetlinkHost {
    fn notifications(&self) -> Option<std::os::fd::RawFd> {
        self.events.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)
    }

    fn drain(&mut self) {
        if let Some(e) = &self.events {
            e.drain();
        }
    }

    fn usable_addresses(&mut self) -> Vec<HostAddress> {
        netlink::usable_addresses()
            .into_iter()
            .map(|(interface, address)| HostAddress { interface, address })
            .collect()
    }
}

/// Loads the configuration at `path` for the daemon.
pub(crate) fn load(path: &Path) -> Result<Loaded, Failure> {
    load_full(path).map_err(Failure::Config)
}

/// Sets up logging: `RUST_LOG` if set, else `daemon.log_level` for every roamgate crate.
fn init_tracing(loaded: &Loaded) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(loaded.log_level.as_str()));
    // A subscriber set earlier in the process (tests) stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs the control daemon until SIGTERM or SIGINT; with `dataplane` false it writes no SA
/// anywhere (IKE only, for trying a configuration against a peer).
pub(crate) fn run(path: &Path, dataplane: bool) -> Result<(), Failure> {
    // Before any thread exists, so that every thread inherits the blocked signals.
    let signals = Signals::new()
        .context("blocking SIGHUP, SIGTERM and SIGINT")
        .map_err(Failure::Other)?;
    let loaded = load(path)?;
    init_tracing(&loaded);
    for setting in &loaded.ignored {
        tracing::warn!("{}: {setting}", path.display());
    }
    let pin_dir = loaded.bpf_pin_dir.clone();
    let dataplane_wait = loaded.dataplane_wait;
    let file: PathBuf = path.to_owned();
    let mut first = Some(loaded);
    let loader: ConfigLoader = Box::new(move || {
        let loaded = match first.take() {
            Some(l) => l,
            None => load_full(&file)?,
        };
        Ok((loaded.settings, loaded.engine))
    });
    let sink: Box<dyn SaSink + Send> = if dataplane {
        // SIGTERM and SIGINT are blocked (they arrive through `signals`): look for them while
        // waiting, so a control process that waits can still be stopped.
        let stop = || loop {
            match signals.next() {
                Ok(Some(SignalRequest::Stop)) => return true,
                Ok(Some(SignalRequest::Reload)) => {
                    tracing::info!(
                        "SIGHUP while waiting for the data plane: nothing to reload yet"
                    );
                }
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the signal descriptor");
                    return false;
                }
            }
        };
        match PinnedMapSink::open_when_ready(&pin_dir, dataplane_wait, stop) {
            Ok((sink, ready)) => {
                tracing::info!(
                    pin_dir = %pin_dir.display(),
                    gateway_pid = ready.pid,
                    workers = ready.workers,
                    "data plane ready: opened its maps"
                );
                Box::new(sink)
            }
            Err(OpenError::Stopped { .. }) => {
                tracing::info!("stopped while waiting for the data plane");
                return Ok(());
            }
            Err(OpenError::Ebpf(e)) => {
                return Err(Failure::Other(anyhow::Error::new(e).context(format!(
                    "opening the data plane's maps in {} (is `roamgate gateway` running? \
                     --no-dataplane runs IKE alone)",
                    pin_dir.display()
                ))));
            }
            Err(e) => return Err(Failure::Other(e.into())),
        }
    } else {
        tracing::warn!("--no-dataplane: negotiated SAs are not installed anywhere");
        Box::new(MemorySaSink::new())
    };
    let daemon = Daemon::new(loader, sink)
        .context("starting the control daemon")
        .map_err(Failure::Other)?
        .with_signals(signals)
        .with_host_watch(Box::new(NetlinkHost::open()));
    tracing::info!(config = %path.display(), "control daemon running; SIGHUP reloads, SIGTERM stops");
    // The IKE sockets are bound (Daemon::new) and the data plane is open.
    crate::sd_notify::notify("READY=1\nSTATUS=IKE sockets bound");
    daemon
        .run()
        .context("control daemon")
        .map_err(Failure::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("roamgate.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn unknown_key_is_reported_with_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[connections.rw]\nremote_addrs = [\"%any\"]\n\n[connections.rw.local]\nauth = \"psk\"\nfoo = 1\n",
        );
        let err = load(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let msg = err.message();
        let prefix = format!("error: {}:6: connections.rw.local.foo: ", path.display());
        assert!(msg.starts_with(&prefix), "{msg}");
        assert!(msg.contains("unknown field `foo`"), "{msg}");
    }

    #[test]
    fn what_the_engine_cannot_do_is_refused_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "[daemon]\nport = 1500\nport_nat_t = 4500\n");
        let msg = load(&path).unwrap_err().message();
        assert_eq!(
            msg,
            format!(
                "error: {}: daemon.port: 1500 is not supported yet; the IKE port is 500",
                path.display()
            )
        );
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let msg = load(&dir.path().join("absent.toml")).unwrap_err().message();
        assert!(
            msg.starts_with("error: ") && msg.contains("absent.toml"),
            "{msg}"
        );
    }

    #[test]
    fn without_the_data_plane_s_maps_the_daemon_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[daemon]\nlisten = [\"127.0.0.1\"]\nbpf_pin_dir = \"no-maps-here\"\ndataplane_wait = \"0.3s\"\n",
        );
        // Only the maps are missing: after the wait, the failure says where it looked and
        // what to do.
        let begin = std::time::Instant::now();
        let err = run(&path, true).unwrap_err();
        assert!(begin.elapsed() >= std::time::Duration::from_millis(300));
        assert_eq!(err.exit_code(), 1);
        let msg = err.message();
        assert!(msg.contains("no-maps-here"), "{msg}");
        assert!(msg.contains("no-maps-here/gateway_ready"), "{msg}");
        assert!(msg.contains("--no-dataplane"), "{msg}");
    }

    #[test]
    fn a_valid_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[daemon]\nlog_level = \"debug\"\nlisten = [\"127.0.0.1\"]\n",
        );
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.log_level.as_str(), "debug");
        assert_eq!(
            loaded.settings.listen,
            [
                "127.0.0.1:500".parse().unwrap(),
                "127.0.0.1:4500".parse().unwrap()
            ]
        );
    }
}
