//! `roamgate gateway --config FILE`: the data-plane process. Runs in the foreground until
//! SIGINT or SIGTERM, then unpins its readiness marker, stops the workers, detaches XDP and
//! leaves the maps pinned (so the control process keeps its SAs and a restart continues
//! safely). Under systemd (`Type=notify`) it sends `READY=1` once the marker is pinned and
//! `STOPPING=1` when it begins to stop. A thread that panicked makes it exit non-zero.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use roamgate_gateway::config::GatewayConfig;
use roamgate_gateway::dataplane::Gateway;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Runs the gateway in the foreground until it is stopped.
pub(crate) fn run(config: &Path) -> Result<()> {
    let config = GatewayConfig::load(config)?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: on_signal only stores to an atomic, which is async-signal-safe; the handler
        // stays valid for the life of the process.
        let previous =
            unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
        anyhow::ensure!(
            previous != libc::SIG_ERR,
            "installing the handler for signal {signal}: {}",
            std::io::Error::last_os_error()
        );
    }
    let gateway = Gateway::start(&config).context("starting the gateway")?;
    tracing::info!(
        workers = gateway.workers(),
        "forwarding; SIGINT or SIGTERM stops"
    );
    crate::sd_notify::notify(&format!(
        "READY=1\nSTATUS=forwarding with {} workers",
        gateway.workers()
    ));
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("stopping");
    crate::sd_notify::notify("STOPPING=1");
    gateway
        .stop()
        .context("the gateway stopped after a failure")?;
    Ok(())
}
