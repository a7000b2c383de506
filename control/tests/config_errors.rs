//! Bad configurations are refused with the file, the key path and the reason; secrets never
//! appear in errors or `Debug` output.

use std::path::Path;

use roamgate_control::config::{Config, ConfigError};

const SECRET: &str = "s3cr3t-never-printed";

/// A valid PSK gateway; cases below replace one line or append a table.
fn base() -> String {
    format!(
        r#"
[daemon]
log_level = "info"

[connections.rw]
local_addrs = ["198.18.1.1", "198.18.2.1"]
remote_addrs = ["%any"]
proposals = ["aes128gcm16-prfsha256-x25519"]
dpd_delay = "2s"
pools = ["rw_pool"]

[connections.rw.local]
auth = "psk"
id = "gw.roamgate.test"

[connections.rw.remote]
auth = "psk"
id = "rw@roamgate.test"

[connections.rw.children.lan]
local_ts = ["10.101.0.0/24"]
remote_ts = ["dynamic"]
esp_proposals = ["aes128gcm16"]
mode = "tunnel"

[pools.rw_pool]
addrs = "10.200.0.0/24"

[secrets.ike-rw]
id = "rw@roamgate.test"
secret = "{SECRET}"
"#
    )
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/roamgate/test.toml"))
}

fn replace(from: &str, to: &str) -> String {
    let b = base();
    assert!(b.contains(from), "base lacks {from:?}");
    b.replacen(from, to, 1)
}

#[test]
fn the_base_config_is_valid() {
    let c = parse(&base()).unwrap();
    assert_eq!(c.connections["rw"].children["lan"].local_ts.len(), 1);
}

#[test]
fn return_routability_defaults_to_new_addresses_and_takes_each_policy() {
    use roamgate_control::engine::ReturnRoutability as R;
    let c = parse(&base()).unwrap();
    assert_eq!(c.connections["rw"].return_routability, R::NewAddresses);
    for (name, want) in [
        ("always", R::Always),
        ("new_addresses", R::NewAddresses),
        ("never", R::Never),
        ("certificate", R::Certificate),
    ] {
        let text = replace(
            r#"proposals = ["aes128gcm16-prfsha256-x25519"]"#,
            &format!(
                "proposals = [\"aes128gcm16-prfsha256-x25519\"]\nreturn_routability = \"{name}\""
            ),
        );
        assert_eq!(
            parse(&text).unwrap().connections["rw"].return_routability,
            want
        );
    }
    let text = replace(
        r#"proposals = ["aes128gcm16-prfsha256-x25519"]"#,
        "proposals = [\"aes128gcm16-prfsha256-x25519\"]\nreturn_routability = \"sometimes\"",
    );
    let e = parse(&text).unwrap_err().to_string();
    assert!(
        e.contains("connections.rw.return_routability") && e.contains("new_addresses"),
        "{e}"
    );
}

#[test]
fn hold_is_off_by_default_and_takes_a_duration() {
    let c = parse(&base()).unwrap();
    assert_eq!(c.connections["rw"].hold, None);
    let with = |hold: &str| {
        replace(
            r#"proposals = ["aes128gcm16-prfsha256-x25519"]"#,
            &format!("proposals = [\"aes128gcm16-prfsha256-x25519\"]\nhold = {hold}"),
        )
    };
    let c = parse(&with(r#""10m""#)).unwrap();
    assert_eq!(
        c.connections["rw"].hold,
        Some(std::time::Duration::from_secs(600))
    );
    assert_eq!(
        parse(&with(r#""0s""#)).unwrap().connections["rw"].hold,
        None
    );
    let e = parse(&with(r#""soon""#)).unwrap_err().to_string();
    assert!(e.contains("connections.rw.hold"), "{e}");
}

#[test]
fn links_are_interface_names_in_order_and_bad_ones_are_refused() {
    let c = parse(&base()).unwrap();
    assert!(
        c.connections["rw"].links.is_empty(),
        "default: any interface"
    );
    let with = |links: &str| {
        replace(
            r#"proposals = ["aes128gcm16-prfsha256-x25519"]"#,
            &format!("proposals = [\"aes128gcm16-prfsha256-x25519\"]\nlinks = {links}"),
        )
    };
    let c = parse(&with(r#"["wan2", "wan1"]"#)).unwrap();
    assert_eq!(c.connections["rw"].links, ["wan2", "wan1"]);
    for (bad, why) in [
        (r#"["wan1", "wan1"]"#, "listed twice"),
        (r#"["a/b"]"#, "not an interface name"),
        (r#"[""]"#, "not an interface name"),
        (r#"["sixteen-chars-xx"]"#, "not an interface name"),
    ] {
        let e = parse(&with(bad)).unwrap_err().to_string();
        assert!(
            e.contains("connections.rw.links") && e.contains(why),
            "{bad}: {e}"
        );
    }
}

#[test]
fn bad_configs_name_file_key_and_reason() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            replace(
                "log_level = \"info\"",
                "log_level = \"info\"\ndataplane_wait = \"30 seconds\"",
            ),
            "daemon.dataplane_wait",
            "unit",
        ),
        (
            replace(
                r#"local_ts = ["10.101.0.0/24"]"#,
                r#"local_ts = ["10.101.0.0/33"]"#,
            ),
            "connections.rw.children.lan.local_ts[0]",
            "prefix length",
        ),
        (
            replace(
                r#"local_ts = ["10.101.0.0/24"]"#,
                r#"local_ts = ["10.101.0.1/24"]"#,
            ),
            "connections.rw.children.lan.local_ts[0]",
            "host bits",
        ),
        (
            replace(
                r#"remote_ts = ["dynamic"]"#,
                r#"remote_ts = ["dynamic", "nonsense"]"#,
            ),
            "connections.rw.children.lan.remote_ts[1]",
            "nonsense",
        ),
        (
            replace(
                r#"local_ts = ["10.101.0.0/24"]"#,
                r#"local_ts = ["10.101.0.0/24[tcp/99999]"]"#,
            ),
            "connections.rw.children.lan.local_ts[0]",
            "port",
        ),
        (
            replace(
                r#"local_addrs = ["198.18.1.1", "198.18.2.1"]"#,
                r#"local_addrs = ["198.18.1.1", "gw.example"]"#,
            ),
            "connections.rw.local_addrs[1]",
            "host names are not resolved",
        ),
        (
            replace(
                r#"proposals = ["aes128gcm16-prfsha256-x25519"]"#,
                r#"proposals = ["aes128gcm16-prfsha256-x25519", "aes128gcm16-prfmd5-x25519"]"#,
            ),
            "connections.rw.proposals[1]",
            "prfmd5",
        ),
        (
            replace(
                r#"proposals = ["aes128gcm16-prfsha256-x25519"]"#,
                r#"proposals = ["aes128gcm16-x25519"]"#,
            ),
            "connections.rw.proposals[0]",
            "no PRF",
        ),
        (
            replace(
                r#"esp_proposals = ["aes128gcm16"]"#,
                r#"esp_proposals = ["aes128gcm16-prfsha256"]"#,
            ),
            "connections.rw.children.lan.esp_proposals[0]",
            "not allowed",
        ),
        (
            replace(
                r#"log_level = "info""#,
                "log_level = \"info\"\nfragment_size = 100",
            ),
            "daemon.fragment_size",
            "outside 576 to 65535",
        ),
        (
            replace(r#"dpd_delay = "2s""#, r#"dpd_delay = "2 fortnights""#),
            "connections.rw.dpd_delay",
            "unit",
        ),
        (
            replace(r#"dpd_delay = "2s""#, r#"dpd_delay = true"#),
            "connections.rw.dpd_delay",
            "duration",
        ),
        (
            replace(r#"mode = "tunnel""#, r#"mode = "tunel""#),
            "connections.rw.children.lan.mode",
            "\"beet\"",
        ),
        (
            replace(
                r#"mode = "tunnel""#,
                "mode = \"tunnel\"\nlocal_tss = [\"x\"]",
            ),
            "connections.rw.children.lan.local_tss",
            "unknown field",
        ),
        (
            replace(r#"dpd_delay = "2s""#, "dpd_delay = \"2s\"\nmobikee = true"),
            "connections.rw.mobikee",
            "unknown field",
        ),
        (
            replace("[daemon]", "[daemon]\nport = 4500"),
            "daemon.port_nat_t",
            "own port",
        ),
        (
            replace("[daemon]", "[daemon]\nport = 70000"),
            "daemon.port",
            "u16",
        ),
        (
            replace(r#"log_level = "info""#, r#"log_level = "loud""#),
            "daemon.log_level",
            "\"debug\"",
        ),
        (
            replace("[daemon]", "[daemon]\nlisten = [\"0.0.0.0\", \"eth0\"]"),
            "daemon.listen[1]",
            "not an IP address",
        ),
        (
            replace("[daemon]", "[daemon]\nretransmit_base = 0.5"),
            "daemon.retransmit_base",
            "outside",
        ),
        (
            replace("[daemon]", "[daemon]\nretransmit_timeout = \"0s\""),
            "daemon.retransmit_timeout",
            "greater than 0",
        ),
        (
            replace(
                r#"pools = ["rw_pool"]"#,
                r#"pools = ["rw_pool", "missing"]"#,
            ),
            "connections.rw.pools[1]",
            "no [pools.missing]",
        ),
        (
            replace(
                r#"addrs = "10.200.0.0/24""#,
                r#"addrs = "10.200.0.9-10.200.0.1""#,
            ),
            "pools.rw_pool.addrs",
            "ends before it starts",
        ),
        (
            replace(r#"id = "gw.roamgate.test""#, r#"id = "*.roamgate.test""#),
            "connections.rw.local.id",
            "pattern",
        ),
        (
            replace(r#"id = "gw.roamgate.test""#, r#"id = "C=CH, XYZ=1""#),
            "connections.rw.local.id",
            "XYZ",
        ),
        (
            replace(
                "[connections.rw.local]\nauth = \"psk\"",
                "[connections.rw.local]\nauth = \"eap\"",
            ),
            "connections.rw.local.auth",
            "\"pubkey\"",
        ),
        (
            replace(
                "[connections.rw.local]\nauth = \"psk\"",
                "[connections.rw.local]\nauth = \"pubkey\"",
            ),
            "connections.rw.local.certs",
            "needs our certificate",
        ),
        (
            replace(
                "[connections.rw.remote]\nauth = \"psk\"",
                "[connections.rw.remote]\nauth = \"pubkey\"",
            ),
            "connections.rw.remote.cacerts",
            "trust anchor",
        ),
        (
            replace(
                "[connections.rw.remote]\nauth = \"psk\"",
                "[connections.rw.remote]\nauth = \"psk\"\ncacerts = [\"ca.pem\"]",
            ),
            "connections.rw.remote.cacerts",
            "need auth = \"pubkey\"",
        ),
        (
            replace(
                "[connections.rw.local]\nauth = \"psk\"",
                "[connections.rw.local]\nauth = \"pubkey\"\ncerts = [\"missing.pem\"]",
            ),
            "connections.rw.local.certs[0]",
            "missing.pem",
        ),
        (
            replace(
                r#"id = "rw@roamgate.test"
secret"#,
                "id = \"other@roamgate.test\"\nsecret",
            ),
            "connections.rw.remote.auth",
            "no [secrets.ike*]",
        ),
        (
            replace("[secrets.ike-rw]", "[secrets.eap-rw]"),
            "secrets.eap-rw",
            "secret type `eap`",
        ),
        (
            replace("[secrets.ike-rw]", "[secrets.private-rw]"),
            "secrets.private-rw.secret",
            "encrypted private keys",
        ),
        (
            format!("{}\n[secrets.ike-two]\nid = \"x@y\"\n", base()),
            "secrets.ike-two.secret",
            "missing",
        ),
        (
            format!("{}\n[secrets.private-gw]\nfile = \"nope.key\"\n", base()),
            "secrets.private-gw.file",
            "nope.key",
        ),
        (
            replace("[connections.rw.local]", "[connections.rw.local-1]"),
            "connections.rw.local-1",
            "unknown field",
        ),
        (
            base().replace(
                "[connections.rw.remote]\nauth = \"psk\"\nid = \"rw@roamgate.test\"\n",
                "",
            ),
            "connections.rw.remote",
            "missing",
        ),
        (
            replace("[daemon]", "[daemon]\nversion = 2"),
            "daemon.version",
            "unknown field",
        ),
        (
            replace(r#"dpd_delay = "2s""#, "dpd_delay = \"2s\"\nversion = 1"),
            "connections.rw.version",
            "IKEv1",
        ),
        (
            replace(
                r#"mode = "tunnel""#,
                "mode = \"tunnel\"\nrekey_time = \"1h\"\nlife_time = \"30m\"",
            ),
            "connections.rw.children.lan.life_time",
            "longer than rekey_time",
        ),
        (
            replace("[pools.rw_pool]", "[pools.rw_pool]\ndns = [\"8.8.8.8.8\"]"),
            "pools.rw_pool.dns[0]",
            "not an IP address",
        ),
        (
            replace(r#"secret = ""#, r#"secret = "0x"#),
            "secrets.ike-rw.secret",
            "hex",
        ),
    ];
    for (text, key, reason) in &cases {
        let err = parse(text).expect_err(&format!("accepted a config with a bad {key}"));
        assert_eq!(err.file, Path::new("/etc/roamgate/test.toml"), "{key}");
        assert_eq!(err.key, *key, "wrong key for: {err}");
        assert!(
            err.reason.contains(reason),
            "{key}: reason {:?} lacks {reason:?}",
            err.reason
        );
        let shown = err.to_string();
        assert!(shown.starts_with("/etc/roamgate/test.toml"), "{shown}");
        assert!(
            shown.contains(key) && shown.contains(&err.reason),
            "{shown}"
        );
        assert!(
            !shown.contains(SECRET) && !format!("{err:?}").contains(SECRET),
            "{shown}"
        );
    }
}

#[test]
fn serde_errors_carry_a_line_number() {
    let text = replace(r#"dpd_delay = "2s""#, "dpd_delay = \"2s\"\nmobikee = true");
    let err = parse(&text).unwrap_err();
    let line = text.lines().position(|l| l.starts_with("mobikee")).unwrap() + 1;
    assert_eq!(err.line, Some(line), "{err}");
    assert!(err.to_string().contains(&format!("test.toml:{line}:")));
}

#[test]
fn secrets_never_leak_into_errors_or_debug() {
    // Wrong type for the secret: serde's usual message would quote the value.
    let texts = [
        replace(&format!("secret = \"{SECRET}\""), "secret = 123456789"),
        replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret = \"{SECRET}"),
        ),
        replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret = \"{SECRET}\" {SECRET}"),
        ),
        replace(
            &format!("secret = \"{SECRET}\""),
            &format!("secret = \"{SECRET}\"\nsecret = \"{SECRET}\""),
        ),
    ];
    for t in &texts {
        let err = parse(t).unwrap_err();
        let all = format!("{err} {err:?}");
        assert!(!all.contains(SECRET) && !all.contains("123456789"), "{all}");
        assert!(
            err.key == "secrets.ike-rw.secret" || err.key == "(syntax)",
            "{err}"
        );
    }
    let c = parse(&base()).unwrap();
    let dump = format!("{c:?}");
    assert!(!dump.contains(SECRET), "Debug output shows the secret");
    assert!(dump.contains("redacted"));
}

#[test]
fn syntax_errors_are_reported_with_line() {
    let err = parse("[daemon]\nport = \n").unwrap_err();
    assert_eq!(err.key, "(syntax)");
    assert_eq!(err.line, Some(2), "{err}");
}

/// What validates but the engine cannot do is refused when the file is converted for the
/// daemon, with the same file/key/reason error.
#[test]
fn conversion_refuses_what_the_engine_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            replace(
                r#"remote_addrs = ["%any"]"#,
                r#"remote_addrs = ["198.18.0.0/16"]"#,
            ),
            "connections.rw.remote_addrs[0]",
            "prefixes and ranges are not supported",
        ),
        (
            replace(r#"log_level = "info""#, "log_level = \"info\"\nport = 1500"),
            "daemon.port",
            "not supported yet",
        ),
        (
            replace(
                r#"dpd_delay = "2s""#,
                "dpd_delay = \"2s\"\nremote_port = 4501",
            ),
            "connections.rw.remote_port",
            "not supported yet",
        ),
    ];
    for (text, key, reason) in cases {
        let path = dir.path().join("roamgate.toml");
        std::fs::write(&path, &text).unwrap();
        assert!(
            Config::load(&path).is_ok(),
            "{key}: the file itself is valid"
        );
        let e = roamgate_control::daemon::config::load(&path).unwrap_err();
        assert_eq!(e.key, key, "{e}");
        assert!(e.reason.contains(reason), "{e}");
        assert_eq!(e.file, path);
        assert!(!e.to_string().contains(SECRET));
    }
}
