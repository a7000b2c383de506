//! Traffic: a sequenced UDP probe stream that measures loss and the longest gap, and wrappers
//! around ping and iperf3.
//!
//! The probe's sender and receiver live in one process, so both read the same monotonic clock:
//! a gap is measured exactly, not estimated from two hosts' clocks. Silence at the start (before
//! the first datagram arrives) and at the end (after the last one, until the stream ends) counts
//! as a gap, so a stream that never resumes cannot look healthy.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::netns::Netns;

/// The shape of a probe stream.
#[derive(Debug, Clone, Copy)]
pub struct ProbeConfig {
    /// Time between two datagrams (1 ms by default).
    pub interval: Duration,
    /// How long the stream runs.
    pub duration: Duration,
    /// Datagram payload size in bytes (at least 16).
    pub payload: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            interval: Duration::from_millis(1),
            duration: Duration::from_secs(5),
            payload: 64,
        }
    }
}

/// What a finished probe stream saw.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Datagrams the kernel refused to send (no route, link down).
    pub send_errors: u64,
    /// Distinct datagrams received.
    pub received: u64,
    /// Datagrams received more than once.
    pub duplicates: u64,
    /// Datagrams that arrived after one with a higher sequence number.
    pub reordered: u64,
    /// Sent and never received.
    pub lost: u64,
    /// The longest time with no datagram arriving, start and end silence included.
    pub longest_gap: Duration,
    /// When that gap began, from the start of the stream.
    pub longest_gap_at: Duration,
    /// Silence from the last arrival to the end of the stream.
    pub trailing_silence: Duration,
    /// How long the stream ran.
    pub duration: Duration,
}

impl ProbeReport {
    /// Whether traffic was flowing at the end of the stream: the trailing silence is shorter
    /// than `tolerance` and something was received.
    pub fn recovered(&self, tolerance: Duration) -> bool {
        self.received > 0 && self.trailing_silence < tolerance
    }

    /// The longest gap in microseconds.
    pub fn longest_gap_us(&self) -> u128 {
        self.longest_gap.as_micros()
    }
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} (send errors {}), received {}, lost {}, duplicates {}, reordered {}, longest gap {} us at {:.3} s, trailing silence {} us",
            self.sent,
            self.send_errors,
            self.received,
            self.lost,
            self.duplicates,
            self.reordered,
            self.longest_gap.as_micros(),
            self.longest_gap_at.as_secs_f64(),
            self.trailing_silence.as_micros()
        )
    }
}

struct Shared {
    stop: AtomicBool,
    received: AtomicU64,
    arrivals: Mutex<Vec<(u64, Instant)>>,
}

/// A running probe stream from one namespace to another.
pub struct ProbeStream {
    config: ProbeConfig,
    start: Instant,
    shared: Arc<Shared>,
    sender: Option<JoinHandle<(u64, u64, Instant)>>,
    receiver: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProbeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeStream")
            .field("config", &self.config)
            .field("received", &self.received())
            .finish()
    }
}

fn unspecified(dst: &SocketAddr, port: u16) -> SocketAddr {
    match dst {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
    }
}

/// 1 ms probes both ways — `a` to `to_b` in `b`, and `b` to `to_a` in `a` — for `before +
/// after`: once both flow and `before` has passed, `fault` runs; its result is handed back
/// after both streams finished, so what it holds (a cut to heal on drop) lasts them out.
/// Returns (a → b, b → a, what `fault` returned).
pub fn probe_both_ways<T>(
    (a, to_a): (&Netns, SocketAddr),
    (b, to_b): (&Netns, SocketAddr),
    (before, after): (Duration, Duration),
    fault: impl FnOnce() -> Result<T>,
) -> Result<(ProbeReport, ProbeReport, T)> {
    let config = ProbeConfig {
        duration: before + after,
        ..ProbeConfig::default()
    };
    let forth = ProbeStream::start(a, b, to_b, config)?;
    let back = ProbeStream::start(b, a, to_a, config)?;
    forth.wait_received(100, before)?;
    back.wait_received(100, before)?;
    std::thread::sleep(before.saturating_sub(forth.elapsed()));
    let held = fault()?;
    Ok((forth.finish(), back.finish(), held))
}

impl ProbeStream {
    /// Starts a stream from namespace `from` to `dst` (an address in namespace `to`, where the
    /// receiver binds `dst`'s port on the unspecified address).
    pub fn start(from: &Netns, to: &Netns, dst: SocketAddr, config: ProbeConfig) -> Result<Self> {
        if config.payload < 16 || config.interval.is_zero() {
            return Err(LabError::Usage(
                "a probe needs a payload of 16 bytes or more and a non-zero interval".into(),
            ));
        }
        let rx = to
            .enter(|| UdpSocket::bind(unspecified(&dst, dst.port())))?
            .map_err(|e| LabError::io(format!("binding the probe receiver in {}", to.name()), e))?;
        rx.set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(|e| LabError::io("probe socket timeout", e))?;
        let tx = from
            .enter(|| UdpSocket::bind(unspecified(&dst, 0)))?
            .map_err(|e| LabError::io(format!("binding the probe sender in {}", from.name()), e))?;
        let count = (config.duration.as_nanos() / config.interval.as_nanos()).max(1) as u64;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            received: AtomicU64::new(0),
            arrivals: Mutex::new(Vec::with_capacity(count as usize)),
        });
        let start = Instant::now();
        let rshared = shared.clone();
        let receiver = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !rshared.stop.load(Ordering::Relaxed) {
                if let Ok(n) = rx.recv(&mut buf) {
                    let now = Instant::now();
                    if n >= 16 && buf[8..16] == MAGIC {
                        let seq = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                        rshared.received.fetch_add(1, Ordering::Relaxed);
                        rshared
                            .arrivals
                            .lock()
                            .expect("probe lock")
                            .push((seq, now));
                    }
                }
            }
        });
        let interval = config.interval;
        let payload = config.payload;
        let sender = std::thread::spawn(move || {
            let mut buf = vec![0u8; payload];
            buf[8..16].copy_from_slice(&MAGIC);
            let (mut sent, mut errors) = (0, 0);
            let mut last = start;
            for seq in 0..count {
                let due = start + interval * seq as u32;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                buf[..8].copy_from_slice(&seq.to_be_bytes());
                last = Instant::now();
                match tx.send_to(&buf, dst) {
                    Ok(_) => sent += 1,
                    Err(_) => errors += 1,
                }
            }
            (sent, errors, last)
        });
        Ok(ProbeStream {
            config,
            start,
            shared,
            sender: Some(sender),
            receiver: Some(receiver),
        })
    }

    /// Datagrams received so far.
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Time since the stream started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Waits until at least `n` datagrams have arrived, or fails after `timeout`.
    pub fn wait_received(&self, n: u64, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        while self.received() < n {
            if Instant::now() > until {
                return Err(LabError::Timeout {
                    what: format!("{n} probe datagrams (got {})", self.received()),
                    seconds: timeout.as_secs_f64(),
                    logs: std::env::temp_dir(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Waits for the stream to end (plus 200 ms for datagrams in flight) and reports.
    pub fn finish(mut self) -> ProbeReport {
        let (sent, send_errors, end) = self
            .sender
            .take()
            .expect("sender runs until finish")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        std::thread::sleep(Duration::from_millis(200));
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.receiver.take() {
            r.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
        let arrivals = std::mem::take(&mut *self.shared.arrivals.lock().expect("probe lock"));
        analyse(
            self.start,
            end,
            sent + send_errors,
            sent,
            send_errors,
            &arrivals,
        )
    }
}

impl Drop for ProbeStream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

const MAGIC: [u8; 8] = *b"rgprobe1";

/// Computes a report from arrivals `(seq, time)` in arrival order, for a stream that started at
/// `start`, sent its last datagram at `end`, and had `total` sequence numbers.
pub fn analyse(
    start: Instant,
    end: Instant,
    total: u64,
    sent: u64,
    send_errors: u64,
    arrivals: &[(u64, Instant)],
) -> ProbeReport {
    let mut seen = vec![false; total as usize];
    let (mut received, mut duplicates, mut reordered, mut highest) = (0u64, 0u64, 0u64, None);
    let mut longest = Duration::ZERO;
    let mut longest_at = Duration::ZERO;
    let mut prev = start;
    for &(seq, at) in arrivals {
        let Some(slot) = seen.get_mut(seq as usize) else {
            continue;
        };
        if *slot {
            duplicates += 1;
            continue;
        }
        *slot = true;
        received += 1;
        if highest.is_some_and(|h| seq < h) {
            reordered += 1;
        }
        highest = highest.max(Some(seq));
        let gap = at.saturating_duration_since(prev);
        if gap > longest {
            longest = gap;
            longest_at = prev.saturating_duration_since(start);
        }
        prev = at;
    }
    let trailing = end.saturating_duration_since(prev);
    if trailing > longest {
        longest = trailing;
        longest_at = prev.saturating_duration_since(start);
    }
    ProbeReport {
        sent,
        send_errors,
        received,
        duplicates,
        reordered,
        lost: total - received,
        longest_gap: longest,
        longest_gap_at: longest_at,
        trailing_silence: trailing,
        duration: end.saturating_duration_since(start),
    }
}

/// What `ping` reported.
#[derive(Debug, Clone, Copy)]
pub struct PingReport {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
}

/// Pings `dst` from namespace `from`: `count` requests, `interval` apart, 1 s deadline per reply.
/// When no route leads to `dst` at all, nothing is transmitted and the report says so.
pub fn ping(from: &Netns, dst: &str, count: u32, interval: Duration) -> Result<PingReport> {
    crate::cmd::require("ping")?;
    let out = from
        .command("ping")
        .args([
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            &format!("{:.3}", interval.as_secs_f64()),
            "-W",
            "1",
            dst,
        ])
        .output()
        .map_err(|e| LabError::io("running ping", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if String::from_utf8_lossy(&out.stderr).contains("Network is unreachable") {
        return Ok(PingReport {
            transmitted: 0,
            received: 0,
        });
    }
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .ok_or_else(|| LabError::Command {
            command: format!("ping {dst} in {}", from.name()),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })?;
    let num = |word: &str| -> u32 {
        line.split(',')
            .find(|p| p.contains(word))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Ok(PingReport {
        transmitted: num("transmitted"),
        received: num("received"),
    })
}

/// What iperf3 measured.
#[derive(Debug, Clone, Copy)]
pub struct IperfReport {
    /// Throughput the receiver saw, bits per second.
    pub bits_per_second: f64,
    /// Lost datagrams in percent (UDP only).
    pub lost_percent: Option<f64>,
}

/// Runs iperf3 for `seconds` from `client` to `dst` (an address of `server`): TCP, or UDP at
/// `udp_bitrate` (e.g. "100M").
pub fn iperf3(
    server: &Netns,
    client: &Netns,
    dst: &str,
    seconds: u32,
    udp_bitrate: Option<&str>,
    logs: &std::path::Path,
) -> Result<IperfReport> {
    crate::cmd::require("iperf3")?;
    let port = "5201";
    let _srv = crate::process::Supervised::spawn(
        "iperf3-server",
        {
            let mut c = server.command("iperf3");
            c.args(["-s", "-1", "-p", port]);
            c
        },
        logs,
    )?;
    // The client connects only once the server listens (its control connection is TCP,
    // for UDP tests too): a fixed pause lost that race on a busy machine.
    let sport = format!("sport = :{port}");
    crate::process::wait_for(
        "the iperf3 server to listen",
        Duration::from_secs(10),
        logs,
        || {
            server
                .exec_text("ss", &["-Hltn", &sport])
                .ok()
                .filter(|out| !out.trim().is_empty())
        },
    )?;
    let secs = seconds.to_string();
    let mut args = vec!["-c", dst, "-p", port, "-t", &secs, "-J"];
    if let Some(rate) = udp_bitrate {
        args.extend(["-u", "-b", rate]);
    }
    let json = client.exec_text("iperf3", &args)?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| LabError::Command {
        command: "iperf3 -J".into(),
        status: "unparseable output".into(),
        stderr: e.to_string(),
    })?;
    let end = &v["end"];
    let (bps, lost) = if udp_bitrate.is_some() {
        (
            end["sum"]["bits_per_second"].as_f64(),
            end["sum"]["lost_percent"].as_f64(),
        )
    } else {
        (end["sum_received"]["bits_per_second"].as_f64(), None)
    };
    Ok(IperfReport {
        bits_per_second: bps.ok_or_else(|| LabError::Command {
            command: "iperf3 -J".into(),
            status: "no throughput in its report".into(),
            stderr: json.chars().take(400).collect(),
        })?,
        lost_percent: lost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn steady_stream_has_interval_gaps() {
        let s = Instant::now();
        let arr: Vec<_> = (0..10).map(|i| (i, at(s, i + 1))).collect();
        let r = analyse(s, at(s, 10), 10, 10, 0, &arr);
        assert_eq!(r.received, 10);
        assert_eq!(r.lost, 0);
        assert_eq!(r.longest_gap, Duration::from_millis(1));
        assert!(r.recovered(Duration::from_millis(5)));
    }

    #[test]
    fn outage_in_the_middle_is_the_longest_gap() {
        let s = Instant::now();
        let mut arr: Vec<_> = (0..10).map(|i| (i, at(s, i))).collect();
        arr.extend((60..100).map(|i| (i, at(s, i))));
        let r = analyse(s, at(s, 99), 100, 100, 0, &arr);
        assert_eq!(r.lost, 50);
        assert_eq!(r.longest_gap, Duration::from_millis(51));
        assert_eq!(r.longest_gap_at, Duration::from_millis(9));
        assert!(r.recovered(Duration::from_millis(5)));
    }

    #[test]
    fn a_stream_that_never_resumes_is_not_healthy() {
        let s = Instant::now();
        let arr: Vec<_> = (0..10).map(|i| (i, at(s, i))).collect();
        let r = analyse(s, at(s, 1000), 1000, 1000, 0, &arr);
        assert_eq!(r.trailing_silence, Duration::from_millis(991));
        assert_eq!(r.longest_gap, Duration::from_millis(991));
        assert!(!r.recovered(Duration::from_millis(500)));
    }

    #[test]
    fn nothing_received_is_one_gap_over_the_whole_stream() {
        let s = Instant::now();
        let r = analyse(s, at(s, 500), 500, 500, 0, &[]);
        assert_eq!(r.received, 0);
        assert_eq!(r.longest_gap, Duration::from_millis(500));
        assert!(!r.recovered(Duration::from_secs(10)));
    }

    #[test]
    fn duplicates_reorders_and_strays_are_counted_not_trusted() {
        let s = Instant::now();
        let arr = vec![
            (0, at(s, 1)),
            (2, at(s, 2)),
            (1, at(s, 3)),
            (1, at(s, 4)),
            (99, at(s, 5)),
        ];
        let r = analyse(s, at(s, 5), 3, 3, 0, &arr);
        assert_eq!(r.received, 3);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.reordered, 1);
        assert_eq!(r.lost, 0);
    }
}
