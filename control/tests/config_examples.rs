//! Every configuration in deploy/examples/ parses and validates. Files the examples reference
//! (certificates, keys, CA certificates) are generated into a temporary copy of the folder
//! with strongSwan's `pki` (Debian package strongswan-pki): `x509/<name>.pem` is issued for the
//! key `private/<name>.key` with the connection's local id as subject CN and subjectAltName,
//! and every `x509ca/*.pem` is the one throwaway CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use roamgate_control::auth::Identity;
use roamgate_control::config::{
    AddrSpec, Config, LocalMethod, Mode, RemoteMethod, StartAction, TsAddrs,
};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples")
}

fn pki(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("pki")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `pki` ({e}): install the Debian package strongswan-pki")
        });
    assert!(
        out.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Generates the files `example` refers to into `dir`.
fn generate_references(dir: &Path, example: &toml::Table) {
    let ca_key = dir.join("throwaway-ca.key");
    let ca_cert = dir.join("throwaway-ca.pem");
    if !ca_cert.exists() {
        write(
            &ca_key,
            &pki(
                dir,
                &[
                    "--gen",
                    "--type",
                    "ecdsa",
                    "--size",
                    "256",
                    "--outform",
                    "pem",
                ],
            ),
        );
        write(
            &ca_cert,
            &pki(
                dir,
                &[
                    "--self",
                    "--ca",
                    "--in",
                    ca_key.to_str().unwrap(),
                    "--type",
                    "ecdsa",
                    "--dn",
                    "C=CH, O=roamgate, CN=Example CA",
                    "--outform",
                    "pem",
                ],
            ),
        );
    }
    let Some(conns) = example.get("connections").and_then(|c| c.as_table()) else {
        return;
    };
    for conn in conns.values() {
        if let Some(cacerts) = conn
            .get("remote")
            .and_then(|r| r.get("cacerts"))
            .and_then(|c| c.as_array())
        {
            for ca in cacerts {
                std::fs::create_dir_all(dir.join(ca.as_str().unwrap()).parent().unwrap()).unwrap();
                std::fs::copy(&ca_cert, dir.join(ca.as_str().unwrap())).unwrap();
            }
        }
        let Some(local) = conn.get("local") else {
            continue;
        };
        let Some(certs) = local.get("certs").and_then(|c| c.as_array()) else {
            continue;
        };
        let cert = certs[0].as_str().unwrap();
        let stem = Path::new(cert).file_stem().unwrap().to_str().unwrap();
        let key = dir.join(format!("private/{stem}.key"));
        write(
            &key,
            &pki(
                dir,
                &[
                    "--gen",
                    "--type",
                    "ecdsa",
                    "--size",
                    "384",
                    "--outform",
                    "pem",
                ],
            ),
        );
        let id = local
            .get("id")
            .and_then(|i| i.as_str())
            .unwrap_or("example.roamgate.test");
        let dn = format!("C=CH, O=roamgate, CN={id}");
        write(
            &dir.join(cert),
            &pki(
                dir,
                &[
                    "--issue",
                    "--cacert",
                    ca_cert.to_str().unwrap(),
                    "--cakey",
                    ca_key.to_str().unwrap(),
                    "--type",
                    "priv",
                    "--in",
                    key.to_str().unwrap(),
                    "--dn",
                    &dn,
                    "--san",
                    id,
                    "--outform",
                    "pem",
                ],
            ),
        );
    }
}

fn load_all() -> Vec<(String, Config)> {
    let tmp = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("deploy/examples/ is missing")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 3,
        "expected the example configurations, found {names:?}"
    );
    for path in names {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        generate_references(tmp.path(), &table);
        let copy = tmp.path().join(&name);
        std::fs::write(&copy, &text).unwrap();
        let config = Config::load(&copy).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, config));
    }
    // Keep the generated files until every config is loaded (keys load eagerly).
    drop(tmp);
    out
}

#[test]
fn every_example_parses_and_says_what_its_comments_say() {
    let configs = load_all();
    let names: Vec<&str> = configs.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "roadwarrior-gateway-psk.toml",
        "roadwarrior-client.toml",
        "site-to-site-gwa.toml",
        "site-to-site-gwb.toml",
    ] {
        assert!(
            names.contains(&expected),
            "missing example {expected}: {names:?}"
        );
    }
    for (name, c) in &configs {
        match name.as_str() {
            "roadwarrior-gateway-psk.toml" => {
                let rw = &c.connections["rw"];
                assert_eq!(
                    rw.local_addrs,
                    [
                        AddrSpec::Addr("198.18.1.1".parse().unwrap()),
                        AddrSpec::Addr("198.18.2.1".parse().unwrap())
                    ]
                );
                assert!(rw.mobike);
                assert_eq!(rw.dpd_delay, Some(std::time::Duration::from_secs(2)));
                assert_eq!(
                    c.pools["rw_pool"].first,
                    "10.200.0.1".parse::<std::net::IpAddr>().unwrap()
                );
                assert!(matches!(rw.local.method, LocalMethod::Psk));
                let psk = c.psk_for(
                    Some(&Identity::parse("gw.roamgate.test").unwrap()),
                    &Identity::parse("rw@roamgate.test").unwrap(),
                );
                assert!(psk.is_some());
                assert_eq!(rw.children["lan"].mode, Mode::Tunnel);
                assert_eq!(rw.children["lan"].remote_ts[0].addrs, TsAddrs::Dynamic);
            }
            "roadwarrior-client.toml" => {
                let home = &c.connections["home"];
                assert_eq!(home.vips, ["0.0.0.0".parse::<std::net::IpAddr>().unwrap()]);
                assert_eq!(home.keyingtries, 0);
                assert_eq!(home.children["lan"].start_action, StartAction::Start);
            }
            "site-to-site-gwa.toml" | "site-to-site-gwb.toml" => {
                let (me, peer) = if name.contains("gwa") {
                    ("gwa", "gwb")
                } else {
                    ("gwb", "gwa")
                };
                let conn = &c.connections[peer];
                let LocalMethod::PubKey(cred) = &conn.local.method else {
                    panic!("{name}: not pubkey")
                };
                assert!(
                    cred.certificate()
                        .binds(&Identity::Fqdn(format!("{me}.roamgate.test")))
                );
                assert!(
                    matches!(&conn.remote.method, RemoteMethod::PubKey(t) if t.certificates().len() == 1)
                );
                assert_eq!(
                    conn.remote.id,
                    Identity::Fqdn(format!("{peer}.roamgate.test"))
                );
                assert_eq!(conn.children["net"].start_action, StartAction::Trap);
            }
            other => panic!("an example without checks: {other}; add its expectations here"),
        }
    }
}
