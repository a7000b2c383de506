//! tshark in the lab: capture an interface of a namespace into a pcap file, then check that
//! every packet dissects cleanly.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{LabError, Result};
use crate::netns::Netns;

/// A running tshark capture; stopped (SIGINT, so the file is complete) by [`Capture::stop`]
/// or killed on drop.
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    file: PathBuf,
}

impl Capture {
    /// How long a capture keeps running after [`Capture::stop`] is called.
    pub const SETTLE: Duration = Duration::from_millis(500);

    /// Captures interface `ifname` of `ns` with capture filter `filter` into `file` (classic
    /// pcap) and returns once tshark says it is capturing.
    pub fn start(ns: &Netns, ifname: &str, filter: &str, file: &Path) -> Result<Capture> {
        cmd::require("tshark")?;
        let mut child = ns
            .command("tshark")
            .args(["-n", "-i", ifname, "-f", filter, "-F", "pcap", "-w"])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| LabError::io("starting tshark".to_string(), e))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| LabError::Usage("tshark has no stderr".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = String::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                if line.contains("Capturing on") {
                    return Ok(Capture {
                        child: Some(child),
                        file: file.to_path_buf(),
                    });
                }
                seen.push_str(&line);
                seen.push('\n');
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(LabError::Usage(format!(
            "tshark did not start capturing on {ifname} in {}: {seen}",
            ns.name()
        )))
    }

    /// Stops the capture and returns the file. dumpcap hands packets over in batches (about
    /// every 100 ms) and drops the last batch when stopped at once, so the capture first runs
    /// on for [`Capture::SETTLE`].
    pub fn stop(mut self) -> Result<PathBuf> {
        std::thread::sleep(Self::SETTLE);
        let mut child = self
            .child
            .take()
            .ok_or_else(|| LabError::Usage("capture already stopped".into()))?;
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child
                .try_wait()
                .map_err(|e| LabError::io("waiting for tshark".to_string(), e))?
                .is_some()
            {
                return Ok(self.file.clone());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(LabError::Usage("tshark did not stop on SIGINT".into()))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One packet as tshark's field output shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DissectedPacket {
    /// The frame number.
    pub number: u64,
    /// The source IP address.
    pub src: String,
    /// The protocol stack (`eth:ethertype:ip:udp:isakmp`).
    pub protocols: String,
    /// Whether tshark marked it malformed.
    pub malformed: bool,
    /// The expert-info severities tshark attached ("error", "warning", …).
    pub expert: Vec<String>,
}

/// Dissects `file` with tshark (display filter `filter`, extra `-o` preferences `prefs`) and
/// returns every packet with its malformed flag and expert severities.
pub fn dissect(file: &Path, filter: &str, prefs: &[&str]) -> Result<Vec<DissectedPacket>> {
    cmd::require("tshark")?;
    let path = file
        .to_str()
        .ok_or_else(|| LabError::Usage(format!("{} is not UTF-8", file.display())))?;
    let mut args = vec!["-n", "-r", path, "-Y", filter, "-T", "fields"];
    for p in prefs {
        args.extend_from_slice(&["-o", p]);
    }
    args.extend_from_slice(&[
        "-E",
        "separator=|",
        "-e",
        "frame.number",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "frame.protocols",
        "-e",
        "_ws.malformed",
        "-e",
        "_ws.expert.severity",
    ]);
    let text = cmd::run_text("tshark", &args)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            DissectedPacket {
                number: field(0).parse().unwrap_or(0),
                src: if field(1).is_empty() {
                    field(2).to_string()
                } else {
                    field(1).to_string()
                },
                protocols: field(3).to_string(),
                malformed: !field(4).is_empty(),
                expert: field(5)
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(expert_severity)
                    .collect(),
            }
        })
        .collect())
}

/// tshark prints expert severities as numbers in field output (PI_ERROR is 0x00800000).
fn expert_severity(raw: &str) -> String {
    let value = raw
        .strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .or_else(|| raw.parse().ok());
    match value {
        Some(0x0080_0000) => "error".into(),
        Some(0x0060_0000) => "warning".into(),
        Some(0x0040_0000) => "note".into(),
        Some(0x0020_0000) => "chat".into(),
        Some(0x0010_0000) => "comment".into(),
        _ => raw.to_string(),
    }
}

/// How much ESP reached a namespace's kernel (see [`count_esp_in_kernel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspInKernel {
    /// Raw ESP packets (IP protocol 50).
    pub raw: u64,
    /// ESP in UDP to port 4500 (a non-zero SPI where IKE has its non-ESP marker).
    pub in_udp: u64,
}

const ESP_COUNTERS: &str = "table inet rgesp {\n\tchain pre {\n\t\ttype filter hook prerouting priority -300;\n\t\tmeta l4proto esp counter name esp_in\n\t\tudp dport 4500 @th,64,32 != 0 counter name natt_esp_in\n\t}\n\tcounter esp_in {}\n\tcounter natt_esp_in {}\n}\n";

/// Starts counting, with nftables in `ns`, the ESP that reaches its kernel's IP layer: a
/// kernel-bypass data plane must keep both counts at 0.
pub fn count_esp_in_kernel(ns: &Netns) -> Result<()> {
    crate::topology::load_nft(ns, ESP_COUNTERS)
}

/// The counts since [`count_esp_in_kernel`].
pub fn esp_in_kernel(ns: &Netns) -> Result<EspInKernel> {
    let packets = |name: &str| -> Result<u64> {
        let text = ns.exec_text("nft", &["list", "counter", "inet", "rgesp", name])?;
        text.split("packets ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| LabError::Usage(format!("no packet count in {text}")))
    };
    Ok(EspInKernel {
        raw: packets("esp_in")?,
        in_udp: packets("natt_esp_in")?,
    })
}
