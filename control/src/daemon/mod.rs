//! The daemon shell around the sans-IO engine: UDP sockets on ports 500 and 4500 for both
//! address families, signals, and the single poll loop that feeds datagrams and timer expiries
//! to the engine and sends what it returns.
//!
//! [`Daemon::run`] is the whole process in the foreground: it owns the [`Engine`], applies its
//! [`SaEvent`]s to an [`SaSink`] (the data plane), logs its [`Event`]s, reloads the
//! configuration on SIGHUP (or [`DaemonHandle::reload`]) without touching an established SA,
//! and on SIGTERM/SIGINT (or [`DaemonHandle::stop`]) deletes its IKE SAs and returns. With a
//! [`HostWatch`] it follows the host's links and addresses and gives the engine every change
//! ([`host`]).

pub mod config;
pub mod host;
pub mod signals;
pub mod udp;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::engine::{
    CommandError, Engine, EngineConfig, EngineStats, Event, IkeSaHandle, IkeSaInfo, SaEvent,
    SaSink, SaSinkError,
};
pub use host::HostWatch;
use signals::{SignalRequest, Signals, wait_readable};
use udp::IkeSocket;

/// The largest IKE datagram accepted (RFC 7296 § 2 asks for at least 1280; fragments keep
/// messages below the path MTU, so 64 KiB is generous).
const MAX_DATAGRAM: usize = 65_535;

/// Datagrams read from one socket before the others get their turn.
const RECV_BATCH: usize = 64;

/// Events kept for [`DaemonHandle::snapshot`].
const EVENT_HISTORY: usize = 1024;

/// The daemon's own settings (the `[daemon]` table of the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Where to listen: one socket per address (port 500 and 4500 are both needed).
    pub listen: Vec<SocketAddr>,
}

impl Default for DaemonSettings {
    fn default() -> DaemonSettings {
        DaemonSettings {
            listen: ["0.0.0.0:500", "0.0.0.0:4500", "[::]:500", "[::]:4500"]
                .iter()
                .map(|a| a.parse().expect("valid literal"))
                .collect(),
        }
    }
}

/// Reads the configuration (at start and on every reload).
pub type ConfigLoader = Box<
    dyn FnMut() -> Result<(DaemonSettings, EngineConfig), Box<dyn std::error::Error + Send + Sync>>
        + Send,
>;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration could not be loaded.
    #[error("{0}")]
    Config(Box<dyn std::error::Error + Send + Sync>),
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the kernel said.
        source: io::Error,
    },
    /// The signal descriptor or the poll loop failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What the kernel said.
        source: io::Error,
    },
}

/// What a [`DaemonHandle`] asks the running daemon to do.
#[derive(Debug)]
enum Request {
    Stop,
    Reload,
    Initiate(
        String,
        std::sync::mpsc::Sender<Result<IkeSaHandle, CommandError>>,
    ),
    TerminateIke(IkeSaHandle),
    TerminateChild(IkeSaHandle, u32),
    RekeyChild(IkeSaHandle, u32),
    InitiateChild(IkeSaHandle, String),
    RekeyIke(IkeSaHandle),
    SendDpd(IkeSaHandle),
    Snapshot(std::sync::mpsc::Sender<Snapshot>),
}

/// The daemon's state as [`DaemonHandle::snapshot`] returns it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every IKE SA.
    pub ike_sas: Vec<IkeSaInfo>,
    /// The engine's counters.
    pub stats: EngineStats,
    /// The latest events, oldest first (at most 1024).
    pub events: VecDeque<Event>,
    /// How many reloads succeeded and failed.
    pub reloads: (u64, u64),
    /// Datagrams the engine wanted to send that no socket could carry.
    pub send_errors: u64,
    /// Whether the loop has returned.
    pub stopped: bool,
}

#[derive(Debug)]
struct Shared {
    wake: OwnedFd,
    requests: Mutex<VecDeque<Request>>,
    snapshot: Mutex<Snapshot>,
}

/// Controls a running [`Daemon`] from another thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct DaemonHandle {
    shared: Arc<Shared>,
}

impl DaemonHandle {
    fn push(&self, request: Request) {
        lock(&self.shared.requests).push_back(request);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our eventfd.
        let _ = unsafe { libc::write(self.shared.wake.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// Asks the daemon to delete its IKE SAs and return from [`Daemon::run`].
    pub fn stop(&self) {
        self.push(Request::Stop);
    }

    /// Asks the daemon to re-read its configuration, as SIGHUP does.
    pub fn reload(&self) {
        self.push(Request::Reload);
    }

    /// Initiates connection `name` and waits for the engine's answer (not for the exchange).
    pub fn initiate(&self, name: &str) -> Result<IkeSaHandle, CommandError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.push(Request::Initiate(name.to_string(), tx));
        rx.recv()
            .unwrap_or_else(|_| Err(CommandError::UnknownConnection(name.to_string())))
    }

    /// Deletes an IKE SA (INFORMATIONAL with DELETE).
    pub fn terminate_ike(&self, handle: IkeSaHandle) {
        self.push(Request::TerminateIke(handle));
    }

    /// Deletes the CHILD_SA with inbound SPI `inbound_spi` of an IKE SA.
    pub fn terminate_child(&self, handle: IkeSaHandle, inbound_spi: u32) {
        self.push(Request::TerminateChild(handle, inbound_spi));
    }

    /// Rekeys the CHILD_SA with inbound SPI `inbound_spi` (CREATE_CHILD_SA with REKEY_SA).
    pub fn rekey_child(&self, handle: IkeSaHandle, inbound_spi: u32) {
        self.push(Request::RekeyChild(handle, inbound_spi));
    }

    /// Creates one more CHILD_SA, for the CHILD_SA configuration `child` of the IKE SA's
    /// connection (CREATE_CHILD_SA without REKEY_SA, RFC 7296 § 1.3.1).
    pub fn initiate_child(&self, handle: IkeSaHandle, child: &str) {
        self.push(Request::InitiateChild(handle, child.to_owned()));
    }

    /// Rekeys an IKE SA (CREATE_CHILD_SA for a new IKE SA, RFC 7296 § 2.18).
    pub fn rekey_ike(&self, handle: IkeSaHandle) {
        self.push(Request::RekeyIke(handle));
    }

    /// Sends a liveness check on an IKE SA.
    pub fn send_dpd(&self, handle: IkeSaHandle) {
        self.push(Request::SendDpd(handle));
    }

    /// The daemon's current state (built on request: with many IKE SAs it is not cheap).
    /// Once the daemon has stopped, its final state.
    pub fn snapshot(&self) -> Snapshot {
        {
            let last = lock(&self.shared.snapshot);
            if last.stopped {
                return last.clone();
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        self.push(Request::Snapshot(tx));
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| lock(&self.shared.snapshot).clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An [`SaSink`] shared with another thread (a test reading what was installed).
#[derive(Debug, Default)]
pub struct SharedSaSink<S>(pub Arc<Mutex<S>>);

impl<S> Clone for SharedSaSink<S> {
    fn clone(&self) -> Self {
        SharedSaSink(self.0.clone())
    }
}

impl<S: SaSink> SaSink for SharedSaSink<S> {
    fn apply(&mut self, event: &SaEvent) -> Result<(), SaSinkError> {
        lock(&self.0).apply(event)
    }
}

/// The control daemon: sockets, engine, data-plane sink.
pub struct Daemon {
    engine: Engine,
    sockets: Vec<IkeSocket>,
    sink: Box<dyn SaSink + Send>,
    loader: ConfigLoader,
    settings: DaemonSettings,
    signals: Option<Signals>,
    host: Option<host::Follower>,
    shared: Arc<Shared>,
    events: VecDeque<Event>,
    reloads: (u64, u64),
    send_errors: u64,
    buf: Vec<u8>,
}

impl core::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Daemon")
            .field("engine", &self.engine)
            .field("sockets", &self.sockets)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Loads the configuration with `loader` and opens the listening sockets (in the calling
    /// thread's network namespace). `sink` receives every SA event.
    pub fn new(
        mut loader: ConfigLoader,
        sink: Box<dyn SaSink + Send>,
    ) -> Result<Daemon, DaemonError> {
        let (settings, config) = loader().map_err(DaemonError::Config)?;
        let sockets = bind_all(&settings.listen)?;
        // SAFETY: plain eventfd(2) call; the result is checked before use.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(DaemonError::Io {
                what: "creating the wake-up eventfd",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(raw) };
        let rng = Box::new(|buf: &mut [u8]| {
            // The OS RNG failing is unrecoverable for a key exchange daemon.
            aws_lc_rs::rand::fill(buf)
                .expect("the operating system's random number generator failed");
        });
        for s in &sockets {
            tracing::info!(listen = %s.bound(), "listening for IKE");
        }
        Ok(Daemon {
            engine: Engine::new(config, rng),
            sockets,
            sink,
            loader,
            settings,
            signals: None,
            host: None,
            shared: Arc::new(Shared {
                wake,
                requests: Mutex::new(VecDeque::new()),
                snapshot: Mutex::new(Snapshot::default()),
            }),
            events: VecDeque::new(),
            reloads: (0, 0),
            send_errors: 0,
            buf: vec![0; MAX_DATAGRAM],
        })
    }

    /// Also obey SIGHUP, SIGTERM and SIGINT (the `roamgate control` process does; tests that
    /// run several daemons in one process use [`DaemonHandle`] instead).
    pub fn with_signals(mut self, signals: Signals) -> Daemon {
        self.signals = Some(signals);
        self
    }

    /// Also follow the host's addresses through `watch`: the engine starts with the addresses
    /// usable now and hears of every change (without one it uses the configured
    /// `local_addrs` as they are).
    pub fn with_host_watch(mut self, watch: Box<dyn HostWatch>) -> Daemon {
        self.host = Some(host::Follower::new(watch, Instant::now()));
        self
    }

    /// A handle to control the daemon from another thread.
    pub fn handle(&self) -> DaemonHandle {
        DaemonHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs until stopped.
    pub fn run(mut self) -> Result<(), DaemonError> {
        self.follow_host(Instant::now());
        for result in self.engine.start(Instant::now()) {
            if let Err(e) = result {
                tracing::warn!(error = %e, "start_action = start: cannot initiate");
            }
        }
        let result = self.run_loop();
        self.publish(true);
        result
    }

    fn run_loop(&mut self) -> Result<(), DaemonError> {
        loop {
            self.flush();
            let mut fds: Vec<RawFd> = self.sockets.iter().map(AsRawFd::as_raw_fd).collect();
            fds.push(self.shared.wake.as_raw_fd());
            if let Some(s) = &self.signals {
                fds.push(s.as_raw_fd());
            }
            let host_fd = self.host.as_ref().and_then(host::Follower::fd);
            if let Some(fd) = host_fd {
                fds.push(fd);
            }
            let deadline = match (self.engine.poll_timeout(), &self.host) {
                (Some(e), Some(h)) => Some(e.min(h.deadline())),
                (e, h) => e.or(h.as_ref().map(host::Follower::deadline)),
            };
            let timeout = deadline.map(|t| t.saturating_duration_since(Instant::now()));
            let ready = wait_readable(&fds, timeout).map_err(|source| DaemonError::Io {
                what: "waiting for datagrams",
                source,
            })?;
            let readable: Vec<usize> = (0..self.sockets.len()).filter(|&i| ready[i]).collect();
            for i in readable {
                self.receive(i);
            }
            if let Some(h) = &mut self.host
                && host_fd.is_some()
                && ready[fds.len() - 1]
            {
                h.notified(Instant::now());
            }
            self.follow_host(Instant::now());
            let mut signalled = Vec::new();
            if let Some(signals) = &self.signals {
                while let Some(request) = signals.next().map_err(|source| DaemonError::Io {
                    what: "reading signals",
                    source,
                })? {
                    signalled.push(request);
                }
            }
            for request in signalled {
                match request {
                    SignalRequest::Reload => self.reload(),
                    SignalRequest::Stop => {
                        self.shutdown();
                        return Ok(());
                    }
                }
            }
            if ready[self.sockets.len()] {
                let mut counter = [0u8; 8];
                // SAFETY: reads 8 bytes into a live buffer from our eventfd.
                let _ = unsafe {
                    libc::read(self.shared.wake.as_raw_fd(), counter.as_mut_ptr().cast(), 8)
                };
            }
            let requests: Vec<Request> = lock(&self.shared.requests).drain(..).collect();
            for request in requests {
                let now = Instant::now();
                match request {
                    Request::Stop => {
                        self.shutdown();
                        return Ok(());
                    }
                    Request::Reload => self.reload(),
                    Request::Initiate(name, reply) => {
                        let _ = reply.send(self.engine.initiate(now, &name));
                    }
                    Request::TerminateIke(h) => {
                        if let Err(e) = self.engine.terminate_ike(now, h) {
                            tracing::warn!(error = %e, "terminate");
                        }
                    }
                    Request::TerminateChild(h, spi) => {
                        if let Err(e) = self.engine.terminate_child(now, h, spi) {
                            tracing::warn!(error = %e, "terminate CHILD_SA");
                        }
                    }
                    Request::RekeyChild(h, spi) => {
                        if let Err(e) = self.engine.rekey_child(now, h, spi) {
                            tracing::warn!(error = %e, "rekey CHILD_SA");
                        }
                    }
                    Request::InitiateChild(h, child) => {
                        if let Err(e) = self.engine.initiate_child(now, h, &child) {
                            tracing::warn!(error = %e, "create CHILD_SA");
                        }
                    }
                    Request::RekeyIke(h) => {
                        if let Err(e) = self.engine.rekey_ike(now, h) {
                            tracing::warn!(error = %e, "rekey IKE SA");
                        }
                    }
                    Request::Snapshot(reply) => {
                        let _ = reply.send(self.snapshot(false));
                    }
                    Request::SendDpd(h) => {
                        if let Err(e) = self.engine.send_dpd(now, h) {
                            tracing::warn!(error = %e, "liveness check");
                        }
                    }
                }
            }
            let now = Instant::now();
            if self.engine.poll_timeout().is_some_and(|t| t <= now) {
                self.engine.handle_timeout(now);
            }
        }
    }

    /// Gives the engine the host's addresses when they changed.
    fn follow_host(&mut self, now: Instant) {
        let Some(addresses) = self.host.as_mut().and_then(|h| h.poll(now)) else {
            return;
        };
        let shown: Vec<String> = addresses
            .iter()
            .map(|a| format!("{}@{}", a.address, a.interface))
            .collect();
        tracing::info!(addresses = ?shown, "usable local addresses");
        self.engine.set_local_addresses(now, &addresses);
    }

    fn receive(&mut self, index: usize) {
        for _ in 0..RECV_BATCH {
            match self.sockets[index].recv(&mut self.buf) {
                Ok(Some(r)) if r.len > self.buf.len() => {
                    tracing::debug!(from = %r.remote, "oversized datagram dropped");
                }
                Ok(Some(r)) => {
                    let now = Instant::now();
                    // Certificate validity needs the wall clock; the engine reads none.
                    self.engine
                        .set_wall_clock(now, std::time::SystemTime::now());
                    self.engine
                        .handle_datagram(now, r.local, r.remote, &self.buf[..r.len]);
                    // Send answers at once: a burst of requests must not delay them.
                    self.flush();
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(socket = %self.sockets[index].bound(), error = %e, "receive failed");
                    return;
                }
            }
        }
    }

    /// Sends every datagram the engine has queued, each from the socket of its port and
    /// family.
    fn send_transmits(&mut self) {
        while let Some(t) = self.engine.poll_transmit() {
            let socket = self.sockets.iter().find(|s| {
                s.bound().port() == t.local.port() && s.bound().is_ipv4() == t.local.is_ipv4()
            });
            let result = match socket {
                Some(s) => s.send(t.local.ip(), t.remote, &t.payload),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no listening socket for that port and family",
                )),
            };
            if let Err(e) = result {
                self.send_errors += 1;
                tracing::warn!(local = %t.local, remote = %t.remote, error = %e, "send failed");
            }
        }
    }

    /// Sends every datagram, applies every SA event, logs every event.
    fn flush(&mut self) {
        self.send_transmits();
        // The engine's answer to a refusal may be more to send and more SA events.
        let now = Instant::now();
        while let Some(e) = self.engine.poll_sa_event() {
            let result = self.sink.apply(&e);
            if result.is_ok() {
                log_sa_event(&e);
            }
            self.engine.handle_sa_result(now, &e, &result);
            self.send_transmits();
        }
        while let Some(e) = self.engine.poll_event() {
            log_event(&e);
            if self.events.len() == EVENT_HISTORY {
                self.events.pop_front();
            }
            self.events.push_back(e);
        }
    }

    fn publish(&mut self, stopped: bool) {
        let snapshot = self.snapshot(stopped);
        *lock(&self.shared.snapshot) = snapshot;
    }

    fn snapshot(&self, stopped: bool) -> Snapshot {
        Snapshot {
            ike_sas: self.engine.ike_sas(),
            stats: *self.engine.stats(),
            events: self.events.clone(),
            reloads: self.reloads,
            send_errors: self.send_errors,
            stopped,
        }
    }

    fn reload(&mut self) {
        match (self.loader)() {
            Ok((settings, config)) => {
                if settings != self.settings {
                    tracing::warn!(
                        "reload: listen addresses changed; they take effect at the next restart"
                    );
                }
                self.engine.reconfigure(config);
                self.reloads.0 += 1;
                tracing::info!("configuration reloaded; established SAs kept");
            }
            Err(e) => {
                self.reloads.1 += 1;
                tracing::error!(error = %e, "reload refused; the running configuration stays");
            }
        }
    }

    fn shutdown(&mut self) {
        let now = Instant::now();
        for sa in self.engine.ike_sas() {
            if sa.established {
                let _ = self.engine.terminate_ike(now, sa.handle);
            }
        }
        self.flush();
        tracing::info!("stopped");
    }
}

fn bind_all(listen: &[SocketAddr]) -> Result<Vec<IkeSocket>, DaemonError> {
    listen
        .iter()
        .map(|&addr| IkeSocket::bind(addr).map_err(|source| DaemonError::Listen { addr, source }))
        .collect()
}

fn log_sa_event(e: &SaEvent) {
    match e {
        SaEvent::Install(c) => tracing::info!(
            child = %c.name,
            spi_in = format_args!("{:08x}", c.inbound.spi),
            spi_out = format_args!("{:08x}", c.outbound.spi),
            local = %c.local,
            remote = %c.remote,
            udp_encap = c.udp_encap,
            "CHILD_SA installed"
        ),
        other => tracing::info!(event = ?other, "SA event"),
    }
}

fn log_event(e: &Event) {
    match e {
        Event::IkeSaEstablished {
            handle,
            connection,
            local,
            remote,
            peer_id,
            ..
        } => tracing::info!(
            ike_sa = handle.0,
            connection,
            %local,
            %remote,
            peer = ?peer_id,
            "IKE SA established"
        ),
        Event::PathUpdated {
            handle,
            local,
            remote,
        } => tracing::info!(
            ike_sa = handle.0,
            %local,
            %remote,
            "IKE SA and its CHILD_SAs moved"
        ),
        other => tracing::info!(event = ?other, "IKE event"),
    }
}
