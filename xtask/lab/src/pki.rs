//! A throwaway certificate authority for lab tests, made with strongSwan's own `pki` tool, so
//! the certificates both peers use come from real tooling rather than from the code under test.
//!
//! Keys and certificates are written as PEM files into the lab's log folder (they are the
//! lab's own, valid for a day, and never leave it).

use std::path::{Path, PathBuf};

use crate::cmd;
use crate::error::{LabError, Result};

/// A key type `pki --gen` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048 bits.
    Rsa2048,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    fn gen_args(self) -> &'static [&'static str] {
        match self {
            KeyKind::Rsa2048 => &["--type", "rsa", "--size", "2048"],
            KeyKind::EcdsaP256 => &["--type", "ecdsa", "--size", "256"],
            KeyKind::EcdsaP384 => &["--type", "ecdsa", "--size", "384"],
            KeyKind::Ed25519 => &["--type", "ed25519"],
        }
    }

    /// The `--type` `pki` expects when reading such a private key.
    fn pki_type(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "rsa",
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => "ecdsa",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    /// The swanctl credential folder this key belongs in (`private/` takes any PKCS#8 key).
    pub fn swanctl_dir(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "rsa",
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => "ecdsa",
            KeyKind::Ed25519 => "private",
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "rsa2048",
            KeyKind::EcdsaP256 => "p256",
            KeyKind::EcdsaP384 => "p384",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

/// A key pair and its certificate, as files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The key type.
    pub kind: KeyKind,
    /// The private key (PEM).
    pub key: PathBuf,
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The subject DN, as `pki` was given it.
    pub dn: String,
}

/// A lab CA: its own key and self-signed certificate, and the folder it issues into.
#[derive(Debug, Clone)]
pub struct LabCa {
    dir: PathBuf,
    ca: Issued,
}

impl LabCa {
    /// Makes a CA of key type `kind` in `dir` (created if missing).
    pub fn new(dir: &Path, kind: KeyKind) -> Result<LabCa> {
        cmd::require("pki")?;
        std::fs::create_dir_all(dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let stem = format!("ca-{}", kind.file_stem());
        let key = generate_key(dir, &stem, kind)?;
        let dn = format!(
            "C=CH, O=roamgate lab, CN=roamgate lab CA {}",
            kind.file_stem()
        );
        let cert = dir.join(format!("{stem}.crt.pem"));
        let key_arg = path_str(&key)?;
        let pem = cmd::run(
            "pki",
            &[
                "--self",
                "--ca",
                "--lifetime",
                "1",
                "--in",
                key_arg,
                "--type",
                kind.pki_type(),
                "--dn",
                &dn,
                "--outform",
                "pem",
            ],
        )?;
        write(&cert, &pem.stdout)?;
        Ok(LabCa {
            dir: dir.to_path_buf(),
            ca: Issued {
                kind,
                key,
                cert,
                dn,
            },
        })
    }

    /// The CA's own key and certificate.
    pub fn ca(&self) -> &Issued {
        &self.ca
    }

    /// Issues an end-entity certificate of key type `kind` for subject CN `name`, with
    /// `name` also as subjectAltName (a DNS name, an email address or an IP address, as
    /// `pki --san` decides from its form).
    pub fn issue(&self, name: &str, kind: KeyKind) -> Result<Issued> {
        let stem = format!(
            "{}-{}",
            name.replace(['@', '/', ':'], "_"),
            kind.file_stem()
        );
        let key = generate_key(&self.dir, &stem, kind)?;
        let dn = format!("C=CH, O=roamgate lab, CN={name}");
        let public = cmd::run("pki", &["--pub", "--in", path_str(&key)?, "--type", "priv"])?;
        let public_path = self.dir.join(format!("{stem}.pub.der"));
        write(&public_path, &public.stdout)?;
        let cert = self.dir.join(format!("{stem}.crt.pem"));
        let pem = cmd::run(
            "pki",
            &[
                "--issue",
                "--lifetime",
                "1",
                "--in",
                path_str(&public_path)?,
                "--type",
                "pub",
                "--cacert",
                path_str(&self.ca.cert)?,
                "--cakey",
                path_str(&self.ca.key)?,
                "--dn",
                &dn,
                "--san",
                name,
                "--outform",
                "pem",
            ],
        )?;
        write(&cert, &pem.stdout)?;
        Ok(Issued {
            kind,
            key,
            cert,
            dn,
        })
    }
}

fn generate_key(dir: &Path, stem: &str, kind: KeyKind) -> Result<PathBuf> {
    let mut args = vec!["--gen"];
    args.extend_from_slice(kind.gen_args());
    args.extend_from_slice(&["--outform", "pem"]);
    let out = cmd::run("pki", &args)?;
    let key = dir.join(format!("{stem}.key.pem"));
    write(&key, &out.stdout)?;
    Ok(key)
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| LabError::Usage(format!("{} is not UTF-8", path.display())))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}
