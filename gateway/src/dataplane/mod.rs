//! The running data plane: [`Gateway::start`] loads the XDP classifier with the instance's
//! pinned maps, gives every configured interface its role, attaches XDP, installs the static
//! SAs, opens one AF_XDP socket per RX queue of each interface and starts one worker per queue
//! index (serving that queue of every interface, pinned to a CPU), plus two helper threads:
//! the SA sync ([`registry`]) and the next-hop resolver ([`nexthop`]).
//!
//! Readiness: the very last step of [`Gateway::start`], after every map is pinned and every
//! worker runs, pins the instance's readiness marker `gateway_ready`
//! ([`roamgate_ebpf::ReadyMarker`]); other processes wait for it before they open the maps.
//! [`Gateway::stop`] unpins it first, before the workers stop, and reports any thread that
//! panicked.
//!
//! Everything the control process needs is in the pinned maps: it installs and removes SAs
//! through [`roamgate_ebpf::SaTable`], moves them with [`roamgate_ebpf::EndpointTable`], and
//! reads the workers' counters through [`roamgate_ebpf::WorkerCounters`].

mod addresses;
pub mod exception;
pub mod nexthop;
pub mod published;
pub mod registry;
pub mod tun;
pub mod worker;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roamgate_ebpf::abi;
use roamgate_ebpf::{
    AttachMode, Classifier, Direction, EbpfError, Endpoint, EndpointTable, Iface, ReadyMarker,
    SaMode, SaSpec, SaTable, WorkerCounters,
};

use crate::config::{GatewayConfig, Role, StaticMode, StaticSa, XdpMode};
use crate::netlink;
use crate::xsk::{XskConfig, XskError, XskSocket, rx_queues};

pub use worker::{FORWARD_BASE, Forward};

/// RX queues per interface that have `xsk_map` slots (interface `i` uses slots from
/// `i * QUEUES_PER_IFACE`).
pub const QUEUES_PER_IFACE: u32 = 64;

/// Headroom asked of the kernel in every received frame, in front of the packet: room for the
/// outer headers encapsulation writes in place.
pub const FRAME_HEADROOM: u32 = 128;

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The XDP program or a map.
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    /// An AF_XDP socket.
    #[error("interface {iface} queue {queue}: {source}")]
    Xsk {
        /// The interface.
        iface: String,
        /// The RX queue.
        queue: u32,
        /// The socket error.
        #[source]
        source: XskError,
    },
    /// Anything else, with what was being done.
    #[error("{0}")]
    Setup(String),
    /// Threads of the data plane panicked while it ran (found when it stopped).
    #[error("{} data-plane thread(s) panicked: {}", threads.len(), threads.join("; "))]
    Panicked {
        /// Each panicked thread as `name: panic message`.
        threads: Vec<String>,
    },
}

/// What the threads share.
pub(crate) struct Shared {
    pub(crate) registry: registry::Registry,
    pub(crate) hops: nexthop::NextHops,
    pub(crate) endpoints: EndpointTable,
    pub(crate) counters: WorkerCounters,
    pub(crate) stop: AtomicBool,
    pub(crate) frame_size: u32,
    pub(crate) batch: usize,
    /// The gateway's own addresses (decapsulated packets to these go into the TUN device),
    /// kept current by the address watcher.
    pub(crate) local: published::Published<std::collections::HashSet<IpAddr>>,
    /// The exception path's TUN device, if it could be made.
    pub(crate) tun: Option<tun::Tun>,
}

/// A running gateway. Dropping it (or [`Gateway::stop`]) stops the workers and detaches XDP;
/// the maps stay pinned with their SAs, so a restart continues where this one stopped.
pub struct Gateway {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The readiness marker, pinned once the gateway runs.
    ready: Option<ReadyMarker>,
    classifier: Option<Classifier>,
    pin_dir: PathBuf,
    workers: u32,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("pin_dir", &self.pin_dir)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

fn static_spec<'a>(sa: &'a StaticSa, direction: Direction) -> SaSpec<'a> {
    let (key, mode) = match direction {
        Direction::Inbound => (
            sa.key_in.bytes(),
            match sa.mode {
                StaticMode::Tunnel => SaMode::Tunnel,
                StaticMode::Beet { local, remote } => SaMode::Beet {
                    src: remote,
                    dst: local,
                },
            },
        ),
        Direction::Outbound => (
            sa.key_out.bytes(),
            match sa.mode {
                StaticMode::Tunnel => SaMode::Tunnel,
                StaticMode::Beet { local, remote } => SaMode::Beet {
                    src: local,
                    dst: remote,
                },
            },
        ),
    };
    SaSpec {
        spi: match direction {
            Direction::Inbound => sa.spi_in,
            Direction::Outbound => sa.spi_out,
        },
        direction,
        mode,
        cipher: sa.cipher,
        esn: sa.esn,
        key,
        limits: roamgate_ebpf::SaLimits::default(),
        local_ts: &sa.local_ts,
        remote_ts: &sa.remote_ts,
    }
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain old data; zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside the set (cpu is reduced modulo the set's size).
    unsafe { libc::CPU_SET(cpu % (8 * size_of::<libc::cpu_set_t>()), &mut set) };
    // SAFETY: set is a valid cpu_set_t of the size given; 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        tracing::warn!(
            cpu,
            "could not pin the worker: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Gateway {
    /// Starts the data plane described by `config` in the calling thread's network namespace.
    /// When it returns, every map is pinned, every worker runs, and the readiness marker
    /// `<pin_dir>/gateway_ready` is pinned (last).
    pub fn start(config: &GatewayConfig) -> Result<Gateway, GatewayError> {
        // A marker left by a gateway that was killed would announce this one too early.
        roamgate_ebpf::remove_stale_ready(&config.pin_dir)?;
        let mut classifier = Classifier::load(&config.pin_dir)?;
        let ready = classifier.ready_marker()?;
        let mode = match config.xdp_mode {
            XdpMode::Driver => AttachMode::Driver,
            XdpMode::Generic => AttachMode::Generic,
        };

        // Interfaces: role, XDP, queues, local addresses.
        struct Prepared {
            name: String,
            ifindex: u32,
            role: Role,
            base: u32,
            queues: u32,
            mac: [u8; 6],
            v4: Option<std::net::Ipv4Addr>,
            v6: Option<std::net::Ipv6Addr>,
        }
        let mut prepared = Vec::new();
        for (n, iface) in config.interfaces.iter().enumerate() {
            let ifindex = Iface::Name(&iface.name).index()?;
            let base = n as u32 * QUEUES_PER_IFACE;
            if base + QUEUES_PER_IFACE > abi::XSK_MAP_MAX {
                return Err(GatewayError::Setup(format!(
                    "at most {} interfaces fit xsk_map",
                    abi::XSK_MAP_MAX / QUEUES_PER_IFACE
                )));
            }
            let queues = rx_queues(&iface.name)
                .unwrap_or(1)
                .min(config.queues.unwrap_or(u32::MAX))
                .clamp(1, QUEUES_PER_IFACE);
            let role = match iface.role {
                Role::Wan => abi::IFACE_ROLE_WAN,
                Role::Lan => abi::IFACE_ROLE_LAN,
            };
            classifier.set_iface(ifindex, role, base)?;
            let attached = classifier.attach(ifindex, mode)?;
            let (mac, _) = netlink::link_info(ifindex).map_err(|e| {
                GatewayError::Setup(format!("reading the MAC of {}: {e}", iface.name))
            })?;
            let addrs = netlink::addresses(&iface.name);
            tracing::info!(iface = %iface.name, ifindex, role = ?iface.role, ?attached, queues, "interface ready");
            prepared.push(Prepared {
                name: iface.name.clone(),
                ifindex,
                role: iface.role,
                base,
                queues,
                mac,
                v4: addrs.iter().find_map(|a| match a {
                    IpAddr::V4(v) => Some(*v),
                    _ => None,
                }),
                v6: addrs.iter().find_map(|a| match a {
                    IpAddr::V6(v) if !is_link_local(a) => Some(*v),
                    _ => None,
                }),
            });
        }

        // ESP is steered for the WAN interfaces' addresses and the static SAs' local ones;
        // the address watcher keeps that set current while the gateway runs.
        let steered = addresses::Steered {
            wan: prepared
                .iter()
                .filter(|p| p.role == Role::Wan)
                .map(|p| p.name.clone())
                .collect(),
            fixed: config.sas.iter().map(|sa| sa.local).collect(),
        };
        let all_addresses = netlink::interface_addresses();
        for a in steered.of(&all_addresses) {
            classifier.add_local_addr(a)?;
        }

        // Static SAs: the gateway writes them itself, as the control process would.
        let mut table = SaTable::open(&config.pin_dir)?;
        let mut endpoints = EndpointTable::open(&config.pin_dir)?;
        for (n, sa) in config.sas.iter().enumerate() {
            let out_slot = StaticSa::outbound_slot(n);
            table.install(
                StaticSa::inbound_slot(n),
                &static_spec(sa, Direction::Inbound),
            )?;
            endpoints.update(
                out_slot,
                &Endpoint {
                    local: sa.local,
                    remote: sa.remote,
                    udp: sa.udp,
                    next_hop: None,
                },
            )?;
            // Keep a persisted sequence number across restarts: install() resets it only
            // for a new SA, so reinstall only when the record differs.
            let spec = static_spec(sa, Direction::Outbound);
            let same = table.read(out_slot).is_some_and(|r| {
                spec.record().is_ok_and(|mut new| {
                    new.seq = r.seq;
                    new.generation = r.generation;
                    new == r
                })
            });
            if !same {
                table.install(out_slot, &spec)?;
            }
            tracing::info!(sa = %sa.name, spi_in = format_args!("{:#010x}", sa.spi_in), spi_out = format_args!("{:#010x}", sa.spi_out), "static SA installed");
        }
        drop(table);

        let tun = config.tun_name.as_deref().and_then(|name| match tun::Tun::open(name) {
            Ok(t) => {
                let fwd = t.forwarding();
                tracing::info!(tun = name, ifindex = t.ifindex(), ipv4_forwarding = fwd.v4, ipv6_forwarding = fwd.v6, "exception path TUN device up");
                if !fwd.v4 || !fwd.v6 {
                    tracing::warn!(tun = name, "the kernel does not forward every family received on the TUN device: neighbour misses of those families go through raw sockets");
                }
                Some(t)
            }
            Err(e) => {
                tracing::warn!(tun = name, "no TUN device ({e}): traffic for the gateway itself goes through raw sockets only");
                None
            }
        });
        let lan_addrs = prepared
            .iter()
            .filter(|p| p.role == Role::Lan)
            .fold((None, None), |(v4, v6), p| {
                (v4.or(p.v4.map(IpAddr::V4)), v6.or(p.v6.map(IpAddr::V6)))
            });
        let shared = Arc::new(Shared {
            registry: registry::Registry::default(),
            hops: nexthop::NextHops::default(),
            endpoints: EndpointTable::open(&config.pin_dir)?,
            counters: WorkerCounters::open(&config.pin_dir)?,
            stop: AtomicBool::new(false),
            frame_size: config.xsk.frame_size,
            batch: config.batch_size as usize,
            local: published::Published::new(addresses::own(&all_addresses)),
            tun,
        });
        let mut threads = Vec::new();
        let reader = SaTable::open_reader(&config.pin_dir)?;
        {
            let shared = Arc::clone(&shared);
            threads.push(
                std::thread::Builder::new()
                    .name("rg-sa-sync".into())
                    .spawn(move || registry::sync(&reader, &shared.registry, &shared.stop))
                    .map_err(|e| GatewayError::Setup(format!("spawning the SA sync: {e}")))?,
            );
        }
        {
            let shared = Arc::clone(&shared);
            threads.push(
                std::thread::Builder::new()
                    .name("rg-nexthop".into())
                    .spawn(move || nexthop::resolve(&shared.hops, &shared.stop))
                    .map_err(|e| GatewayError::Setup(format!("spawning the resolver: {e}")))?,
            );
        }
        {
            let shared = Arc::clone(&shared);
            let pin_dir = config.pin_dir.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("rg-addrs".into())
                    .spawn(move || addresses::follow(&pin_dir, &steered, &shared))
                    .map_err(|e| {
                        GatewayError::Setup(format!("spawning the address watcher: {e}"))
                    })?,
            );
        }
        if shared.tun.is_some() {
            let shared = Arc::clone(&shared);
            threads.push(
                std::thread::Builder::new()
                    .name("rg-tun".into())
                    .spawn(move || {
                        if let Some(t) = &shared.tun {
                            tun::serve(t, &shared, lan_addrs);
                        }
                    })
                    .map_err(|e| GatewayError::Setup(format!("spawning the TUN reader: {e}")))?,
            );
        }
        // The static SAs are in the workers' first snapshot.
        let deadline = Instant::now() + Duration::from_secs(2);
        while shared.registry.version() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }

        let xsk = XskConfig {
            frame_headroom: FRAME_HEADROOM,
            ..config.xsk
        };
        let max_queues = prepared.iter().map(|p| p.queues).max().unwrap_or(1);
        let cpus: Vec<usize> = config
            .cpus
            .clone()
            .unwrap_or_else(|| (0..online_cpus()).collect());
        let mut gateway = Gateway {
            shared: Arc::clone(&shared),
            threads,
            ready: None,
            classifier: None,
            pin_dir: config.pin_dir.clone(),
            workers: 0,
        };
        for q in 0..max_queues {
            let mut ports = Vec::new();
            for p in prepared.iter().filter(|p| p.queues > q) {
                let sock =
                    XskSocket::open(&p.name, q, &xsk).map_err(|source| GatewayError::Xsk {
                        iface: p.name.clone(),
                        queue: q,
                        source,
                    })?;
                classifier.register_xsk(p.base + q, std::os::fd::AsRawFd::as_raw_fd(&sock))?;
                tracing::info!(iface = %p.name, queue = q, zero_copy = sock.is_zero_copy(), "AF_XDP socket bound");
                ports.push(worker::Port {
                    ifindex: p.ifindex,
                    role: p.role,
                    mac: p.mac,
                    v4: p.v4,
                    v6: p.v6,
                    sock,
                    pending: Vec::with_capacity(config.batch_size as usize * 2),
                });
            }
            if q >= abi::WORKERS_MAX {
                return Err(GatewayError::Setup(format!(
                    "at most {} workers have counter slots",
                    abi::WORKERS_MAX
                )));
            }
            let w = worker::Worker::new(q, ports, Arc::clone(&shared));
            let cpu = cpus[q as usize % cpus.len()];
            gateway.threads.push(
                std::thread::Builder::new()
                    .name(format!("rg-worker-{q}"))
                    .spawn(move || {
                        pin_to_cpu(cpu);
                        w.run();
                    })
                    .map_err(|e| GatewayError::Setup(format!("spawning worker {q}: {e}")))?,
            );
            gateway.workers += 1;
        }
        gateway.classifier = Some(classifier);
        // Last: every map is pinned and every worker runs; now the instance is ready.
        let ready = gateway.ready.insert(ready);
        let record = ready.publish(gateway.workers)?;
        tracing::info!(
            workers = gateway.workers,
            pin_dir = %config.pin_dir.display(),
            marker = %ready.path().display(),
            pid = record.pid,
            "gateway running; readiness marker pinned"
        );
        Ok(gateway)
    }

    /// The number of workers.
    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// The SAs the workers use now: (inbound, outbound).
    pub fn sa_count(&self) -> (usize, usize) {
        let snapshot = self.shared.registry.snapshot();
        (snapshot.inbound.len(), snapshot.outbound.len())
    }

    /// The pin directory of the instance's maps.
    pub fn pin_dir(&self) -> &std::path::Path {
        &self.pin_dir
    }

    /// The classifier (its counters show what XDP did).
    pub fn classifier(&self) -> Option<&Classifier> {
        self.classifier.as_ref()
    }

    /// Unpins the readiness marker, then stops the workers and helper threads and detaches
    /// XDP.
    ///
    /// # Errors
    ///
    /// [`GatewayError::Panicked`] naming every thread that panicked while the gateway ran
    /// (each is also logged at error level), or the error unpinning the marker. The gateway
    /// is stopped either way.
    pub fn stop(mut self) -> Result<(), GatewayError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), GatewayError> {
        // First: nobody may take the instance for ready while it stops.
        let withdrawn = match self.ready.take() {
            Some(mut marker) => marker.withdraw().map(drop).inspect_err(|e| {
                tracing::error!(error = %e, "could not unpin the readiness marker");
            }),
            None => Ok(()),
        };
        self.shared.stop.store(true, Ordering::Release);
        self.shared.hops.want(nexthop::HopKey {
            src: None,
            dst: IpAddr::from([0, 0, 0, 0]),
        });
        let panicked = join_all(self.threads.drain(..));
        // Dropping the classifier detaches XDP from every interface.
        self.classifier = None;
        if !panicked.is_empty() {
            return Err(GatewayError::Panicked { threads: panicked });
        }
        withdrawn.map_err(GatewayError::from)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // After `stop` this finds nothing left to do. Otherwise every failure was logged at
        // error level by `shutdown`, and a destructor has nobody to return it to.
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "the gateway was dropped without `stop`");
        }
    }
}

/// Joins every thread and returns the ones that panicked as `name: message`, each also
/// logged at error level.
fn join_all(threads: impl IntoIterator<Item = JoinHandle<()>>) -> Vec<String> {
    let mut panicked = Vec::new();
    for t in threads {
        let name = t.thread().name().unwrap_or("unnamed").to_string();
        if let Err(payload) = t.join() {
            let message = panic_message(payload.as_ref());
            tracing::error!(thread = %name, panic = %message, "a data-plane thread panicked");
            panicked.push(format!("{name}: {message}"));
        }
    }
    panicked
}

/// The message of a panic payload (`panic!` with a literal or a format string).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// Every worker counter of the data plane pinned under `pin_dir`, summed over workers, with
/// its name: drop reasons first, then forwarding counters.
pub fn counters(
    pin_dir: &std::path::Path,
) -> Result<Vec<(&'static str, u64)>, roamgate_ebpf::EbpfError> {
    let c = WorkerCounters::open(pin_dir)?;
    let drops = crate::DropReason::ALL
        .iter()
        .map(|&r| (r.name(), c.total(r as u32)));
    let forwards = Forward::ALL.iter().map(|&f| (f.name(), c.total(f.slot())));
    Ok(drops.chain(forwards).collect())
}

/// Every non-zero worker counter of the data plane pinned under `pin_dir`, summed over
/// workers, as `name=value` pairs (drop reasons first, then forwarding counters): what an
/// operator or a failing test wants to see at a glance.
pub fn counter_summary(pin_dir: &std::path::Path) -> Result<String, roamgate_ebpf::EbpfError> {
    Ok(counters(pin_dir)?
        .into_iter()
        .filter(|&(_, n)| n != 0)
        .map(|(name, n)| format!("{name}={n}"))
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panicked_threads_are_reported_by_name_with_their_message() {
        let spawn = |name: &str, f: fn()| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .unwrap()
        };
        let threads = vec![
            spawn("rg-worker-0", || {}),
            spawn("rg-worker-1", || panic!("slot {} out of range", 7)),
            spawn("rg-sa-sync", || panic!("a literal")),
            spawn("rg-nexthop", || std::panic::panic_any(42_u8)),
        ];
        assert_eq!(
            join_all(threads),
            [
                "rg-worker-1: slot 7 out of range",
                "rg-sa-sync: a literal",
                "rg-nexthop: a panic without a message",
            ]
        );
        assert!(join_all([spawn("rg-worker-2", || {})]).is_empty());
    }

    #[test]
    fn the_panic_error_names_every_thread() {
        let e = GatewayError::Panicked {
            threads: vec!["rg-worker-0: boom".into(), "rg-tun: bang".into()],
        };
        assert_eq!(
            e.to_string(),
            "2 data-plane thread(s) panicked: rg-worker-0: boom; rg-tun: bang"
        );
    }
}
