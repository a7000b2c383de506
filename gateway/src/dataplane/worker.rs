//! One worker: the AF_XDP sockets of one RX queue index on every interface, served in batches.
//!
//! Per batch a worker picks up the current SA snapshot and next-hop snapshot (one atomic load
//! each when nothing changed), then for each socket takes up to `batch` frames and forwards
//! each:
//!
//! - WAN: Ethernet → [`decapsulate`] (anti-replay shared with every other worker through the
//!   SA) → inner addresses checked against the SA's traffic selectors → TTL decremented →
//!   Ethernet header for the LAN next hop → copied into a frame of the egress socket.
//! - LAN: Ethernet → outbound SA by longest prefix match → source checked against its
//!   traffic selectors → TTL decremented → the SA's endpoint (the endpoint table's record,
//!   re-read when its generation changed) → [`OutboundSa::encapsulate`] → Ethernet header for
//!   the outer next hop → copied into a frame of the egress socket.
//!
//! Sockets have their own UMEMs, so crossing interfaces is one copy per packet (on veth, copy
//! mode copies anyway). A packet without a resolved next hop goes to the kernel through the
//! exception path and is counted. Every drop is counted by [`DropReason`]; the counters are
//! published to the pinned `gw_counters` map after every batch.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use roamgate_ebpf::Endpoint;

use super::Shared;
use super::exception::Exception;
use super::nexthop::{Hop, HopKey};
use super::published::Cached;
use super::registry::{OutboundEntry, SaSnapshot, selected};
use crate::config::Role;
use crate::drop::{DropCounters, DropReason};
use crate::esp::{
    Decapsulated, EncapError, HEADROOM, SaPath, UdpPorts, decapsulate, fragment_ipv4, icmp_too_big,
};
use crate::wire::{Ipv4Packet, Ipv6Packet};
use crate::xsk::{Desc, XskSocket};

/// Forwarding counters, published after the drop reasons in each worker's counter slots (at
/// [`FORWARD_BASE`] + index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Forward {
    /// Frames received on WAN sockets.
    RxWan = 0,
    /// Frames received on LAN sockets.
    RxLan = 1,
    /// Packets decapsulated and accepted.
    Decapsulated = 2,
    /// Packets encapsulated.
    Encapsulated = 3,
    /// Frames queued for transmission on WAN sockets.
    TxWan = 4,
    /// Frames queued for transmission on LAN sockets.
    TxLan = 5,
    /// Packets handed to the kernel (no next hop yet, or an interface not served).
    Exception = 6,
    /// ICMP "too big" answers sent to inner senders.
    IcmpTooBig = 7,
    /// NAT keepalives consumed.
    Keepalive = 8,
    /// TFC dummy packets consumed.
    Dummy = 9,
    /// Decapsulated packets for the gateway itself, written into the TUN device.
    ToTun = 10,
    /// Packets the gateway itself sent into a tunnel (read from the TUN device; counted in
    /// the TUN reader's slots).
    FromTun = 11,
    /// IPv4 packets (DF clear) too large for the SA's path, cut into fragments before
    /// encapsulation (each fragment is then counted as encapsulated).
    Fragmented = 12,
}

impl Forward {
    /// Every counter, in index order.
    pub const ALL: [Forward; 13] = [
        Forward::RxWan,
        Forward::RxLan,
        Forward::Decapsulated,
        Forward::Encapsulated,
        Forward::TxWan,
        Forward::TxLan,
        Forward::Exception,
        Forward::IcmpTooBig,
        Forward::Keepalive,
        Forward::Dummy,
        Forward::ToTun,
        Forward::FromTun,
        Forward::Fragmented,
    ];

    /// The name in metrics and docs.
    pub const fn name(self) -> &'static str {
        match self {
            Forward::RxWan => "rx_wan",
            Forward::RxLan => "rx_lan",
            Forward::Decapsulated => "decapsulated",
            Forward::Encapsulated => "encapsulated",
            Forward::TxWan => "tx_wan",
            Forward::TxLan => "tx_lan",
            Forward::Exception => "exception",
            Forward::IcmpTooBig => "icmp_too_big",
            Forward::Keepalive => "keepalive",
            Forward::Dummy => "dummy",
            Forward::ToTun => "to_tun",
            Forward::FromTun => "from_tun",
            Forward::Fragmented => "fragmented",
        }
    }

    /// The counter's index in a worker's slots of `gw_counters`.
    pub const fn slot(self) -> u32 {
        FORWARD_BASE + self as u32
    }
}

/// Where the forwarding counters start in a worker's counter slots; the drop reasons come
/// first (index = [`DropReason`] as `u32`).
pub const FORWARD_BASE: u32 = 32;
const _: () = assert!(DropReason::COUNT as u32 <= FORWARD_BASE);
const _: () =
    assert!(FORWARD_BASE + Forward::ALL.len() as u32 <= roamgate_ebpf::abi::GW_CNT_STRIDE);

/// One socket a worker serves.
pub(crate) struct Port {
    pub(crate) ifindex: u32,
    pub(crate) role: Role,
    pub(crate) mac: [u8; 6],
    pub(crate) v4: Option<Ipv4Addr>,
    pub(crate) v6: Option<Ipv6Addr>,
    pub(crate) sock: XskSocket,
    pub(crate) pending: Vec<Desc>,
}

/// The endpoint of one outbound slot as last read.
struct CachedEndpoint {
    generation: u32,
    endpoint: Option<Endpoint>,
    path: Option<SaPath>,
}

/// What became of one received frame.
enum Outcome {
    Drop(DropReason),
    Consumed(Forward),
    /// Send `frame[start..start + len]` (Ethernet included) on port `port`.
    Tx {
        port: usize,
        start: usize,
        len: usize,
    },
    /// Hand the IP packet `frame[start..start + len]` to the kernel.
    Exception {
        start: usize,
        len: usize,
    },
    /// Write the IP packet `frame[start..start + len]` into the TUN device.
    Tun {
        start: usize,
        len: usize,
    },
    /// Send the Ethernet frame in the scratch buffer (`len` bytes) on port `port`.
    Scratch {
        port: usize,
        len: usize,
    },
}

pub(crate) struct Worker {
    pub(crate) id: u32,
    pub(crate) ports: Vec<Port>,
    pub(crate) shared: Arc<Shared>,
    exception: Option<Exception>,
    tun: Option<super::tun::TunWriter>,
    /// The gateway's own addresses (decapsulated packets to these go into the TUN device).
    local: Cached<HashSet<IpAddr>>,
    drops: DropCounters,
    fwd: [u64; Forward::ALL.len()],
    endpoints: HashMap<u32, CachedEndpoint>,
    scratch: Vec<u8>,
    /// Where a fragment is encapsulated before it is copied into a TX frame.
    frag: Vec<u8>,
}

fn ip_addrs(ip: &[u8]) -> Option<(IpAddr, IpAddr, u8)> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let p = Ipv4Packet::new_checked(ip).ok()?;
            Some((p.src().into(), p.dst().into(), p.ttl()))
        }
        Some(6) => {
            let p = Ipv6Packet::new_checked(ip).ok()?;
            Some((p.src().into(), p.dst().into(), p.hop_limit()))
        }
        _ => None,
    }
}

/// Decrements the TTL / hop limit of a forwarded packet (and fixes the IPv4 checksum).
fn decrement_ttl(ip: &mut [u8]) -> Result<(), DropReason> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => {
            let mut p = Ipv4Packet::new_checked(ip).map_err(|_| DropReason::BadInnerPacket)?;
            let ttl = p.ttl();
            if ttl <= 1 {
                return Err(DropReason::TtlExpired);
            }
            p.set_ttl(ttl - 1);
            p.fill_checksum();
            Ok(())
        }
        Some(6) => {
            let mut p = Ipv6Packet::new_checked(ip).map_err(|_| DropReason::BadInnerPacket)?;
            let hl = p.hop_limit();
            if hl <= 1 {
                return Err(DropReason::TtlExpired);
            }
            p.set_hop_limit(hl - 1);
            Ok(())
        }
        _ => Err(DropReason::BadInnerPacket),
    }
}

fn ethertype(ip: &[u8]) -> [u8; 2] {
    if ip.first().map(|b| b >> 4) == Some(6) {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    }
}

/// Writes an Ethernet header at `frame[at..at + 14]` for the IP packet that follows.
fn write_eth(frame: &mut [u8], at: usize, dst: [u8; 6], src: [u8; 6]) {
    let et = ethertype(&frame[at + 14..]);
    frame[at..at + 6].copy_from_slice(&dst);
    frame[at + 6..at + 12].copy_from_slice(&src);
    frame[at + 12..at + 14].copy_from_slice(&et);
}

fn port_of(ports: &[Port], ifindex: u32) -> Option<usize> {
    ports.iter().position(|p| p.ifindex == ifindex)
}

/// Two distinct ports, one shared and one mutable.
fn two(ports: &mut [Port], a: usize, b: usize) -> (&Port, &mut Port) {
    debug_assert_ne!(a, b);
    if a < b {
        let (x, y) = ports.split_at_mut(b);
        (&x[a], &mut y[0])
    } else {
        let (x, y) = ports.split_at_mut(a);
        (&y[0], &mut x[b])
    }
}

/// Takes a free TX frame of port `to` for `len` bytes, lets `fill` write it, and queues it for
/// sending; returns whether it was queued. No free frame is a counted `no_tx_frame`; a frame
/// `fill` cannot write goes back to the port and counts as `no_room`.
fn queue_tx(
    ports: &mut [Port],
    drops: &mut DropCounters,
    to: usize,
    len: usize,
    fill: impl FnOnce(&mut [Port], &Desc) -> Option<()>,
) -> bool {
    let Some(addr) = ports[to].sock.alloc() else {
        drops.count(DropReason::NoTxFrame);
        return false;
    };
    let tx = Desc {
        addr,
        len: len as u32,
        options: 0,
    };
    if fill(ports, &tx).is_some() {
        ports[to].pending.push(tx);
        true
    } else {
        ports[to].sock.release(&[tx]);
        drops.count(DropReason::NoRoom);
        false
    }
}

/// Hands the IP packet `packet` to the kernel through the raw sockets: counted as
/// `exception`, or dropped as `exception_failed`.
fn to_kernel(
    exception: Option<&Exception>,
    packet: &[u8],
    fwd: &mut [u64; Forward::ALL.len()],
    drops: &mut DropCounters,
) {
    match exception {
        Some(x) if x.send(packet).is_ok() => fwd[Forward::Exception as usize] += 1,
        _ => drops.count(DropReason::ExceptionFailed),
    }
}

impl Worker {
    pub(crate) fn new(id: u32, ports: Vec<Port>, shared: Arc<Shared>) -> Worker {
        let frame = shared.frame_size as usize;
        Worker {
            id,
            ports,
            local: Cached::of(&shared.local),
            shared,
            exception: None,
            tun: None,
            drops: DropCounters::new(),
            fwd: [0; Forward::ALL.len()],
            endpoints: HashMap::new(),
            scratch: vec![0; frame],
            frag: vec![0; frame],
        }
    }

    /// Serves the sockets until the gateway stops.
    pub(crate) fn run(mut self) {
        // Opened here, in the worker's own thread (and network namespace).
        self.exception = match Exception::open() {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::error!(worker = self.id, "exception path unavailable: {e}");
                None
            }
        };
        self.tun = self.shared.tun.as_ref().and_then(|t| {
            super::tun::TunWriter::new(t.raw_fd(), 64)
                .map_err(|e| {
                    tracing::warn!(worker = self.id, "no io_uring for the TUN device: {e}")
                })
                .ok()
        });
        self.shared.counters.reset(self.id);
        let batch = self.shared.batch;
        let mut rx = vec![Desc::default(); batch];
        let mut sas = Cached::of(&self.shared.registry);
        let mut hops = Cached::of(self.shared.hops.table());
        for p in &mut self.ports {
            p.sock.refill();
        }
        tracing::info!(
            worker = self.id,
            sockets = self.ports.len(),
            "worker running"
        );
        while !self.shared.stop.load(Ordering::Acquire) {
            // Once per batch: new SAs, next hops or addresses of our own?
            sas.refresh(&self.shared.registry);
            hops.refresh(self.shared.hops.table());
            self.local.refresh(&self.shared.local);
            let mut got = 0;
            for i in 0..self.ports.len() {
                let n = self.ports[i].sock.rx_batch(&mut rx);
                got += n;
                for d in &rx[..n] {
                    self.handle(i, *d, sas.get(), hops.get());
                }
                self.ports[i].sock.release(&rx[..n]);
            }
            self.flush();
            if got > 0 {
                self.publish();
            } else {
                self.wait(10);
            }
        }
        self.publish();
        tracing::info!(worker = self.id, "worker stopped");
    }

    fn flush(&mut self) {
        if let Some(t) = &mut self.tun {
            t.submit();
        }
        for p in &mut self.ports {
            if !p.pending.is_empty() {
                let n = p.sock.tx_batch(&p.pending);
                if n < p.pending.len() {
                    let rest = &p.pending[n..];
                    for _ in rest {
                        self.drops.count(DropReason::TxRingFull);
                    }
                    p.sock.release(rest);
                }
                let fwd = if p.role == Role::Wan {
                    Forward::TxWan
                } else {
                    Forward::TxLan
                };
                self.fwd[fwd as usize] += n as u64;
                p.pending.clear();
            }
            p.sock.complete();
            p.sock.refill();
        }
    }

    fn wait(&mut self, timeout_ms: i32) {
        let mut fds: Vec<libc::pollfd> = self
            .ports
            .iter()
            .map(|p| libc::pollfd {
                fd: p.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of pollfd for the duration of the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    }

    fn publish(&self) {
        let c = &self.shared.counters;
        let tun_failed = self.tun.as_ref().map_or(0, |t| t.failed);
        for (reason, n) in self.drops.iter() {
            let n = if reason == DropReason::ExceptionFailed {
                n + tun_failed
            } else {
                n
            };
            c.store(self.id, reason as u32, n);
        }
        for f in Forward::ALL {
            c.store(self.id, f.slot(), self.fwd[f as usize]);
        }
    }

    fn handle(&mut self, i: usize, d: Desc, sas: &SaSnapshot, hops: &HashMap<HopKey, Hop>) {
        let fs = u64::from(self.shared.frame_size);
        let chunk = d.addr - d.addr % fs;
        let off = (d.addr - chunk) as usize;
        let len = d.len as usize;
        let whole = Desc {
            addr: chunk,
            len: self.shared.frame_size,
            options: 0,
        };
        let outcome = match self.ports[i].role {
            Role::Wan => {
                self.fwd[Forward::RxWan as usize] += 1;
                self.wan_frame(i, &whole, off, len, sas, hops)
            }
            Role::Lan => {
                self.fwd[Forward::RxLan as usize] += 1;
                self.lan_frame(i, &whole, off, len, sas, hops)
            }
        };
        match outcome {
            Outcome::Drop(r) => self.drops.count(r),
            Outcome::Consumed(f) => self.fwd[f as usize] += 1,
            Outcome::Tx { port, start, len } => self.copy_out(i, &whole, start, len, port),
            Outcome::Exception { start, len } => {
                let Some(frame) = self.ports[i].sock.frame(&whole) else {
                    return;
                };
                to_kernel(
                    self.exception.as_ref(),
                    &frame[start..start + len],
                    &mut self.fwd,
                    &mut self.drops,
                );
            }
            Outcome::Tun { start, len } => {
                let Some(frame) = self.ports[i].sock.frame(&whole) else {
                    return;
                };
                let pushed = self
                    .tun
                    .as_mut()
                    .is_some_and(|t| t.push(&frame[start..start + len]));
                if pushed {
                    self.fwd[Forward::ToTun as usize] += 1;
                } else {
                    self.drops.count(DropReason::ExceptionFailed);
                }
            }
            Outcome::Scratch { port, len } => {
                let scratch = &self.scratch[..len];
                queue_tx(&mut self.ports, &mut self.drops, port, len, |ports, tx| {
                    ports[port].sock.frame_mut(tx)?.copy_from_slice(scratch);
                    Some(())
                });
            }
        }
    }

    /// Where a packet for next hop `key` leaves: the port serving the next hop's interface and
    /// the hop, resolved (`hop`) or not. An unresolved next hop is asked of the resolver; one
    /// on an interface no socket of this worker serves is `None` too (the exception path).
    fn egress(&self, hop: Option<Hop>, key: HopKey) -> Option<(usize, Hop)> {
        if hop.is_none() {
            self.shared.hops.want(key);
        }
        hop.and_then(|h| port_of(&self.ports, h.ifindex).map(|j| (j, h)))
    }

    /// Copies `frame[start..start + len]` of port `from` into a new frame of port `to`.
    fn copy_out(&mut self, from: usize, whole: &Desc, start: usize, len: usize, to: usize) {
        let scratch = &mut self.scratch[..len];
        queue_tx(&mut self.ports, &mut self.drops, to, len, |ports, tx| {
            if from == to {
                // One UMEM: through the scratch buffer.
                scratch.copy_from_slice(&ports[from].sock.frame(whole)?[start..start + len]);
                ports[to].sock.frame_mut(tx)?.copy_from_slice(scratch);
            } else {
                let (a, b) = two(ports, from, to);
                let src = a.sock.frame(whole)?;
                b.sock
                    .frame_mut(tx)?
                    .copy_from_slice(&src[start..start + len]);
            }
            Some(())
        });
    }

    fn wan_frame(
        &mut self,
        i: usize,
        whole: &Desc,
        off: usize,
        len: usize,
        sas: &SaSnapshot,
        hops: &HashMap<HopKey, Hop>,
    ) -> Outcome {
        let Some(frame) = self.ports[i].sock.frame_mut(whole) else {
            return Outcome::Drop(DropReason::Truncated);
        };
        if len < 14 || off + len > frame.len() {
            return Outcome::Drop(DropReason::Truncated);
        }
        if !matches!(frame[off + 12..off + 14], [0x08, 0x00] | [0x86, 0xdd]) {
            return Outcome::Drop(DropReason::NotIp);
        }
        let result = decapsulate(frame, off + 14, len - 14, |spi| {
            sas.inbound.get(&spi).map(|e| &e.sa)
        });
        let (start, ilen, spi) = match result {
            Err(r) => return Outcome::Drop(r),
            Ok(Decapsulated::Packet {
                start, len, spi, ..
            }) => (start, len, spi),
            Ok(Decapsulated::Dummy { .. }) => return Outcome::Consumed(Forward::Dummy),
            Ok(Decapsulated::Keepalive) => return Outcome::Consumed(Forward::Keepalive),
            Ok(Decapsulated::Ike { .. }) => return Outcome::Drop(DropReason::NotEsp),
        };
        let Some(entry) = sas.inbound.get(&spi) else {
            return Outcome::Drop(DropReason::UnknownSpi);
        };
        let Some((src, dst, _)) = ip_addrs(&frame[start..start + ilen]) else {
            return Outcome::Drop(DropReason::BadInnerPacket);
        };
        if !selected(&entry.remote_ts, src) || !selected(&entry.local_ts, dst) {
            return Outcome::Drop(DropReason::TrafficSelector);
        }
        if self.tun.is_some() && self.local.get().contains(&dst) {
            // For the gateway itself: delivered, not forwarded.
            self.fwd[Forward::Decapsulated as usize] += 1;
            return Outcome::Tun { start, len: ilen };
        }
        let key = HopKey { src: None, dst };
        let out = self.egress(hops.get(&key).copied(), key);
        if out.is_none()
            && self.tun.is_some()
            && self
                .shared
                .tun
                .as_ref()
                .is_some_and(|t| t.forwarding().forwards(&dst))
        {
            // A neighbour miss, or an interface no worker serves: the kernel receives the
            // packet on the TUN device and forwards it (TTL, ICMP errors and neighbour
            // resolution included).
            self.fwd[Forward::Decapsulated as usize] += 1;
            return Outcome::Tun { start, len: ilen };
        }
        let Some(frame) = self.ports[i].sock.frame_mut(whole) else {
            return Outcome::Drop(DropReason::Truncated);
        };
        if let Err(r) = decrement_ttl(&mut frame[start..start + ilen]) {
            return Outcome::Drop(r);
        }
        self.fwd[Forward::Decapsulated as usize] += 1;
        let Some((j, hop)) = out else {
            return Outcome::Exception { start, len: ilen };
        };
        if start < 14 {
            return Outcome::Drop(DropReason::NoRoom);
        }
        let Some(frame) = self.ports[i].sock.frame_mut(whole) else {
            return Outcome::Drop(DropReason::Truncated);
        };
        write_eth(frame, start - 14, hop.dst_mac, hop.src_mac);
        Outcome::Tx {
            port: j,
            start: start - 14,
            len: ilen + 14,
        }
    }

    /// Cuts the IPv4 packet at `inner` (start, length) of port `i`'s frame into fragments of
    /// at most `fit` bytes, encapsulates each and sends it on `target` (port and next hop), or
    /// through the exception path when the next hop is not known yet.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the parts of one decision"
    )]
    fn send_inner_fragments(
        &mut self,
        i: usize,
        whole: &Desc,
        (start, len): (usize, usize),
        entry: &OutboundEntry,
        path: &SaPath,
        fit: usize,
        target: Option<(usize, Hop)>,
    ) -> Outcome {
        let Some(packet) = self.ports[i]
            .sock
            .frame(whole)
            .and_then(|f| f.get(start..start + len))
        else {
            return Outcome::Drop(DropReason::Truncated);
        };
        self.scratch[..len].copy_from_slice(packet);
        let at = 14 + HEADROOM;
        let mut offset = Some(0);
        while let Some(o) = offset {
            let (n, next) = match fragment_ipv4(&self.scratch[..len], fit, o, &mut self.frag[at..])
            {
                Ok(v) => v,
                Err(r) => return Outcome::Drop(r),
            };
            offset = next;
            let e = match entry.sa.encapsulate(path, &mut self.frag, at, n) {
                Ok(e) => e,
                Err(e) => return Outcome::Drop(e.reason()),
            };
            self.fwd[Forward::Encapsulated as usize] += 1;
            let Some((j, hop)) = target else {
                to_kernel(
                    self.exception.as_ref(),
                    &self.frag[e.start..e.start + e.len],
                    &mut self.fwd,
                    &mut self.drops,
                );
                continue;
            };
            write_eth(&mut self.frag, e.start - 14, hop.dst_mac, hop.src_mac);
            let frame = &self.frag[e.start - 14..e.start + e.len];
            let queued = queue_tx(
                &mut self.ports,
                &mut self.drops,
                j,
                frame.len(),
                |ports, tx| {
                    ports[j].sock.frame_mut(tx)?.copy_from_slice(frame);
                    Some(())
                },
            );
            if !queued {
                // The datagram cannot be whole any more: no point in its other fragments.
                break;
            }
        }
        Outcome::Consumed(Forward::Fragmented)
    }

    /// The endpoint of outbound slot `slot`, re-read when its generation changed.
    fn endpoint(&mut self, slot: u32) -> Option<(Endpoint, SaPath)> {
        let table = &self.shared.endpoints;
        let g = table.generation(slot);
        let cached = self.endpoints.entry(slot).or_insert(CachedEndpoint {
            generation: u32::MAX,
            endpoint: None,
            path: None,
        });
        if cached.generation != g
            && let Some(record) = table.read(slot)
        {
            cached.generation = record.generation;
            cached.endpoint = Endpoint::from_record(&record);
            cached.path = cached.endpoint.and_then(|e| {
                SaPath::new(
                    e.local,
                    e.remote,
                    e.udp.map(|(src, dst)| UdpPorts { src, dst }),
                )
                .ok()
            });
            if let Some(e) = cached.endpoint {
                tracing::debug!(worker = self.id, slot, generation = record.generation, local = %e.local, remote = %e.remote, "endpoint changed");
            }
        }
        Some((cached.endpoint?, cached.path?))
    }

    fn lan_frame(
        &mut self,
        i: usize,
        whole: &Desc,
        off: usize,
        len: usize,
        sas: &SaSnapshot,
        hops: &HashMap<HopKey, Hop>,
    ) -> Outcome {
        let ip_start = off + 14;
        let (src, dst) = {
            let Some(frame) = self.ports[i].sock.frame(whole) else {
                return Outcome::Drop(DropReason::Truncated);
            };
            if len < 14 || off + len > frame.len() {
                return Outcome::Drop(DropReason::Truncated);
            }
            if !matches!(frame[off + 12..off + 14], [0x08, 0x00] | [0x86, 0xdd]) {
                return Outcome::Drop(DropReason::NotIp);
            }
            match ip_addrs(&frame[ip_start..off + len]) {
                Some((s, d, _)) => (s, d),
                None => return Outcome::Drop(DropReason::BadInnerPacket),
            }
        };
        let Some(entry) = sas.outbound_for(dst) else {
            return Outcome::Drop(DropReason::NoOutboundSa);
        };
        if !selected(&entry.local_ts, src) {
            return Outcome::Drop(DropReason::TrafficSelector);
        }
        let Some((endpoint, path)) = self.endpoint(entry.slot) else {
            return Outcome::Drop(DropReason::NoEndpoint);
        };
        let key = HopKey {
            src: Some(endpoint.local),
            dst: endpoint.remote,
        };
        let hop = match endpoint.next_hop {
            Some(n) => Some(Hop {
                ifindex: n.ifindex,
                dst_mac: n.next_hop_mac,
                src_mac: n.src_mac,
                mtu: 0,
            }),
            None => hops.get(&key).copied(),
        };
        if let Some(h) = hop
            && h.mtu != 0
            && entry.sa.path_mtu() != h.mtu
        {
            entry.sa.set_path_mtu(h.mtu);
        }
        let target = self.egress(hop, key);
        let port = &mut self.ports[i];
        let (port_mac, port_v4, port_v6) = (port.mac, port.v4, port.v6);
        let Some(frame) = port.sock.frame_mut(whole) else {
            return Outcome::Drop(DropReason::Truncated);
        };
        if let Err(r) = decrement_ttl(&mut frame[ip_start..off + len]) {
            return Outcome::Drop(r);
        }
        if let Some(fit) = entry
            .sa
            .inner_fragment_size(&path, &frame[ip_start..off + len])
        {
            return self.send_inner_fragments(
                i,
                whole,
                (ip_start, len - 14),
                entry,
                &path,
                fit,
                target,
            );
        }
        let e = match entry.sa.encapsulate(&path, frame, ip_start, len - 14) {
            Ok(e) => e,
            Err(EncapError::TooBig { mtu }) => {
                self.drops.count(DropReason::TooBig);
                let from = match src {
                    IpAddr::V4(_) => port_v4.map(IpAddr::V4),
                    IpAddr::V6(_) => port_v6.map(IpAddr::V6),
                };
                let Some(from) = from else {
                    return Outcome::Consumed(Forward::IcmpTooBig);
                };
                // The answer goes back to the sender: the frame's source MAC.
                let mut sender = [0u8; 6];
                sender.copy_from_slice(&frame[off + 6..off + 12]);
                let inner = &frame[ip_start..off + len];
                return match icmp_too_big(inner, mtu, from, &mut self.scratch[14..]) {
                    Ok(Some(n)) => {
                        let et = ethertype(&self.scratch[14..]);
                        self.scratch[..6].copy_from_slice(&sender);
                        self.scratch[6..12].copy_from_slice(&port_mac);
                        self.scratch[12..14].copy_from_slice(&et);
                        self.fwd[Forward::IcmpTooBig as usize] += 1;
                        Outcome::Scratch {
                            port: i,
                            len: n + 14,
                        }
                    }
                    Ok(None) => Outcome::Consumed(Forward::IcmpTooBig),
                    Err(r) => Outcome::Drop(r),
                };
            }
            Err(EncapError::Drop(r)) => return Outcome::Drop(r),
        };
        if e.fragment {
            return Outcome::Drop(DropReason::OuterFragmentationNeeded);
        }
        self.fwd[Forward::Encapsulated as usize] += 1;
        let Some((j, hop)) = target else {
            return Outcome::Exception {
                start: e.start,
                len: e.len,
            };
        };
        if e.start < 14 {
            return Outcome::Drop(DropReason::NoRoom);
        }
        let Some(frame) = self.ports[i].sock.frame_mut(whole) else {
            return Outcome::Drop(DropReason::Truncated);
        };
        write_eth(frame, e.start - 14, hop.dst_mac, hop.src_mac);
        Outcome::Tx {
            port: j,
            start: e.start - 14,
            len: e.len + 14,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    fn ipv4(ttl: u8) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        p[8] = ttl;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 101, 0, 2]);
        p[16..20].copy_from_slice(&[10, 102, 0, 2]);
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn forwarding_decrements_the_ttl_and_keeps_the_checksum_valid() {
        let mut p = ipv4(64);
        decrement_ttl(&mut p).unwrap();
        assert_eq!(p[8], 63);
        assert_eq!(checksum(&p[..20]), 0, "a valid header sums to zero");
        assert_eq!(decrement_ttl(&mut ipv4(1)), Err(DropReason::TtlExpired));
        assert_eq!(decrement_ttl(&mut ipv4(0)), Err(DropReason::TtlExpired));
        let mut v6 = vec![0u8; 40];
        v6[0] = 0x60;
        v6[6] = 59; // no next header: an empty payload is allowed
        v6[7] = 2;
        decrement_ttl(&mut v6).unwrap();
        assert_eq!(v6[7], 1);
        assert_eq!(decrement_ttl(&mut v6), Err(DropReason::TtlExpired));
        assert_eq!(
            decrement_ttl(&mut [0x45, 0]),
            Err(DropReason::BadInnerPacket)
        );
        assert_eq!(decrement_ttl(&mut []), Err(DropReason::BadInnerPacket));
    }

    #[test]
    fn the_ethernet_header_follows_the_ip_version() {
        let mut f = vec![0u8; 14];
        f.extend(ipv4(64));
        write_eth(&mut f, 0, [1; 6], [2; 6]);
        assert_eq!(&f[..14], &[1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00]);
        let mut f = vec![0u8; 14];
        f.push(0x60);
        write_eth(&mut f, 0, [1; 6], [2; 6]);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let (src, dst, ttl) = ip_addrs(&ipv4(9)).unwrap();
        assert_eq!(
            (src.to_string(), dst.to_string(), ttl),
            ("10.101.0.2".into(), "10.102.0.2".into(), 9)
        );
        assert!(ip_addrs(&[0x45; 10]).is_none());
    }

    #[test]
    fn counter_slots_do_not_overlap() {
        for f in Forward::ALL {
            assert!(f.slot() >= DropReason::COUNT as u32);
            assert_eq!(f.slot(), FORWARD_BASE + f as u32);
        }
        let mut names: Vec<_> = Forward::ALL.iter().map(|f| f.name()).collect();
        names.extend(DropReason::ALL.iter().map(|r| r.name()));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "every counter has its own name");
    }
}
