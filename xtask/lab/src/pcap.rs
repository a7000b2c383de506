//! Classic pcap files: written so tshark can dissect what roamgate produces, read back from
//! tshark's captures in the lab.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::error::{LabError, Result};

/// The pcap link type of raw IP packets (no link-layer header).
pub const LINKTYPE_RAW: u32 = 101;
/// The pcap link type of Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The pcap link type of Linux cooked captures (SLL, 16-byte header).
pub const LINKTYPE_LINUX_SLL: u32 = 113;

/// Writes `packets` (each a frame of link type `linktype`) to a classic pcap file.
pub fn write_pcap(path: &Path, linktype: u32, packets: &[Vec<u8>]) -> Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

/// Reads a classic pcap file (either byte order, micro- or nanosecond) and returns the IP
/// packets in it, without their Ethernet or Linux cooked headers.
pub fn read_pcap_ip(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data =
        std::fs::read(path).map_err(|e| LabError::io(format!("reading {}", path.display()), e))?;
    let bad = |why: String| LabError::Usage(format!("{}: {why}", path.display()));
    if data.len() < 24 {
        return Err(bad("not a pcap file (shorter than its header)".into()));
    }
    let le = match u32::from_le_bytes([data[0], data[1], data[2], data[3]]) {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => {
            return Err(bad(format!(
                "not a classic pcap file (magic {m:#x}); pcapng?"
            )));
        }
    };
    let u32_at = |at: usize| {
        let a = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = u32_at(20);
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= data.len() {
        let caplen = u32_at(at + 8) as usize;
        let rec = &data[at + 16..(at + 16 + caplen).min(data.len())];
        at += 16 + caplen;
        match linktype {
            LINKTYPE_ETHERNET => {
                if rec.len() > 14 && matches!(&rec[12..14], [0x08, 0x00] | [0x86, 0xdd]) {
                    out.push(rec[14..].to_vec());
                }
            }
            LINKTYPE_RAW => out.push(rec.to_vec()),
            LINKTYPE_LINUX_SLL => {
                if rec.len() > 16 {
                    out.push(rec[16..].to_vec());
                }
            }
            l => return Err(bad(format!("unsupported link type {l}"))),
        }
    }
    Ok(out)
}

/// An Ethernet frame carrying `payload` in IPv4/UDP from `src` to `dst` (checksummed IPv4
/// header, UDP checksum 0), for pcap files of datagrams captured above the socket layer.
pub fn ethernet_ipv4_udp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + 28 + payload.len());
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.0.octets());
    ip[16..20].copy_from_slice(&dst.0.octets());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&src.1.to_be_bytes());
    frame.extend_from_slice(&dst.1.to_be_bytes());
    frame.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    frame.extend_from_slice(&0u16.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// `tshark -V -r <path>` with each of `prefs` as an `-o` preference (say
/// `uat:ikev2_decryption_table:<record>`): the verbose dissection as text. Fails, saying what
/// to install, when tshark is missing, and with its standard error when it fails.
pub fn tshark_verbose(path: &Path, prefs: &[String]) -> Result<String> {
    crate::cmd::require("tshark").map_err(|_| {
        LabError::Usage(
            "tshark is not installed (Debian package tshark): run `cargo xtask deps` as root"
                .into(),
        )
    })?;
    let mut args: Vec<String> = vec!["-V".into(), "-r".into(), path.display().to_string()];
    for p in prefs {
        args.push("-o".into());
        args.push(p.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::cmd::run_text("tshark", &args)
}

/// The lines of a verbose dissection where tshark found something wrong: a malformed packet,
/// an error or warning expert note (a failed decryption or a wrong ICV is one).
pub fn dissection_problems(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            l.contains("Malformed")
                || l.contains("Expert Info (Error")
                || l.contains("Expert Info (Warning")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_read_back() {
        let path = std::env::temp_dir().join(format!("roamgate-pcap-{}.pcap", std::process::id()));
        let a: Ipv4Addr = "192.0.2.1".parse().unwrap();
        let b: Ipv4Addr = "192.0.2.2".parse().unwrap();
        let frames = vec![
            ethernet_ipv4_udp((a, 500), (b, 500), b"one"),
            ethernet_ipv4_udp((b, 4500), (a, 4500), b"two!"),
        ];
        write_pcap(&path, LINKTYPE_ETHERNET, &frames).unwrap();
        let packets = read_pcap_ip(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0], frames[0][14..]);
        assert_eq!(&packets[1][28..], b"two!");
        // The IPv4 header checksum verifies (sums to 0xffff).
        let mut sum: u32 = packets[0][..20]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }

    #[test]
    fn garbage_is_an_error() {
        let path = std::env::temp_dir().join(format!("roamgate-notpcap-{}", std::process::id()));
        std::fs::write(&path, b"definitely not a pcap file at all").unwrap();
        let err = read_pcap_ip(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("not a classic pcap file"), "{err}");
    }
}
