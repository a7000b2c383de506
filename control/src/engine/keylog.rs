//! An IKE SA's keys for a dissector: Wireshark's IKEv2 decryption table (the
//! `ikev2_decryption_table` preference; strongSwan's `save-keys` plugin writes the same
//! records), so that a capture of the protected exchanges — MOBIKE's among them — can be read
//! in the clear.
//!
//! Off unless [`Engine::set_key_log`](super::Engine::set_key_log) is given a [`KeyLog`]: the
//! daemon never gives one, and nothing in the configuration turns it on. Keys only ever go to
//! the [`KeyLog`], never to a log.

use crate::crypto::sk::{Encr, Integ};

/// Receives the keys of every IKE SA when they are derived (IKE_SA_INIT and each IKE SA
/// rekey).
pub trait KeyLog: Send {
    /// An IKE SA's keys.
    fn ike_sa_keys(&mut self, keys: &IkeSaKeys<'_>);
}

/// The keys that protect one IKE SA's messages, in both directions.
#[derive(Clone, Copy)]
pub struct IkeSaKeys<'a> {
    /// SPIi.
    pub spi_i: u64,
    /// SPIr.
    pub spi_r: u64,
    /// The encryption algorithm.
    pub encr: Encr,
    /// The integrity algorithm (`None` with an AEAD).
    pub integ: Option<Integ>,
    /// SK_ei (with the salt, for an AEAD).
    pub sk_ei: &'a [u8],
    /// SK_er.
    pub sk_er: &'a [u8],
    /// SK_ai (empty with an AEAD).
    pub sk_ai: &'a [u8],
    /// SK_ar.
    pub sk_ar: &'a [u8],
}

impl core::fmt::Debug for IkeSaKeys<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeSaKeys")
            .field("spi_i", &format_args!("{:016x}", self.spi_i))
            .field("spi_r", &format_args!("{:016x}", self.spi_r))
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

impl IkeSaKeys<'_> {
    /// One record of Wireshark's `ikev2_decryption_table`: SPIi, SPIr, SK_ei, SK_er, the
    /// encryption algorithm, SK_ai, SK_ar, the integrity algorithm (the octet strings in hex,
    /// the algorithms' names quoted), as the table's file holds it and as
    /// `tshark -o 'uat:ikev2_decryption_table:<record>'` takes it.
    pub fn wireshark_record(&self) -> String {
        let encr = match self.encr {
            Encr::AesCbc(16) => "AES-CBC-128 [RFC3602]",
            Encr::AesCbc(24) => "AES-CBC-192 [RFC3602]",
            Encr::AesCbc(_) => "AES-CBC-256 [RFC3602]",
            Encr::AesGcm16(16) => "AES-GCM-128 with 16 octet ICV [RFC5282]",
            Encr::AesGcm16(24) => "AES-GCM-192 with 16 octet ICV [RFC5282]",
            Encr::AesGcm16(_) => "AES-GCM-256 with 16 octet ICV [RFC5282]",
        };
        let integ = match self.integ {
            None => "NONE [RFC4306]",
            Some(Integ::HmacSha256_128) => "HMAC_SHA2_256_128 [RFC4868]",
            Some(Integ::HmacSha384_192) => "HMAC_SHA2_384_192 [RFC4868]",
            Some(Integ::HmacSha512_256) => "HMAC_SHA2_512_256 [RFC4868]",
        };
        format!(
            "{:016x},{:016x},{},{},\"{encr}\",{},{},\"{integ}\"",
            self.spi_i,
            self.spi_r,
            hex(self.sk_ei),
            hex(self.sk_er),
            hex(self.sk_ai),
            hex(self.sk_ar),
        )
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
