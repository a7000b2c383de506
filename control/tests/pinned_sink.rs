//! Negotiated CHILD_SAs into the data plane's pinned maps, on the real kernel: the maps a
//! loaded classifier pins in bpffs, written by [`PinnedMapSink`] and read back the way the
//! gateway's workers read them. Needs root and bpffs; fails saying so without them.

use std::net::SocketAddr;
use std::path::PathBuf;

use roamgate_control::crypto::Secret;
use roamgate_control::crypto::sk::{Encr, Integ};
use roamgate_control::engine::{
    ChildProtocol, ChildSaInstall, IkeSaHandle, Lifetimes, Mode, SaEvent, SaKeys, SaSink,
    SaSinkError,
};
use roamgate_control::pinned_sink::{FIRST_SLOT, PinnedMapSink};
use roamgate_control::wire::payload::{AddressRange, TrafficSelector};
use roamgate_ebpf::abi::{SA_DIR_IN, SA_DIR_OUT};
use roamgate_ebpf::{Classifier, Endpoint, EndpointTable, SaTable};

struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = roamgate_ebpf::remove_pins(&self.0);
    }
}

fn load(tag: &str) -> (Classifier, Pins) {
    let euid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        euid, "0",
        "this test loads XDP maps into bpffs and needs root: run `cargo xtask test` as root"
    );
    let dir = PathBuf::from("/sys/fs/bpf/roamgate-test")
        .join(format!("{}-control-{tag}", std::process::id()));
    let classifier = Classifier::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    (classifier, Pins(dir))
}

fn range(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn keys(spi: u32, byte: u8) -> SaKeys {
    SaKeys {
        spi,
        encryption_key: Secret::new(vec![byte; 16]),
        salt: Secret::new(vec![byte ^ 0xff; 4]),
        integrity_key: Secret::new(vec![]),
    }
}

fn child(spi_in: u32, spi_out: u32) -> ChildSaInstall {
    ChildSaInstall {
        ike_sa: IkeSaHandle(1),
        name: "lan".into(),
        protocol: ChildProtocol::Esp,
        mode: Mode::Tunnel,
        encryption: Encr::AesGcm16(16),
        integrity: None,
        esn: false,
        inbound: keys(spi_in, 0x11),
        outbound: keys(spi_out, 0x22),
        local: "198.18.1.1:4500".parse().unwrap(),
        remote: "198.18.1.2:4500".parse().unwrap(),
        udp_encap: true,
        local_ts: vec![range("10.101.0.0", "10.101.0.255")],
        remote_ts: vec![range("10.200.0.5", "10.200.0.5")],
        lifetimes: Lifetimes { rekey_time: None },
    }
}

#[test]
fn install_move_and_delete_reach_the_maps() {
    let (_classifier, pins) = load("sink");
    let mut sink = PinnedMapSink::open(&pins.0).unwrap();
    let capacity = sink.capacity();
    assert!(capacity > 0);
    let c = child(0xc000_0001, 0xd000_0001);
    sink.apply(&SaEvent::Install(Box::new(c.clone()))).unwrap();
    let slots = sink.slots(c.inbound.spi).unwrap();
    assert!(slots.inbound >= FIRST_SLOT && slots.outbound == slots.inbound + 1);
    assert_eq!(sink.capacity(), capacity - 1);

    // What a worker sees: both SA records with key ‖ salt, the outbound endpoint.
    let table = SaTable::open_reader(&pins.0).unwrap();
    let inbound = table.read(slots.inbound).unwrap();
    assert_eq!(u32::from_be(inbound.spi), c.inbound.spi);
    assert_eq!(inbound.direction, SA_DIR_IN);
    assert_eq!(
        &inbound.key[..20],
        [[0x11; 16].as_slice(), &[0xee; 4]].concat()
    );
    let outbound = table.read(slots.outbound).unwrap();
    assert_eq!(u32::from_be(outbound.spi), c.outbound.spi);
    assert_eq!(outbound.direction, SA_DIR_OUT);
    assert_eq!(
        &outbound.key[..20],
        [[0x22; 16].as_slice(), &[0xdd; 4]].concat()
    );
    assert_eq!((outbound.n_local_ts, outbound.n_remote_ts), (1, 1));
    let endpoints = EndpointTable::open(&pins.0).unwrap();
    let read = |slot| Endpoint::from_record(&endpoints.read(slot).unwrap()).unwrap();
    let ep = read(slots.outbound);
    assert_eq!(ep.local, c.local.ip());
    assert_eq!(ep.remote, c.remote.ip());
    assert_eq!(ep.udp, Some((4500, 4500)));
    let generation = endpoints.generation(slots.outbound);

    // A MOBIKE move: one endpoint write, the SA records untouched.
    let local: SocketAddr = "198.18.2.1:4500".parse().unwrap();
    let remote: SocketAddr = "198.18.2.2:4500".parse().unwrap();
    sink.apply(&SaEvent::UpdateAddresses {
        ike_sa: c.ike_sa,
        inbound_spi: c.inbound.spi,
        outbound_spi: c.outbound.spi,
        local,
        remote,
        udp_encap: false,
    })
    .unwrap();
    let moved = read(slots.outbound);
    assert_eq!(
        (moved.local, moved.remote, moved.udp),
        (local.ip(), remote.ip(), None)
    );
    assert!(endpoints.generation(slots.outbound) > generation);
    assert_eq!(
        table.read(slots.outbound).unwrap().generation,
        outbound.generation
    );

    // Delete frees both slots.
    sink.apply(&SaEvent::Delete {
        ike_sa: c.ike_sa,
        inbound_spi: c.inbound.spi,
        outbound_spi: c.outbound.spi,
    })
    .unwrap();
    assert_eq!(table.read(slots.inbound).unwrap().state, 0);
    assert_eq!(table.read(slots.outbound).unwrap().state, 0);
    assert_eq!(sink.capacity(), capacity);
    assert_eq!(
        sink.apply(&SaEvent::Delete {
            ike_sa: c.ike_sa,
            inbound_spi: c.inbound.spi,
            outbound_spi: c.outbound.spi,
        }),
        Err(SaSinkError::UnknownSpi(c.inbound.spi))
    );
}

#[test]
fn what_the_data_plane_cannot_carry_is_refused_and_not_installed() {
    let (_classifier, pins) = load("refuse");
    let mut sink = PinnedMapSink::open(&pins.0).unwrap();
    let capacity = sink.capacity();
    let mut cbc = child(0xc000_0002, 0xd000_0002);
    cbc.encryption = Encr::AesCbc(32);
    cbc.integrity = Some(Integ::HmacSha256_128);
    let err = sink.apply(&SaEvent::Install(Box::new(cbc))).unwrap_err();
    assert!(err.to_string().contains("AES-GCM-16 only"), "{err}");
    let mut ports = child(0xc000_0003, 0xd000_0003);
    ports.remote_ts = vec![TrafficSelector::Ipv4(AddressRange {
        ip_protocol: 6,
        start_port: 443,
        end_port: 443,
        start: "10.200.0.5".parse().unwrap(),
        end: "10.200.0.5".parse().unwrap(),
    })];
    let err = sink.apply(&SaEvent::Install(Box::new(ports))).unwrap_err();
    assert!(err.to_string().contains("addresses only"), "{err}");
    let mut transport = child(0xc000_0004, 0xd000_0004);
    transport.mode = Mode::Transport;
    assert!(sink.apply(&SaEvent::Install(Box::new(transport))).is_err());
    assert_eq!(sink.capacity(), capacity, "nothing was installed");
    // The same SPI twice is a duplicate.
    let ok = child(0xc000_0005, 0xd000_0005);
    sink.apply(&SaEvent::Install(Box::new(ok.clone()))).unwrap();
    assert_eq!(
        sink.apply(&SaEvent::Install(Box::new(ok.clone()))),
        Err(SaSinkError::DuplicateSpi(ok.inbound.spi))
    );
}

#[test]
fn a_restarted_control_process_clears_its_predecessors_slots() {
    let (_classifier, pins) = load("restart");
    let c = child(0xc000_0006, 0xd000_0006);
    let slots = {
        let mut sink = PinnedMapSink::open(&pins.0).unwrap();
        sink.apply(&SaEvent::Install(Box::new(c.clone()))).unwrap();
        sink.slots(c.inbound.spi).unwrap()
    };
    let table = SaTable::open_reader(&pins.0).unwrap();
    assert_eq!(table.read(slots.inbound).unwrap().state, 1);
    let sink = PinnedMapSink::open(&pins.0).unwrap();
    assert_eq!(table.read(slots.inbound).unwrap().state, 0);
    assert_eq!(table.read(slots.outbound).unwrap().state, 0);
    assert!(sink.slots(c.inbound.spi).is_none());
}
