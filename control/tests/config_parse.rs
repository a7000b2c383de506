//! Valid configurations: defaults, value forms, relative paths, certificate credentials and
//! pre-shared key selection.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use roamgate_control::auth::Identity;
use roamgate_control::config::{
    AddrSpec, AddressFamily, Config, LocalMethod, LogLevel, Mode, PeerGoneAction, SendCert,
    StartAction, TsAddrs, Unique,
};
use roamgate_control::crypto::Secret;

const MINIMAL: &str = r#"
[connections.c.local]
auth = "psk"
[connections.c.remote]
auth = "psk"
[connections.c.children.x]
[secrets.ike]
secret = "k"
"#;

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("/etc/roamgate/roamgate.toml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn defaults_follow_strongswan() {
    let c = parse(MINIMAL);
    let d = &c.daemon;
    assert_eq!(
        d.listen,
        ["0.0.0.0".parse::<IpAddr>().unwrap(), "::".parse().unwrap()]
    );
    assert_eq!((d.port, d.port_nat_t), (500, 4500));
    assert_eq!(d.retransmit.timeout, Duration::from_secs(4));
    assert_eq!(d.retransmit.tries, 5);
    assert_eq!(d.retransmit.base, 1.8);
    assert_eq!(d.retransmit.limit, None);
    assert_eq!(d.cookie_threshold, 30);
    assert_eq!(d.half_open_timeout, Duration::from_secs(30));
    assert_eq!(d.bpf_pin_dir, Path::new("/sys/fs/bpf/roamgate"));
    assert_eq!(d.dataplane_wait, Duration::from_secs(30));
    assert_eq!(d.log_level, LogLevel::Info);
    let conn = &c.connections["c"];
    assert_eq!(conn.local_addrs, [AddrSpec::Any(None)]);
    assert_eq!(conn.remote_addrs, [AddrSpec::Any(None)]);
    assert_eq!((conn.local_port, conn.remote_port), (500, 500));
    assert!(!conn.proposals.is_empty());
    assert!(conn.mobike && conn.fragmentation && conn.send_certreq && !conn.encap);
    assert_eq!(conn.dpd_delay, None);
    assert_eq!(conn.send_cert, SendCert::IfAsked);
    assert_eq!(conn.unique, Unique::No);
    assert_eq!(conn.keyingtries, 1);
    assert_eq!(conn.rekey_time, Some(Duration::from_secs(4 * 3600)));
    assert_eq!(conn.reauth_time, None);
    assert_eq!(conn.over_time, Duration::from_secs(1440));
    assert_eq!(conn.rand_time, Duration::from_secs(1440));
    assert_eq!(conn.remote.id, Identity::Any);
    assert_eq!(conn.local.id, None);
    let x = &conn.children["x"];
    assert_eq!(x.local_ts[0].addrs, TsAddrs::Dynamic);
    assert_eq!(x.remote_ts[0].addrs, TsAddrs::Dynamic);
    assert_eq!(x.mode, Mode::Tunnel);
    assert_eq!(x.start_action, StartAction::None);
    assert_eq!(
        (x.dpd_action, x.close_action),
        (PeerGoneAction::Clear, PeerGoneAction::Clear)
    );
    assert_eq!(x.rekey_time, Some(Duration::from_secs(3600)));
    assert_eq!(x.life_time, Some(Duration::from_secs(3960)));
    assert_eq!(x.rand_time, Duration::from_secs(360));
    assert!(!x.esp_proposals.is_empty());
    // The retransmission schedule: 4, 7.2, 12.96, ... then give up.
    assert_eq!(d.retransmit.wait(0), Some(Duration::from_secs(4)));
    assert_eq!(d.retransmit.wait(1), Some(Duration::from_secs_f64(7.2)));
    assert_eq!(d.retransmit.wait(6), None);
}

#[test]
fn value_forms() {
    let text = r#"
[daemon]
listen = ["198.18.1.1", "fd00:18:1::1"]
retransmit_timeout = 2
retransmit_limit = "1m"
bpf_pin_dir = "maps"
dataplane_wait = "2m"
log_level = "debug"
[connections.c]
local_addrs = ["%any4", "198.18.0.0/16", "198.18.1.10-198.18.1.20", "::"]
remote_addrs = ["fd00:18:1::1"]
proposals = ["default", "aes256-sha256-modp2048"]
dpd_delay = "1.5m"
rekey_time = "0"
send_cert = "always"
unique = "replace"
[connections.c.local]
auth = "psk"
id = "192.0.2.1"
[connections.c.remote]
auth = "psk"
id = "C=CH, O=roamgate, CN=*"
[connections.c.children.x]
local_ts = ["10.0.0.0/8[tcp/443]", "10.1.0.1", "10.2.0.1-10.2.0.9[udp/1024-2047]", "fd00::/64[icmpv6]"]
mode = "beet"
start_action = "trap"
dpd_action = "restart"
close_action = "trap"
rekey_time = "20m"
[secrets.ike-1]
id = ["192.0.2.1"]
secret = "0x00ff"
"#;
    let c = parse(text);
    assert_eq!(c.daemon.retransmit.timeout, Duration::from_secs(2));
    assert_eq!(c.daemon.retransmit.limit, Some(Duration::from_secs(60)));
    assert_eq!(c.daemon.bpf_pin_dir, Path::new("/etc/roamgate/maps"));
    assert_eq!(c.daemon.dataplane_wait, Duration::from_secs(120));
    let conn = &c.connections["c"];
    assert_eq!(conn.local_addrs[0], AddrSpec::Any(Some(AddressFamily::V4)));
    assert!(conn.local_addrs[1].contains("198.18.200.1".parse().unwrap()));
    assert!(!conn.local_addrs[1].contains("198.19.0.1".parse().unwrap()));
    assert!(conn.local_addrs[2].contains("198.18.1.15".parse().unwrap()));
    assert!(!conn.local_addrs[2].contains("198.18.1.21".parse().unwrap()));
    assert_eq!(conn.local_addrs[3], AddrSpec::Any(Some(AddressFamily::V6)));
    assert_eq!(conn.proposals.len(), 3);
    assert_eq!(conn.dpd_delay, Some(Duration::from_secs(90)));
    assert_eq!(conn.rekey_time, None);
    assert_eq!(conn.over_time, Duration::ZERO);
    let x = &conn.children["x"];
    assert_eq!(
        (x.local_ts[0].protocol, x.local_ts[0].ports),
        (6, (443, 443))
    );
    assert_eq!(
        x.local_ts[1].addrs,
        TsAddrs::Prefix("10.1.0.1".parse().unwrap(), 32)
    );
    assert_eq!(
        (x.local_ts[2].protocol, x.local_ts[2].ports),
        (17, (1024, 2047))
    );
    assert_eq!(x.local_ts[3].protocol, 58);
    assert_eq!(x.mode, Mode::Beet);
    assert_eq!(x.life_time, Some(Duration::from_secs(1320)));
    assert_eq!(
        c.shared_secrets.iter().next().unwrap().secret,
        Secret::from_slice(&[0, 255])
    );
}

#[test]
fn psk_selection_prefers_the_most_specific_secret() {
    let text = r#"
[connections.c.local]
auth = "psk"
[connections.c.remote]
auth = "psk"
[secrets.ike-a-any]
secret = "any"
[secrets.ike-b-local]
id = "gw.roamgate.test"
secret = "local"
[secrets.ike-c-remote]
id = "*@roamgate.test"
secret = "remote"
[secrets.ike-d-both]
id = ["gw.roamgate.test", "alice@roamgate.test"]
secret = "both"
"#;
    let c = parse(text);
    let id = |s: &str| Identity::parse(s).unwrap();
    let pick = |l: Option<&str>, r: &str| {
        let l = l.map(id);
        c.psk_for(l.as_ref(), &id(r))
            .map(|s| String::from_utf8(s.expose().to_vec()).unwrap())
    };
    assert_eq!(
        pick(Some("gw.roamgate.test"), "alice@roamgate.test").as_deref(),
        Some("both")
    );
    assert_eq!(
        pick(Some("gw.roamgate.test"), "bob@roamgate.test").as_deref(),
        Some("remote")
    );
    assert_eq!(pick(None, "bob@roamgate.test").as_deref(), Some("remote"));
    assert_eq!(
        pick(Some("gw.roamgate.test"), "bob@other.test").as_deref(),
        Some("local")
    );
    assert_eq!(
        pick(Some("x.test"), "bob@other.test").as_deref(),
        Some("any")
    );
}

fn pki(dir: &Path, args: &[&str], out: &str) {
    let o = Command::new("pki")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `pki` ({e}): install the Debian package strongswan-pki")
        });
    assert!(
        o.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(dir.join(out), o.stdout).unwrap();
}

#[test]
fn certificate_credentials_load_with_relative_paths_and_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("conf")).unwrap();
    pki(
        d,
        &[
            "--gen",
            "--type",
            "ecdsa",
            "--size",
            "256",
            "--outform",
            "pem",
        ],
        "ca.key",
    );
    pki(
        d,
        &[
            "--self",
            "--ca",
            "--in",
            "ca.key",
            "--type",
            "ecdsa",
            "--dn",
            "CN=CA",
            "--outform",
            "pem",
        ],
        "conf/ca.pem",
    );
    pki(
        d,
        &["--gen", "--type", "rsa", "--size", "2048"],
        "conf/gw.der",
    );
    pki(
        d,
        &["--gen", "--type", "ed25519", "--outform", "pem"],
        "conf/other.key",
    );
    pki(
        d,
        &[
            "--issue",
            "--cacert",
            "conf/ca.pem",
            "--cakey",
            "ca.key",
            "--type",
            "priv",
            "--in",
            "conf/gw.der",
            "--dn",
            "C=CH, CN=gw.roamgate.test",
            "--san",
            "gw.roamgate.test",
            "--outform",
            "pem",
        ],
        "conf/gw.pem",
    );
    let conf = |local_id: &str, auth: &str, keyfile: &str| {
        format!(
            r#"
[connections.s2s.local]
auth = "{auth}"
{local_id}
certs = ["gw.pem"]
[connections.s2s.remote]
auth = "pubkey"
id = "peer.roamgate.test"
cacerts = ["ca.pem"]
[secrets.private-other]
file = "other.key"
[secrets.private-gw]
file = "{keyfile}"
"#
        )
    };
    let path = d.join("conf/roamgate.toml");
    let c = Config::parse(&conf("", "pubkey", "gw.der"), &path).unwrap_or_else(|e| panic!("{e}"));
    let LocalMethod::PubKey(cred) = &c.connections["s2s"].local.method else {
        panic!()
    };
    assert_eq!(
        cred.default_identity().to_string(),
        "C=CH, CN=gw.roamgate.test"
    );
    let c = Config::parse(
        &conf("id = \"gw.roamgate.test\"", "rsa/pss", "gw.der"),
        &path,
    )
    .unwrap();
    assert_eq!(
        c.connections["s2s"].local.id,
        Some(Identity::Fqdn("gw.roamgate.test".into()))
    );
    let dump = format!("{c:?}");
    assert!(
        dump.contains("redacted") || !dump.contains("PRIVATE"),
        "{dump}"
    );

    let err = Config::parse(
        &conf("id = \"other.roamgate.test\"", "pubkey", "gw.der"),
        &path,
    )
    .unwrap_err();
    assert_eq!(err.key, "connections.s2s.local.id", "{err}");
    let err = Config::parse(&conf("", "pubkey", "other.key"), &path).unwrap_err();
    assert_eq!(err.key, "connections.s2s.local.certs[0]", "{err}");
    assert!(
        err.reason.contains("no [secrets.private*] key matches"),
        "{err}"
    );
    let err = Config::parse(&conf("", "pubkey", "ca.pem"), &path).unwrap_err();
    assert_eq!(err.key, "secrets.private-gw.file", "{err}");
}

#[test]
fn config_and_credentials_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Config>();
    shareable::<roamgate_control::auth::Credential>();
    shareable::<roamgate_control::auth::TrustStore>();
}
