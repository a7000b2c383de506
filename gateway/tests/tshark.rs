//! Packets roamgate produces are decrypted and dissected by Wireshark's ESP dissector (tshark),
//! given the keys: every mode × family × key size × encapsulation, the ICV verified ("good"),
//! the inner packet recognised, no malformed packet and no expert error.
//!
//! Needs tshark (Debian package `tshark`): the test fails, naming it, when it is missing.

mod common;

use std::process::Command;

use common::*;
use roamgate_gateway::esp::{InboundSa, Mode, OutboundSa, OuterPolicy, SaConfig};

struct Case {
    spec: PairSpec,
    spi: u32,
    keymat: Vec<u8>,
    /// Frame numbers (1-based) of its packets in the capture.
    frames: Vec<usize>,
}

fn tshark_available() -> String {
    let out = Command::new("tshark").arg("--version").output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        _ => panic!(
            "tshark is required for this test (Debian: apt-get install tshark, or `cargo xtask deps`)"
        ),
    }
}

#[test]
fn tshark_decrypts_what_we_encapsulate() {
    let version = tshark_available();
    let mut packets = Vec::new();
    let mut cases = Vec::new();
    // Wireshark 4.0 knows no ESN (its AAD has the 32-bit sequence number only), so ESN SAs
    // are checked against the independent implementations in tests/roundtrip.rs instead.
    for (i, spec) in PairSpec::all().into_iter().filter(|s| !s.esn).enumerate() {
        let spi = 0x5000_0000 + i as u32;
        let keymat = keymat(if spec.aes256 { 36 } else { 20 }, i as u8);
        let cfg = SaConfig {
            spi,
            keymat: &keymat,
            mode: spec.mode(),
            esn: false,
            lifetime: roamgate_gateway::esp::Lifetime::UNLIMITED,
        };
        let out = OutboundSa::new(&cfg, OuterPolicy::default()).unwrap();
        let _inb = InboundSa::new(&cfg).unwrap();
        let path = path(spec.outer_v6, spec.udp);
        let mut frames = Vec::new();
        for (j, size) in [0usize, 1, 2, 3, 77, 1000].into_iter().enumerate() {
            let mut inner = InnerSpec::udp(spec.inner_v6, (0..size).map(|b| b as u8).collect());
            if !spec.inner_v6 && j % 2 == 1 {
                inner.options = vec![1, 1, 1, 0];
            }
            inner.tos = (j as u8) & 3;
            let pkt = inner.build();
            let mut f = Frame::new(&pkt);
            let e = out.encapsulate(&path, &mut f.buf, f.start, f.len).unwrap();
            packets.push(f.buf[e.start..e.start + e.len].to_vec());
            frames.push(packets.len());
        }
        assert!(matches!(spec.mode(), Mode::Tunnel | Mode::Beet(_)));
        cases.push(Case {
            spec,
            spi,
            keymat,
            frames,
        });
    }
    let dir = std::env::temp_dir().join(format!("roamgate-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("roamgate-esp.pcap");
    roamgate_lab::pcap::write_pcap(&pcap, roamgate_lab::pcap::LINKTYPE_RAW, &packets).unwrap();

    let mut args: Vec<String> = vec![
        "-n".into(),
        "-r".into(),
        pcap.display().to_string(),
        "-o".into(),
        "esp.enable_encryption_decode:TRUE".into(),
        "-o".into(),
        "esp.enable_authentication_check:TRUE".into(),
    ];
    for c in &cases {
        let key: String = c.keymat.iter().map(|b| format!("{b:02x}")).collect();
        args.push("-o".into());
        args.push(format!(
            "uat:esp_sa:\"{}\",\"*\",\"*\",\"0x{:08x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{key}\",\"NULL\",\"\"",
            if c.spec.outer_v6 { "IPv6" } else { "IPv4" },
            c.spi
        ));
    }
    for f in [
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.number",
        "-e",
        "esp.spi",
        "-e",
        "esp.icv_good",
        "-e",
        "esp.protocol",
        "-e",
        "udp.dstport",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "_ws.malformed",
        "-e",
        "_ws.expert.severity",
        "-e",
        "esp.decrypted_data",
    ] {
        args.push(f.into());
    }
    let out = Command::new("tshark").args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed ({version}): {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        packets.len(),
        "tshark output:\n{stdout}\n{stderr}"
    );
    for c in &cases {
        for &n in &c.frames {
            let cols: Vec<&str> = lines[n - 1].split('|').collect();
            let ctx = format!("{:?} frame {n}: {}", c.spec, lines[n - 1]);
            assert_eq!(cols[0], n.to_string(), "{ctx}");
            assert_eq!(cols[1], format!("0x{:08x}", c.spi), "{ctx}");
            assert!(matches!(cols[2], "1" | "True"), "ICV not verified: {ctx}");
            let nh = if !c.spec.beet {
                if c.spec.inner_v6 { 41 } else { 4 }
            } else {
                17
            };
            // The next header is the last byte Wireshark decrypted (it shows `esp.protocol`
            // only for protocols it knows; not for the BEET pseudo-header, 94).
            let decrypted = cols[9];
            assert!(decrypted.len() >= 4, "nothing decrypted: {ctx}");
            let got = u8::from_str_radix(&decrypted[decrypted.len() - 2..], 16)
                .unwrap_or_else(|e| panic!("decrypted data {decrypted:?}: {e}: {ctx}"));
            if !cols[3].is_empty() {
                assert_eq!(cols[3], format!("0x{got:02x}"), "{ctx}");
            }
            // Pseudo-header packets (BEET with IPv4 options) carry next header 94.
            assert!(
                got == nh || (c.spec.beet && got == 94),
                "next header: {ctx}"
            );
            if got != 94 {
                // The inner UDP datagram was dissected: its destination port is there.
                assert!(
                    cols[4].split(',').any(|p| p == "9000"),
                    "inner UDP not seen: {ctx}"
                );
            }
            if !c.spec.beet {
                let inner_src = if c.spec.inner_v6 {
                    "fd00:c8::1"
                } else {
                    "10.200.0.1"
                };
                let col = if c.spec.inner_v6 { cols[6] } else { cols[5] };
                assert!(
                    col.split(',').any(|a| a == inner_src),
                    "inner header not seen: {ctx}"
                );
            }
            assert!(cols[7].is_empty(), "malformed: {ctx}");
            // Expert severities: 0x00800000 is "error".
            assert!(
                !cols[8]
                    .split(',')
                    .any(|s| s == "8388608" || s == "0x00800000"),
                "expert error: {ctx}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
