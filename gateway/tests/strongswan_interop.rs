//! strongSwan 5.9.8 (kernel-libipsec) produces ESP in the lab; roamgate decapsulates it.
//!
//! Topology (a) of docs/lab.md with strongSwan at both ends. The gateway's charon logs the
//! CHILD_SA keys (`chd` at level 4: "encryption initiator key", "encryption responder key").
//! tshark captures the gateway's first WAN link while the road
//! warrior pings the LAN host through the tunnel; every ESP packet of both directions must
//! decapsulate with roamgate into the ICMP echo request or reply that was sent.
//!
//! Needs root, strongSwan and tshark (`cargo xtask deps`): fails, saying what is missing,
//! without them.

use std::time::Duration;

use roamgate_gateway::esp::{Decapsulated, InboundSa, Lifetime, Mode, SaConfig, decapsulate};
use roamgate_gateway::wire::ip::Ipv4Packet;
use roamgate_lab::Lab;
use roamgate_lab::capture::Capture;
use roamgate_lab::pcap::read_pcap_ip;
use roamgate_lab::strongswan::{self, Charon, CharonOptions, TunnelParams};
use roamgate_lab::topology::{Options, RoadWarrior};

type R<T> = Result<T, Box<dyn std::error::Error>>;

/// The CHILD_SA keys from a charon log: (initiator, responder) key material, the last pair.
fn child_keys(log: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    fn dump(lines: &[&str], label: &str) -> Option<Vec<u8>> {
        let at = lines.iter().rposition(|l| l.contains(label))?;
        let n: usize = lines[at]
            .split("=> ")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let mut bytes = Vec::with_capacity(n);
        for line in &lines[at + 1..] {
            if bytes.len() >= n {
                break;
            }
            // "… <ike|1>    0: 9A 11 2B …  ASCII"
            let Some((_, rest)) = line.split_once(": ").filter(|(h, _)| {
                h.trim_end()
                    .rsplit(' ')
                    .next()
                    .is_some_and(|o| o.chars().all(|c| c.is_ascii_digit()))
            }) else {
                break;
            };
            for tok in rest.split_whitespace().take((n - bytes.len()).min(16)) {
                bytes.push(u8::from_str_radix(tok, 16).ok()?);
            }
        }
        (bytes.len() == n).then_some(bytes)
    }
    let lines: Vec<&str> = log.lines().collect();
    Some((
        dump(&lines, "encryption initiator key")?,
        dump(&lines, "encryption responder key")?,
    ))
}

fn spi_of(hex: &str) -> R<u32> {
    Ok(u32::from_str_radix(hex, 16).map_err(|e| format!("SPI {hex:?}: {e}"))?)
}

fn interop(name: &str, esp_proposals: &str, keymat_len: usize) -> R<()> {
    let lab = Lab::new(name)
        .map_err(|e| format!("the strongSwan interop test needs the lab (root): {e}"))?;
    let topo = RoadWarrior::build(Options::default())?;
    let params = TunnelParams {
        esp_proposals: esp_proposals.into(),
        ..TunnelParams::default()
    };
    let gw_addrs: Vec<String> = topo.gw.wan_v4().iter().map(|a| a.to_string()).collect();
    let lan_side = topo.gw.lan.clone().ok_or("the gateway has no LAN")?;
    let gw_conf = strongswan::road_warrior_gateway(&params, &gw_addrs, &lan_side.prefix_v4);
    let rw_conf = strongswan::road_warrior_client(&params, &gw_addrs, &lan_side.prefix_v4);
    // charon logs the CHILD_SA keys with `chd` at level 4.
    let gw = Charon::start_with(
        &lab,
        &topo.gw.ns,
        "gw",
        &gw_conf,
        &CharonOptions {
            log_levels: vec![("chd", 4)],
            ..CharonOptions::default()
        },
    )?;
    let rw = Charon::start(&lab, &topo.rw.ns, "rw", &rw_conf)?;

    let pcap = lab.logs().join("gw-wan1.pcap");
    let tshark = Capture::start(
        &topo.gw.ns,
        &topo.gw.uplink(0).ifname,
        "udp port 4500 or esp",
        &pcap,
    )?;
    rw.initiate("home", "lan")?;
    let rw_sa = rw.wait_established("home", "lan", Duration::from_secs(20))?;
    let gw_sa = gw.wait_established("rw", "lan", Duration::from_secs(20))?;
    let vip = rw_sa.local_vips.first().cloned().ok_or("no virtual IP")?;
    let (lan_v4, _) = topo.lan.lan_addr.ok_or("the LAN host has no address")?;
    let pings = 5;
    let ping = topo.rw.ns.exec_text(
        "ping",
        &[
            "-c",
            &pings.to_string(),
            "-i",
            "0.2",
            "-W",
            "2",
            "-s",
            "200",
            &lan_v4.to_string(),
        ],
    )?;
    assert!(
        ping.contains(&format!("{pings} received")),
        "ping through strongSwan failed:\n{ping}"
    );
    // An IKE exchange on port 4500 inside the capture, whatever the capture caught of the
    // handshake: the road warrior rekeys its IKE SA (its CHILD_SA and keys stay).
    rw.rekey_ike("home")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rw
        .list_sas()?
        .iter()
        .any(|sa| sa.name == "home" && sa.spi_i == rw_sa.spi_i)
    {
        if std::time::Instant::now() > deadline {
            return Err("the road warrior's IKE rekey did not complete".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    tshark.stop()?;

    let child = gw_sa
        .children
        .iter()
        .find(|c| c.name == "lan")
        .ok_or("no CHILD_SA `lan` at the gateway")?;
    let log = std::fs::read_to_string(gw.log())?;
    let (key_i, key_r) = child_keys(&log).ok_or_else(|| {
        format!(
            "no CHILD_SA keys in {} (is `chd = 4` in effect after --reload-settings?)",
            gw.log().display()
        )
    })?;
    assert_eq!(key_i.len(), keymat_len, "initiator key material");
    assert_eq!(key_r.len(), keymat_len, "responder key material");
    let sa = |spi: u32, key: &[u8]| {
        InboundSa::new(&SaConfig {
            spi,
            keymat: key,
            mode: Mode::Tunnel,
            esn: false,
            lifetime: Lifetime::UNLIMITED,
        })
    };
    // Road warrior → gateway: the gateway's inbound SPI, the initiator's key.
    let to_gw = sa(spi_of(&child.spi_in)?, &key_i)?;
    let to_rw = sa(spi_of(&child.spi_out)?, &key_r)?;

    let packets = read_pcap_ip(&pcap)?;
    let (mut requests, mut replies, mut ike, mut other) = (0, 0, 0, Vec::new());
    for (i, p) in packets.iter().enumerate() {
        let mut frame = vec![0u8; 64 + p.len()];
        frame[64..].copy_from_slice(p);
        let r = decapsulate(&mut frame, 64, p.len(), |spi| {
            [&to_gw, &to_rw].into_iter().find(|s| s.spi() == spi)
        });
        match r {
            Ok(Decapsulated::Packet {
                start, len, spi, ..
            }) => {
                let inner = Ipv4Packet::new_checked(&frame[start..start + len])
                    .map_err(|e| format!("packet {i}: inner packet: {e}"))?;
                let icmp_type = inner.payload().first().copied();
                if spi == to_gw.spi() {
                    assert_eq!(inner.src().to_string(), vip, "packet {i}");
                    assert_eq!(inner.dst(), lan_v4, "packet {i}");
                    assert_eq!(icmp_type, Some(8), "packet {i}: echo request");
                    requests += 1;
                } else {
                    assert_eq!(inner.src(), lan_v4, "packet {i}");
                    assert_eq!(inner.dst().to_string(), vip, "packet {i}");
                    assert_eq!(icmp_type, Some(0), "packet {i}: echo reply");
                    replies += 1;
                }
                assert_eq!(len, 20 + 8 + 200, "packet {i}: ICMP with 200 bytes of data");
            }
            Ok(Decapsulated::Ike { .. }) => ike += 1,
            other_outcome => other.push((i, other_outcome)),
        }
    }
    lab.write_log(
        "interop.txt",
        &format!(
            "{} packets: {requests} requests, {replies} replies, {ike} IKE, other {other:?}\n",
            packets.len()
        ),
    )?;
    assert_eq!(
        requests, pings,
        "echo requests decapsulated; other outcomes: {other:?}"
    );
    assert_eq!(
        replies, pings,
        "echo replies decapsulated; other outcomes: {other:?}"
    );
    assert!(other.is_empty(), "packets roamgate refused: {other:?}");
    assert!(ike > 0, "no IKE (non-ESP marker) seen on port 4500");
    Ok(())
}

#[test]
fn strongswan_esp_aes128gcm16_decapsulates() -> R<()> {
    interop("gateway_interop_aes128", "aes128gcm16", 20)
}

#[test]
fn strongswan_esp_aes256gcm16_decapsulates() -> R<()> {
    interop("gateway_interop_aes256", "aes256gcm16", 36)
}

#[test]
fn key_dump_parser() {
    let log = "\
10:01:02 05[CHD] <rw|1> encryption initiator key => 20 bytes @ 0x7f00
10:01:02 05[CHD] <rw|1>    0: 9A 11 2B 3C 4D 5E 6F 70 81 92 A3 B4 C5 D6 E7 F8  ..+<M^op........
10:01:02 05[CHD] <rw|1>   16: 01 02 03 04                                      ....
10:01:02 05[CHD] <rw|1> encryption responder key => 20 bytes @ 0x7f00
10:01:02 05[CHD] <rw|1>    0: 00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF  .\"3DUfw........
10:01:02 05[CHD] <rw|1>   16: 10 20 30 40                                      . 0@
";
    let (i, r) = child_keys(log).unwrap();
    assert_eq!(i.len(), 20);
    assert_eq!(&i[..2], &[0x9a, 0x11]);
    assert_eq!(&i[16..], &[1, 2, 3, 4]);
    assert_eq!(r[15], 0xff);
    assert_eq!(&r[16..], &[0x10, 0x20, 0x30, 0x40]);
}
