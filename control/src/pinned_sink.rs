//! The data plane's side of [`SaSink`]: negotiated CHILD_SAs written into the gateway's pinned
//! eBPF maps (docs/gateway.md), so the AF_XDP workers pick them up with their next batch.
//!
//! Each CHILD_SA takes two SA slots, inbound and outbound, allocated from
//! [`FIRST_SLOT`] up (the slots below belong to the gateway's static SAs). The outbound slot's
//! endpoint record holds the outer addresses and ports; a MOBIKE move
//! ([`SaEvent::UpdateAddresses`]) is one [`EndpointTable::update`] of that record, with no
//! other change. The inbound SA goes into the SPI index, the outbound SA's peer selectors into
//! the protected-prefix tries.
//!
//! The data plane checks addresses only: an SA whose selectors restrict the protocol or the
//! ports, a transport-mode SA, or a cipher other than AES-GCM-16 is refused with
//! [`SaSinkError::Other`] saying why (the engine counts it), never installed wider than
//! negotiated.
//!
//! [`PinnedMapSink::open_when_ready`] first waits, for a bounded time, for the gateway's
//! readiness marker (`<pin_dir>/gateway_ready`, pinned by `roamgate gateway` after every other
//! map and once its workers run), so the control process may start before the gateway.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roamgate_ebpf::abi::{ABI_VERSION, GatewayReady, SA_MAX, SA_TS_MAX};
use roamgate_ebpf::{
    Cipher, Direction, EbpfError, Endpoint, EndpointTable, Prefix, SaLimits, SaMode, SaSpec,
    SaTable,
};
use zeroize::Zeroizing;

use crate::crypto::sk::Encr;
use crate::engine::{ChildSaInstall, Mode, SaEvent, SaSink, SaSinkError};
use crate::wire::payload::{AddressRange, TrafficSelector};

/// The first SA slot the control process uses; the gateway's static SAs live below it.
pub const FIRST_SLOT: u32 = roamgate_ebpf::STATIC_SA_SLOTS;

/// How often [`PinnedMapSink::open_when_ready`] logs what it still waits for.
pub const WAIT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// How often [`PinnedMapSink::open_when_ready`] looks for the readiness marker.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// Why [`PinnedMapSink::open_when_ready`] did not open the data plane.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The readiness marker did not appear in time.
    #[error(
        "the data plane in {} is not ready after {}: its readiness marker {} is missing; start \
         `roamgate gateway` with pin_dir = {:?} (daemon.dataplane_wait says how long to wait), \
         or run `roamgate control --no-dataplane` for IKE alone",
        pin_dir.display(),
        seconds(*waited),
        marker.display(),
        pin_dir.display().to_string()
    )]
    NotReady {
        /// The pin directory looked in.
        pin_dir: PathBuf,
        /// The marker waited for.
        marker: PathBuf,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The gateway is of another build.
    #[error(
        "the data plane in {} runs map ABI version {found}, this control process version \
         {expected}: run `roamgate gateway` and `roamgate control` of the same release",
        pin_dir.display()
    )]
    AbiMismatch {
        /// The pin directory.
        pin_dir: PathBuf,
        /// The gateway's version (its readiness record's).
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// Asked to stop while waiting.
    #[error("stopped while waiting for the data plane in {}", pin_dir.display())]
    Stopped {
        /// The pin directory.
        pin_dir: PathBuf,
    },
    /// The marker or a map could not be opened.
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
}

/// `d` in seconds for a sentence: `30s`, `0.5s`.
fn seconds(d: Duration) -> String {
    format!("{}s", (d.as_secs_f64() * 10.0).round() / 10.0)
}

/// Waits up to `wait` for the readiness marker of the data plane pinned in `pin_dir` and
/// returns its record; logs what it waits for at once and then every [`WAIT_LOG_INTERVAL`].
/// `stop` is asked between two looks; `true` ends the wait with [`OpenError::Stopped`].
/// With `wait` zero it looks once.
pub fn wait_for_dataplane(
    pin_dir: &Path,
    wait: Duration,
    mut stop: impl FnMut() -> bool,
) -> Result<GatewayReady, OpenError> {
    let marker = roamgate_ebpf::ready_path(pin_dir);
    let start = Instant::now();
    let mut next_log = start;
    loop {
        if let Some(ready) = roamgate_ebpf::read_ready(pin_dir)? {
            if ready.abi_version != ABI_VERSION {
                return Err(OpenError::AbiMismatch {
                    pin_dir: pin_dir.to_owned(),
                    found: ready.abi_version,
                    expected: ABI_VERSION,
                });
            }
            return Ok(ready);
        }
        let waited = start.elapsed();
        if waited >= wait {
            return Err(OpenError::NotReady {
                pin_dir: pin_dir.to_owned(),
                marker,
                waited: wait,
            });
        }
        if Instant::now() >= next_log {
            tracing::info!(
                marker = %marker.display(),
                waited = %seconds(waited),
                limit = %seconds(wait),
                "waiting for the data plane: `roamgate gateway` with this pin directory must \
                 start and pin its readiness marker"
            );
            next_log += WAIT_LOG_INTERVAL;
        }
        if stop() {
            return Err(OpenError::Stopped {
                pin_dir: pin_dir.to_owned(),
            });
        }
        std::thread::sleep(WAIT_POLL.min(wait - waited));
    }
}

/// The two SA slots of one CHILD_SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    /// The inbound SA's slot.
    pub inbound: u32,
    /// The outbound SA's slot (and its endpoint record's).
    pub outbound: u32,
}

/// An [`SaSink`] over the gateway's pinned maps.
pub struct PinnedMapSink {
    sas: SaTable,
    endpoints: EndpointTable,
    /// Free pair indices: pair `k` is slots `FIRST_SLOT + 2k` and `FIRST_SLOT + 2k + 1`.
    free: BTreeSet<u32>,
    /// Inbound SPI → slots.
    installed: HashMap<u32, Slots>,
}

impl core::fmt::Debug for PinnedMapSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PinnedMapSink")
            .field("installed", &self.installed.len())
            .field("free", &self.free.len())
            .finish_non_exhaustive()
    }
}

impl PinnedMapSink {
    /// Waits up to `wait` for the data plane's readiness marker ([`wait_for_dataplane`]),
    /// then opens its maps ([`PinnedMapSink::open`]); returns the gateway's readiness record
    /// too.
    pub fn open_when_ready(
        pin_dir: &Path,
        wait: Duration,
        stop: impl FnMut() -> bool,
    ) -> Result<(PinnedMapSink, GatewayReady), OpenError> {
        let ready = wait_for_dataplane(pin_dir, wait, stop)?;
        Ok((PinnedMapSink::open(pin_dir)?, ready))
    }

    /// Opens the maps the gateway pinned under `pin_dir` (`roamgate gateway` must have
    /// started). Slots left from an earlier control process are cleared: its SAs died with
    /// their IKE SAs.
    pub fn open(pin_dir: &Path) -> Result<PinnedMapSink, EbpfError> {
        let mut sas = SaTable::open(pin_dir)?;
        let mut endpoints = EndpointTable::open(pin_dir)?;
        let last = sas.slots().min(SA_MAX);
        let pairs = last.saturating_sub(FIRST_SLOT) / 2;
        for slot in FIRST_SLOT..FIRST_SLOT + 2 * pairs {
            if sas.read(slot).is_some_and(|r| r.state != 0) {
                sas.remove(slot)?;
                endpoints.clear(slot)?;
            }
        }
        Ok(PinnedMapSink {
            sas,
            endpoints,
            free: (0..pairs).collect(),
            installed: HashMap::new(),
        })
    }

    /// How many more CHILD_SAs fit.
    pub fn capacity(&self) -> usize {
        self.free.len()
    }

    /// The slots of the CHILD_SA with inbound SPI `spi`.
    pub fn slots(&self, spi: u32) -> Option<Slots> {
        self.installed.get(&spi).copied()
    }

    fn install(&mut self, c: &ChildSaInstall) -> Result<(), SaSinkError> {
        if self.installed.contains_key(&c.inbound.spi) {
            return Err(SaSinkError::DuplicateSpi(c.inbound.spi));
        }
        let cipher = match c.encryption {
            Encr::AesGcm16(16) => Cipher::Aes128Gcm16,
            Encr::AesGcm16(32) => Cipher::Aes256Gcm16,
            other => {
                return Err(SaSinkError::Other(format!(
                    "the data plane carries AES-GCM-16 only, not {other:?}"
                )));
            }
        };
        if c.integrity.is_some() {
            return Err(SaSinkError::Other(
                "the data plane carries AEAD ciphers only".into(),
            ));
        }
        let local_ts = prefixes(&c.local_ts, "local")?;
        let remote_ts = prefixes(&c.remote_ts, "remote")?;
        let mode = match c.mode {
            Mode::Tunnel => SaMode::Tunnel,
            Mode::Beet => match (local_ts.as_slice(), remote_ts.as_slice()) {
                ([l], [r]) if l.len() == host_len(l.addr()) && r.len() == host_len(r.addr()) => {
                    SaMode::Beet {
                        src: l.addr(),
                        dst: r.addr(),
                    }
                }
                _ => {
                    return Err(SaSinkError::Other(
                        "a BEET SA needs one host address on each side".into(),
                    ));
                }
            },
            Mode::Transport => {
                return Err(SaSinkError::Other(
                    "the data plane has no transport mode".into(),
                ));
            }
        };
        let pair = *self.free.first().ok_or(SaSinkError::Full)?;
        let slots = Slots {
            inbound: FIRST_SLOT + 2 * pair,
            outbound: FIRST_SLOT + 2 * pair + 1,
        };
        let keymat = |keys: &crate::engine::SaKeys| {
            let mut k = Zeroizing::new(keys.encryption_key.expose().to_vec());
            k.extend_from_slice(keys.salt.expose());
            k
        };
        let (key_in, key_out) = (keymat(&c.inbound), keymat(&c.outbound));
        let spec = |spi, direction, key| SaSpec {
            spi,
            direction,
            mode,
            cipher,
            esn: c.esn,
            key,
            limits: SaLimits::default(),
            local_ts: local_ts.as_slice(),
            remote_ts: remote_ts.as_slice(),
        };
        let endpoint = Endpoint {
            local: c.local.ip(),
            remote: c.remote.ip(),
            udp: c.udp_encap.then(|| (c.local.port(), c.remote.port())),
            next_hop: None,
        };
        // Outbound first, so the inbound SA never decrypts for a peer we cannot answer.
        self.endpoints
            .update(slots.outbound, &endpoint)
            .map_err(map_error)?;
        self.sas
            .install(
                slots.outbound,
                &spec(c.outbound.spi, Direction::Outbound, &key_out[..]),
            )
            .map_err(map_error)?;
        if let Err(e) = self.sas.install(
            slots.inbound,
            &spec(c.inbound.spi, Direction::Inbound, &key_in[..]),
        ) {
            let _ = self.sas.remove(slots.outbound);
            let _ = self.endpoints.clear(slots.outbound);
            return Err(map_error(e));
        }
        self.free.remove(&pair);
        self.installed.insert(c.inbound.spi, slots);
        tracing::debug!(
            spi_in = format_args!("{:08x}", c.inbound.spi),
            slot_in = slots.inbound,
            slot_out = slots.outbound,
            "CHILD_SA written to the data plane"
        );
        Ok(())
    }
}

impl SaSink for PinnedMapSink {
    fn apply(&mut self, event: &SaEvent) -> Result<(), SaSinkError> {
        match event {
            SaEvent::Install(c) => self.install(c),
            SaEvent::UpdateAddresses {
                inbound_spi,
                local,
                remote,
                udp_encap,
                ..
            } => {
                let slots = self
                    .slots(*inbound_spi)
                    .ok_or(SaSinkError::UnknownSpi(*inbound_spi))?;
                let endpoint = Endpoint {
                    local: local.ip(),
                    remote: remote.ip(),
                    udp: udp_encap.then(|| (local.port(), remote.port())),
                    next_hop: None,
                };
                self.endpoints
                    .update(slots.outbound, &endpoint)
                    .map(|_| ())
                    .map_err(map_error)
            }
            SaEvent::Delete { inbound_spi, .. } => {
                let slots = self
                    .installed
                    .remove(inbound_spi)
                    .ok_or(SaSinkError::UnknownSpi(*inbound_spi))?;
                // Inbound first: nothing new is decrypted for an SA that is going away.
                let r = self
                    .sas
                    .remove(slots.inbound)
                    .and_then(|()| self.sas.remove(slots.outbound))
                    .and_then(|()| self.endpoints.clear(slots.outbound));
                self.free.insert((slots.inbound - FIRST_SLOT) / 2);
                r.map_err(map_error)
            }
        }
    }
}

fn map_error(e: EbpfError) -> SaSinkError {
    SaSinkError::Other(e.to_string())
}

fn host_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// The prefixes covering `selectors` exactly; refuses protocol/port restrictions and more
/// than [`SA_TS_MAX`] prefixes.
fn prefixes(selectors: &[TrafficSelector], side: &str) -> Result<Vec<Prefix>, SaSinkError> {
    let mut out = Vec::new();
    for ts in selectors {
        let (start, end, proto, ports) = match ts {
            TrafficSelector::Ipv4(r) => range(r, |a| u128::from(u32::from(a))),
            TrafficSelector::Ipv6(r) => range(r, u128::from),
            TrafficSelector::Other { ty, .. } => {
                return Err(SaSinkError::Other(format!(
                    "{side} traffic selector of type {ty:?} is not an address range"
                )));
            }
        };
        if proto != 0 || ports != (0, u16::MAX) {
            return Err(SaSinkError::Other(format!(
                "{side} traffic selector restricts protocol {proto} / ports {}-{}; the data plane enforces addresses only",
                ports.0, ports.1
            )));
        }
        let (bits, v4) = match ts {
            TrafficSelector::Ipv4(_) => (32u32, true),
            _ => (128u32, false),
        };
        for (addr, len) in cover(start, end, bits) {
            let ip = if v4 {
                IpAddr::V4((addr as u32).into())
            } else {
                IpAddr::V6(addr.into())
            };
            out.push(Prefix::new(ip, len).map_err(SaSinkError::Other)?);
        }
    }
    if out.len() > SA_TS_MAX {
        return Err(SaSinkError::Other(format!(
            "{side} traffic selectors need {} prefixes; the data plane holds {SA_TS_MAX}",
            out.len()
        )));
    }
    Ok(out)
}

/// A range's first and last address as integers, its protocol and its ports.
fn range<A: Copy>(r: &AddressRange<A>, to: impl Fn(A) -> u128) -> (u128, u128, u8, (u16, u16)) {
    (
        to(r.start),
        to(r.end),
        r.ip_protocol,
        (r.start_port, r.end_port),
    )
}

/// The smallest list of prefixes that covers `start..=end` exactly in a `bits`-wide space.
fn cover(start: u128, end: u128, bits: u32) -> Vec<(u128, u8)> {
    // The last address of the aligned block of 2^size_log addresses at `at`.
    let block_last = |at: u128, size_log: u32| -> Option<u128> {
        if size_log >= 128 {
            (at == 0).then_some(u128::MAX)
        } else {
            at.checked_add((1u128 << size_log) - 1)
        }
    };
    let mut out = Vec::new();
    let mut at = start;
    while at <= end {
        let mut size_log = if at == 0 {
            bits
        } else {
            at.trailing_zeros().min(bits)
        };
        while size_log > 0 && block_last(at, size_log).is_none_or(|l| l > end) {
            size_log -= 1;
        }
        out.push((at, (bits - size_log) as u8));
        match block_last(at, size_log) {
            Some(last) if last < end => at = last + 1,
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_marker_the_wait_ends_on_time_with_one_sentence() {
        let dir = Path::new("/nonexistent/roamgate-pins");
        let err = wait_for_dataplane(dir, Duration::ZERO, || false).unwrap_err();
        assert!(matches!(err, OpenError::NotReady { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "the data plane in /nonexistent/roamgate-pins is not ready after 0s: its readiness \
             marker /nonexistent/roamgate-pins/gateway_ready is missing; start `roamgate \
             gateway` with pin_dir = \"/nonexistent/roamgate-pins\" (daemon.dataplane_wait says \
             how long to wait), or run `roamgate control --no-dataplane` for IKE alone"
        );

        let begin = Instant::now();
        let err = wait_for_dataplane(dir, Duration::from_millis(300), || false).unwrap_err();
        let took = begin.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert!(err.to_string().contains("after 0.3s"), "{err}");
    }

    #[test]
    fn a_stop_request_ends_the_wait() {
        let mut asked = 0;
        let err = wait_for_dataplane(
            Path::new("/nonexistent/pins"),
            Duration::from_secs(60),
            || {
                asked += 1;
                asked == 3
            },
        )
        .unwrap_err();
        assert!(matches!(err, OpenError::Stopped { .. }), "{err}");
        assert_eq!(asked, 3);
    }

    #[test]
    fn ranges_become_exact_prefixes() {
        assert_eq!(cover(0, u32::MAX as u128, 32), vec![(0, 0)]);
        assert_eq!(cover(0x0a65_0000, 0x0a65_00ff, 32), vec![(0x0a65_0000, 24)]);
        assert_eq!(cover(5, 5, 32), vec![(5, 32)]);
        assert_eq!(cover(1, 6, 32), vec![(1, 32), (2, 31), (4, 31), (6, 32)]);
        assert_eq!(cover(0, u128::MAX, 128), vec![(0, 0)]);
        assert_eq!(
            cover(
                0xfd00_0065u128 << 96,
                (0xfd00_0065u128 << 96) | ((1u128 << 64) - 1),
                128
            ),
            vec![(0xfd00_0065u128 << 96, 64)]
        );
    }

    #[test]
    fn port_selectors_are_refused() {
        let ts = TrafficSelector::Ipv4(AddressRange {
            ip_protocol: 6,
            start_port: 443,
            end_port: 443,
            start: "10.0.0.0".parse().unwrap(),
            end: "10.0.0.255".parse().unwrap(),
        });
        let err = prefixes(&[ts], "local").unwrap_err().to_string();
        assert!(err.contains("addresses only"), "{err}");
    }

    #[test]
    fn too_many_prefixes_are_refused() {
        let ts = TrafficSelector::Ipv4(AddressRange::any(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.6".parse().unwrap(),
        ));
        assert_eq!(
            prefixes(std::slice::from_ref(&ts), "remote").unwrap().len(),
            4
        );
        let wide = TrafficSelector::Ipv4(AddressRange::any(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.14".parse().unwrap(),
        ));
        assert!(prefixes(&[wide], "remote").is_err());
    }
}
