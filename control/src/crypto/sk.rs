//! The Encrypted (SK) payload ([RFC 7296 § 3.14](https://www.rfc-editor.org/rfc/rfc7296#section-3.14)).
//!
//! ```text
//! IV | Encrypted IKE Payloads | Padding | Pad Length | Integrity Checksum Data
//! ```
//!
//! - AES-CBC with HMAC-SHA2: a 16-octet IV "MUST be chosen at random"; the plaintext plus
//!   padding and Pad Length fills whole blocks; the ICV is the truncated HMAC "computed over
//!   the entire message starting with the first octet of the fixed header through the last
//!   octet of the Pad Length" ([§ 3.14](https://www.rfc-editor.org/rfc/rfc7296#section-3.14)),
//!   i.e. everything before the ICV.
//! - AES-GCM with a 16-octet ICV ([RFC 5282](https://www.rfc-editor.org/rfc/rfc5282)): an 8-octet
//!   IV, the nonce is salt (4) | IV (8) (§ 4), and the associated data is the message "from the
//!   first octet of the IKE header through the last octet of the generic payload header of the
//!   Encrypted payload" — without the IV (§ 5.1). The IV must never repeat under one key, so the
//!   caller passes a per-key counter, not random bytes.
//!
//! The Encrypted Fragment (SKF) payload of IKE fragmentation
//! ([RFC 7383 § 2.5](https://www.rfc-editor.org/rfc/rfc7383#section-2.5)) protects one piece of
//! a message the same way; its Fragment Number and Total Fragments come before the IV and are
//! covered by the integrity check (and are GCM associated data) like every other octet
//! before the IV ([`SkCipher::seal_fragment`]; [`SkCipher::open`] handles both payloads).
//!
//! Every failure is a [`SkError`]; nothing the peer sends can panic.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aws_lc_rs::{aead, constant_time, hmac};

use super::Secret;
use super::keys::split_salt;
use crate::wire::payload::{Encrypted, EncryptedFragment};
use crate::wire::{DecodeError, EncodeError, EncrId, IntegId, Message, Payload, PayloadType};

/// A supported SK / ESP encryption transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encr {
    /// ENCR_AES_CBC (12) with a 128- or 256-bit key (key length in bytes: 16 or 32).
    AesCbc(u8),
    /// ENCR_AES_GCM_16 (20), 16-octet ICV, 128- or 256-bit key (16 or 32 bytes).
    AesGcm16(u8),
}

impl Encr {
    /// The wire transform ID.
    pub fn id(self) -> EncrId {
        match self {
            Encr::AesCbc(_) => EncrId::AES_CBC,
            Encr::AesGcm16(_) => EncrId::AES_GCM_16,
        }
    }

    /// The Key Length attribute, in bits.
    pub fn key_bits(self) -> u16 {
        match self {
            Encr::AesCbc(n) | Encr::AesGcm16(n) => u16::from(n) * 8,
        }
    }

    /// Whether this is an AEAD (no separate integrity transform).
    pub fn is_aead(self) -> bool {
        matches!(self, Encr::AesGcm16(_))
    }

    /// Bytes of keying material taken from `prf+`: the key, plus the 4-byte salt for GCM.
    pub fn key_material_len(self) -> usize {
        match self {
            Encr::AesCbc(n) => usize::from(n),
            Encr::AesGcm16(n) => usize::from(n) + 4,
        }
    }

    /// The IV length in the SK payload.
    pub fn iv_len(self) -> usize {
        match self {
            Encr::AesCbc(_) => 16,
            Encr::AesGcm16(_) => 8,
        }
    }
}

/// A supported integrity transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integ {
    /// AUTH_HMAC_SHA2_256_128 (12).
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192 (13).
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256 (14).
    HmacSha512_256,
}

impl Integ {
    /// The wire transform ID.
    pub fn id(self) -> IntegId {
        match self {
            Integ::HmacSha256_128 => IntegId::HMAC_SHA2_256_128,
            Integ::HmacSha384_192 => IntegId::HMAC_SHA2_384_192,
            Integ::HmacSha512_256 => IntegId::HMAC_SHA2_512_256,
        }
    }

    /// Key length ([RFC 4868 § 2.1.1](https://www.rfc-editor.org/rfc/rfc4868#section-2.1.1)).
    pub fn key_len(self) -> usize {
        match self {
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
        }
    }

    /// ICV (truncated HMAC) length.
    pub fn icv_len(self) -> usize {
        self.key_len() / 2
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Integ::HmacSha256_128 => hmac::HMAC_SHA256,
            Integ::HmacSha384_192 => hmac::HMAC_SHA384,
            Integ::HmacSha512_256 => hmac::HMAC_SHA512,
        }
    }
}

/// Why SK protection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SkError {
    /// A key had the wrong length for its algorithm.
    #[error("wrong key length")]
    KeyLength,
    /// AES-CBC without an integrity algorithm, or AES-GCM with one.
    #[error("encryption and integrity algorithms do not fit together")]
    Suite,
    /// The IV given to seal has the wrong length.
    #[error("wrong IV length")]
    IvLength,
    /// The message has no SK payload, or it is not last.
    #[error("no Encrypted payload")]
    NoEncrypted,
    /// The SK payload is too short, or its ciphertext is not whole blocks.
    #[error("Encrypted payload truncated or misaligned")]
    Length,
    /// The ICV or AEAD tag did not verify.
    #[error("integrity check failed")]
    Integrity,
    /// Pad Length points outside the plaintext.
    #[error("bad padding")]
    Padding,
    /// The datagram did not decode.
    #[error("decode: {0}")]
    Decode(DecodeError),
    /// The message did not encode.
    #[error("encode: {0}")]
    Encode(EncodeError),
}

enum Cipher {
    Cbc128(Box<aes::Aes128>),
    Cbc256(Box<aes::Aes256>),
    Gcm(aead::LessSafeKey, [u8; 4]),
}

/// The keys of one direction of an IKE SA (SK_ei + SK_ai, or SK_er + SK_ar).
pub struct SkCipher {
    encr: Encr,
    integ: Option<(Integ, hmac::Key)>,
    cipher: Cipher,
}

impl core::fmt::Debug for SkCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkCipher")
            .field("encr", &self.encr)
            .field("integ", &self.integ.as_ref().map(|(i, _)| *i))
            .finish_non_exhaustive()
    }
}

impl SkCipher {
    /// Makes a cipher from SK_e* (with the salt for GCM) and SK_a* (empty for GCM).
    pub fn new(
        encr: Encr,
        integ: Option<Integ>,
        encr_key: &Secret,
        integ_key: &Secret,
    ) -> Result<SkCipher, SkError> {
        if encr.is_aead() != integ.is_none() {
            return Err(SkError::Suite);
        }
        if encr_key.len() != encr.key_material_len() {
            return Err(SkError::KeyLength);
        }
        let cipher = match encr {
            Encr::AesCbc(16) => Cipher::Cbc128(Box::new(
                aes::Aes128::new_from_slice(encr_key.expose()).map_err(|_| SkError::KeyLength)?,
            )),
            Encr::AesCbc(32) => Cipher::Cbc256(Box::new(
                aes::Aes256::new_from_slice(encr_key.expose()).map_err(|_| SkError::KeyLength)?,
            )),
            Encr::AesGcm16(n) => {
                let (key, salt) = split_salt(encr_key).ok_or(SkError::KeyLength)?;
                let alg = match n {
                    16 => &aead::AES_128_GCM,
                    32 => &aead::AES_256_GCM,
                    _ => return Err(SkError::KeyLength),
                };
                let unbound =
                    aead::UnboundKey::new(alg, key.expose()).map_err(|_| SkError::KeyLength)?;
                Cipher::Gcm(aead::LessSafeKey::new(unbound), salt)
            }
            Encr::AesCbc(_) => return Err(SkError::KeyLength),
        };
        let integ = match integ {
            Some(i) if integ_key.len() == i.key_len() => {
                Some((i, hmac::Key::new(i.algorithm(), integ_key.expose())))
            }
            Some(_) => return Err(SkError::KeyLength),
            None => None,
        };
        Ok(SkCipher {
            encr,
            integ,
            cipher,
        })
    }

    /// The IV length [`SkCipher::seal`] expects.
    pub fn iv_len(&self) -> usize {
        self.encr.iv_len()
    }

    fn icv_len(&self) -> usize {
        self.integ.as_ref().map_or(16, |(i, _)| i.icv_len())
    }

    fn block(&self) -> usize {
        if self.encr.is_aead() { 1 } else { 16 }
    }

    /// The most plaintext that fits when IV, padded ciphertext and ICV may take `room`
    /// octets (for sizing IKE fragments); 0 when nothing fits.
    pub fn max_plaintext(&self, room: usize) -> usize {
        let Some(body) = room.checked_sub(self.iv_len() + self.icv_len()) else {
            return 0;
        };
        let body = body - body % self.block();
        body.saturating_sub(1)
    }

    /// Appends an SK payload holding `plaintext` (an encoded payload chain whose first type is
    /// `first_inner`) to `message` and returns the protected datagram.
    ///
    /// `iv`: for AES-CBC 16 random bytes; for AES-GCM 8 bytes that never repeat under this key
    /// (a per-key counter).
    pub fn seal(
        &self,
        iv: &[u8],
        message: Message,
        first_inner: PayloadType,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SkError> {
        self.seal_payload(iv, message, first_inner, None, plaintext)
    }

    /// Appends an Encrypted Fragment payload (fragment `number` of `total`, holding
    /// `plaintext`, one piece of an encoded payload chain) to `message` and returns the
    /// protected datagram ([RFC 7383 § 2.5](https://www.rfc-editor.org/rfc/rfc7383#section-2.5)).
    /// `first_inner` is the chain's first payload type in fragment 1 and
    /// [`PayloadType::NO_NEXT_PAYLOAD`] in the others. `iv` as for [`SkCipher::seal`].
    pub fn seal_fragment(
        &self,
        iv: &[u8],
        message: Message,
        first_inner: PayloadType,
        (number, total): (u16, u16),
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SkError> {
        self.seal_payload(iv, message, first_inner, Some((number, total)), plaintext)
    }

    fn seal_payload(
        &self,
        iv: &[u8],
        mut message: Message,
        first_inner: PayloadType,
        fragment: Option<(u16, u16)>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SkError> {
        if iv.len() != self.iv_len() {
            return Err(SkError::IvLength);
        }
        let b = self.block();
        let pad = (b - (plaintext.len() + 1) % b) % b;
        let body_len = plaintext.len() + pad + 1;
        let data_len = iv.len() + body_len + self.icv_len();
        message.payloads.push(match fragment {
            None => Payload::Encrypted(Encrypted {
                first_inner,
                data: vec![0; data_len],
            }),
            Some((number, total)) => Payload::EncryptedFragment(EncryptedFragment {
                first_inner,
                number,
                total,
                data: vec![0; data_len],
            }),
        });
        let mut out = message.encode().map_err(SkError::Encode)?;
        let start = out.len() - data_len;
        let (aad, data) = out.split_at_mut(start);
        data[..iv.len()].copy_from_slice(iv);
        let (ivd, rest) = data.split_at_mut(iv.len());
        let (body, icv) = rest.split_at_mut(body_len);
        body[..plaintext.len()].copy_from_slice(plaintext);
        body[body_len - 1] = pad as u8;
        match &self.cipher {
            Cipher::Gcm(key, salt) => {
                let tag = key
                    .seal_in_place_separate_tag(gcm_nonce(salt, ivd), aead::Aad::from(&*aad), body)
                    .map_err(|_| SkError::Length)?;
                icv.copy_from_slice(tag.as_ref());
            }
            Cipher::Cbc128(c) => cbc_encrypt(&**c, ivd, body),
            Cipher::Cbc256(c) => cbc_encrypt(&**c, ivd, body),
        }
        if let Some((_, key)) = &self.integ {
            let end = out.len() - self.icv_len();
            let tag = hmac::sign(key, &out[..end]);
            let n = self.icv_len();
            out[end..].copy_from_slice(&tag.as_ref()[..n]);
        }
        Ok(out)
    }

    /// Checks and decrypts the SK (or SKF) payload of `datagram`.
    ///
    /// Returns the decoded message (its last payload still the [`Encrypted`] or
    /// [`EncryptedFragment`] one), the first inner payload type, the fragment's number and
    /// total, and the plaintext payload chain (or piece of one) without padding; decode a
    /// whole chain with [`crate::wire::payload::decode_chain`].
    pub fn open(&self, datagram: &[u8]) -> Result<Opened, SkError> {
        let message = Message::decode(datagram).map_err(SkError::Decode)?;
        let (first_inner, data_len, fragment) = match message.payloads.last() {
            Some(Payload::Encrypted(sk)) => (sk.first_inner, sk.data.len(), None),
            Some(Payload::EncryptedFragment(skf)) => (
                skf.first_inner,
                skf.data.len(),
                Some((skf.number, skf.total)),
            ),
            _ => return Err(SkError::NoEncrypted),
        };
        let ivl = self.iv_len();
        let icvl = self.icv_len();
        if data_len < ivl + icvl + self.block() || data_len > datagram.len() {
            return Err(SkError::Length);
        }
        let start = datagram.len() - data_len;
        let (aad, data) = datagram.split_at(start);
        let (iv, rest) = data.split_at(ivl);
        let ct_len = rest.len() - icvl;
        if !ct_len.is_multiple_of(self.block()) {
            return Err(SkError::Length);
        }
        if let Some((i, key)) = &self.integ {
            let end = datagram.len() - icvl;
            let tag = hmac::sign(key, &datagram[..end]);
            constant_time::verify_slices_are_equal(&tag.as_ref()[..i.icv_len()], &datagram[end..])
                .map_err(|_| SkError::Integrity)?;
        }
        let mut buf = rest.to_vec();
        let plain_len = match &self.cipher {
            Cipher::Gcm(key, salt) => key
                .open_in_place(gcm_nonce(salt, iv), aead::Aad::from(aad), &mut buf)
                .map_err(|_| SkError::Integrity)?
                .len(),
            Cipher::Cbc128(c) => {
                cbc_decrypt(&**c, iv, &mut buf[..ct_len]);
                ct_len
            }
            Cipher::Cbc256(c) => {
                cbc_decrypt(&**c, iv, &mut buf[..ct_len]);
                ct_len
            }
        };
        buf.truncate(plain_len);
        let pad = usize::from(*buf.last().ok_or(SkError::Padding)?);
        let keep = plain_len.checked_sub(pad + 1).ok_or(SkError::Padding)?;
        buf.truncate(keep);
        Ok(Opened {
            message,
            first_inner,
            fragment,
            plaintext: buf,
        })
    }
}

/// What [`SkCipher::open`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The message as decoded, SK payload last.
    pub message: Message,
    /// The type of the first payload inside (of the whole chain in fragment 1, zero in the
    /// other fragments).
    pub first_inner: PayloadType,
    /// For an Encrypted Fragment payload: (Fragment Number, Total Fragments).
    pub fragment: Option<(u16, u16)>,
    /// The decrypted payload chain, without padding and Pad Length.
    pub plaintext: Vec<u8>,
}

fn gcm_nonce(salt: &[u8; 4], iv: &[u8]) -> aead::Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    aead::Nonce::assume_unique_for_key(n)
}

fn cbc_encrypt<C: BlockEncrypt>(c: &C, iv: &[u8], body: &mut [u8]) {
    let mut prev = [0u8; 16];
    prev.copy_from_slice(iv);
    for chunk in body.chunks_exact_mut(16) {
        for (b, p) in chunk.iter_mut().zip(prev) {
            *b ^= p;
        }
        c.encrypt_block(GenericArray::from_mut_slice(chunk));
        prev.copy_from_slice(chunk);
    }
}

fn cbc_decrypt<C: BlockDecrypt>(c: &C, iv: &[u8], body: &mut [u8]) {
    let mut prev = [0u8; 16];
    prev.copy_from_slice(iv);
    for chunk in body.chunks_exact_mut(16) {
        let mut this = [0u8; 16];
        this.copy_from_slice(chunk);
        c.decrypt_block(GenericArray::from_mut_slice(chunk));
        for (b, p) in chunk.iter_mut().zip(prev) {
            *b ^= p;
        }
        prev = this;
    }
}
