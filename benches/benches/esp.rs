//! ESP transforms against the raw cipher, and the AES-GCM candidates against each other.
//!
//! - `esp-aes{128,256}`: `encap` / `decap` of an inner IPv4/UDP packet of 64, 512 and 1400 bytes
//!   (tunnel mode, IPv4 outer, no UDP encapsulation, ESN), and in the same run `seal` / `open`
//!   of the same number of bytes with the library the hot path uses (ring): the anchor. `seal-ct`
//!   / `open-ct` do the same for the length ESP actually encrypts (inner packet, padding to the
//!   16-byte block, trailer).
//! - `aead-{ring,aws-lc-rs,rustcrypto}-aes{128,256}`: `seal` / `open` in place of 64, 512 and
//!   1400 bytes, to choose the library.
//!
//! `encap` and `seal` run on one hot buffer (restoring the 20-byte inner header before each
//! call: both loops do it). `decap` and `open` need a fresh authenticated packet per call (the
//! replay window refuses a repeat), so both take theirs from criterion's `iter_batched`, which
//! prepares inputs outside the timed loop. One core, no threads.
//!
//! At the end the run prints medians (ns per packet) and the ratios ESP / raw cipher
//! (throughput), also written to `target/bench-results/esp.md`.
//! Run: `cargo bench -p roamgate-benches --bench esp`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use roamgate_benches::write_results;
use roamgate_gateway::esp::{
    HEADROOM, InboundSa, Lifetime, Mode, OutboundSa, OuterPolicy, SaConfig, SaPath, TAILROOM,
    decapsulate,
};
use roamgate_gateway::wire::checksum;

const SIZES: [usize; 3] = [64, 512, 1400];
const SPI: u32 = 0x1000_0001;

/// The ESP ciphertext length for an inner packet of `size` bytes: padded with the trailer to
/// a multiple of 16 ([`roamgate_gateway::esp::Padding::CipherBlock`], the default).
fn ct_len(size: usize) -> usize {
    (size + 2).div_ceil(16) * 16
}

fn keymat(len: usize) -> Vec<u8> {
    (0..len as u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect()
}

/// An IPv4/UDP packet of `size` bytes.
fn inner_packet(size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 200, 0, 1]);
    p[16..20].copy_from_slice(&[10, 101, 0, 2]);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&9000u16.to_be_bytes());
    p[24..26].copy_from_slice(&((size - 20) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

fn config(keymat: &[u8]) -> SaConfig<'_> {
    SaConfig {
        spi: SPI,
        keymat,
        mode: Mode::Tunnel,
        esn: true,
        lifetime: Lifetime::UNLIMITED,
    }
}

fn path() -> SaPath {
    SaPath::new(
        "198.18.1.1".parse().unwrap(),
        "198.18.1.2".parse().unwrap(),
        None,
    )
    .unwrap()
}

fn ring_key(keymat: &[u8]) -> ring::aead::LessSafeKey {
    let alg = if keymat.len() == 20 {
        &ring::aead::AES_128_GCM
    } else {
        &ring::aead::AES_256_GCM
    };
    ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(alg, &keymat[..keymat.len() - 4]).unwrap(),
    )
}

fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&[1, 2, 3, 4]);
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

fn bench_esp(c: &mut Criterion) {
    for bits in [128usize, 256] {
        let km = keymat(bits / 8 + 4);
        let mut g = c.benchmark_group(format!("esp-aes{bits}"));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let inner = inner_packet(size);
            let header: [u8; 20] = inner[..20].try_into().unwrap();

            // encap: one hot frame, the inner header restored before each call.
            let out = OutboundSa::new(&config(&km), OuterPolicy::default()).unwrap();
            let p = path();
            let start = HEADROOM;
            let mut frame = vec![0u8; HEADROOM + size + TAILROOM];
            frame[start..start + size].copy_from_slice(&inner);
            g.bench_function(BenchmarkId::new("encap", size), |b| {
                b.iter(|| {
                    frame[start..start + 20].copy_from_slice(&header);
                    black_box(out.encapsulate(&p, black_box(&mut frame), start, size)).unwrap()
                })
            });

            // seal: the same bytes, the same header restore; then the ESP ciphertext's length
            // (inner packet, padding to 16 bytes, trailer) as a second anchor.
            let key = ring_key(&km);
            for (name, len) in [("seal", size), ("seal-ct", ct_len(size))] {
                let mut buf = inner.clone();
                buf.resize(len, 0);
                let mut seq = 0u64;
                g.bench_function(BenchmarkId::new(name, size), |b| {
                    b.iter(|| {
                        seq += 1;
                        buf[..20].copy_from_slice(&header);
                        let aad = [0u8; 12];
                        black_box(
                            key.seal_in_place_separate_tag(
                                ring::aead::Nonce::assume_unique_for_key(nonce(seq)),
                                ring::aead::Aad::from(&aad[..]),
                                black_box(&mut buf[..]),
                            )
                            .unwrap(),
                        )
                    })
                });
            }

            // decap: fresh packets from an outbound SA with the same key.
            let out = OutboundSa::new(&config(&km), OuterPolicy::default()).unwrap();
            let inb = InboundSa::new(&config(&km)).unwrap();
            g.bench_function(BenchmarkId::new("decap", size), |b| {
                b.iter_batched(
                    || {
                        let mut f = vec![0u8; HEADROOM + size + TAILROOM];
                        f[HEADROOM..HEADROOM + size].copy_from_slice(&inner);
                        let e = out.encapsulate(&p, &mut f, HEADROOM, size).unwrap();
                        (f, e.start, e.len)
                    },
                    |(mut f, s, l)| {
                        let r = decapsulate(black_box(&mut f), s, l, |_| Some(&inb));
                        assert!(r.is_ok());
                        f
                    },
                    BatchSize::SmallInput,
                )
            });

            // open: fresh sealed buffers of the same size, and of the ciphertext's length.
            for (name, len) in [("open", size), ("open-ct", ct_len(size))] {
                let mut seq = 0u64;
                let mut plain = inner.clone();
                plain.resize(len, 0);
                g.bench_function(BenchmarkId::new(name, size), |b| {
                    b.iter_batched(
                        || {
                            seq += 1;
                            let mut v = plain.clone();
                            let tag = key
                                .seal_in_place_separate_tag(
                                    ring::aead::Nonce::assume_unique_for_key(nonce(seq)),
                                    ring::aead::Aad::from(&[0u8; 12][..]),
                                    &mut v,
                                )
                                .unwrap();
                            v.extend_from_slice(tag.as_ref());
                            (v, seq)
                        },
                        |(mut v, s)| {
                            let n = key
                                .open_in_place(
                                    ring::aead::Nonce::assume_unique_for_key(nonce(s)),
                                    ring::aead::Aad::from(&[0u8; 12][..]),
                                    black_box(&mut v[..]),
                                )
                                .unwrap()
                                .len();
                            assert_eq!(n, len);
                            v
                        },
                        BatchSize::SmallInput,
                    )
                });
            }
        }
        g.finish();
    }
}

/// One AES-GCM candidate: seal in place, open in place.
trait Candidate {
    const NAME: &'static str;
    fn new(key: &[u8]) -> Self;
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16];
    /// Opens ciphertext ‖ tag in place.
    fn open(&self, nonce: [u8; 12], buf: &mut [u8]) -> bool;
}

struct Ring(ring::aead::LessSafeKey);
impl Candidate for Ring {
    const NAME: &'static str = "ring";
    fn new(key: &[u8]) -> Self {
        let alg = if key.len() == 16 {
            &ring::aead::AES_128_GCM
        } else {
            &ring::aead::AES_256_GCM
        };
        Ring(ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(alg, key).unwrap(),
        ))
    }
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16] {
        let t = self
            .0
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(&[0u8; 8][..]),
                buf,
            )
            .unwrap();
        t.as_ref().try_into().unwrap()
    }
    fn open(&self, nonce: [u8; 12], buf: &mut [u8]) -> bool {
        self.0
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(&[0u8; 8][..]),
                buf,
            )
            .is_ok()
    }
}

struct AwsLc(aws_lc_rs::aead::LessSafeKey);
impl Candidate for AwsLc {
    const NAME: &'static str = "aws-lc-rs";
    fn new(key: &[u8]) -> Self {
        use aws_lc_rs::aead as a;
        let alg = if key.len() == 16 {
            &a::AES_128_GCM
        } else {
            &a::AES_256_GCM
        };
        AwsLc(a::LessSafeKey::new(a::UnboundKey::new(alg, key).unwrap()))
    }
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16] {
        use aws_lc_rs::aead as a;
        let t = self
            .0
            .seal_in_place_separate_tag(
                a::Nonce::assume_unique_for_key(nonce),
                a::Aad::from(&[0u8; 8][..]),
                buf,
            )
            .unwrap();
        t.as_ref().try_into().unwrap()
    }
    fn open(&self, nonce: [u8; 12], buf: &mut [u8]) -> bool {
        use aws_lc_rs::aead as a;
        self.0
            .open_in_place(
                a::Nonce::assume_unique_for_key(nonce),
                a::Aad::from(&[0u8; 8][..]),
                buf,
            )
            .is_ok()
    }
}

enum RustCrypto {
    A128(Box<aes_gcm::Aes128Gcm>),
    A256(Box<aes_gcm::Aes256Gcm>),
}
impl Candidate for RustCrypto {
    const NAME: &'static str = "rustcrypto";
    fn new(key: &[u8]) -> Self {
        if key.len() == 16 {
            RustCrypto::A128(Box::new(aes_gcm::Aes128Gcm::new_from_slice(key).unwrap()))
        } else {
            RustCrypto::A256(Box::new(aes_gcm::Aes256Gcm::new_from_slice(key).unwrap()))
        }
    }
    fn seal(&self, nonce: [u8; 12], buf: &mut [u8]) -> [u8; 16] {
        let t = match self {
            RustCrypto::A128(k) => k.encrypt_in_place_detached((&nonce).into(), &[0u8; 8], buf),
            RustCrypto::A256(k) => k.encrypt_in_place_detached((&nonce).into(), &[0u8; 8], buf),
        }
        .unwrap();
        t.into()
    }
    fn open(&self, nonce: [u8; 12], buf: &mut [u8]) -> bool {
        let Some(split) = buf.len().checked_sub(16) else {
            return false;
        };
        let (buf, tag) = buf.split_at_mut(split);
        let tag: [u8; 16] = (&*tag).try_into().unwrap_or([0; 16]);
        match self {
            RustCrypto::A128(k) => {
                k.decrypt_in_place_detached((&nonce).into(), &[0u8; 8], buf, (&tag).into())
            }
            RustCrypto::A256(k) => {
                k.decrypt_in_place_detached((&nonce).into(), &[0u8; 8], buf, (&tag).into())
            }
        }
        .is_ok()
    }
}

fn bench_candidate<C: Candidate>(c: &mut Criterion) {
    for bits in [128usize, 256] {
        let key = C::new(&keymat(bits / 8)[..]);
        let mut g = c.benchmark_group(format!("aead-{}-aes{bits}", C::NAME));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let mut buf = vec![0x5au8; size];
            let mut seq = 0u64;
            g.bench_function(BenchmarkId::new("seal", size), |b| {
                b.iter(|| {
                    seq += 1;
                    black_box(key.seal(nonce(seq), black_box(&mut buf[..])))
                })
            });
            let mut seq = 0u64;
            g.bench_function(BenchmarkId::new("open", size), |b| {
                b.iter_batched(
                    || {
                        seq += 1;
                        let mut v = vec![0x5au8; size];
                        let tag = key.seal(nonce(seq), &mut v);
                        v.extend_from_slice(&tag);
                        (v, seq)
                    },
                    |(mut v, s)| {
                        assert!(key.open(nonce(s), black_box(&mut v[..])));
                        v
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

/// The median (ns) criterion recorded for `group/function/size`.
fn median_ns(dir: &Path, group: &str, function: &str, size: usize) -> Option<f64> {
    let file = dir
        .join(group)
        .join(function)
        .join(size.to_string())
        .join("new/estimates.json");
    let text = std::fs::read_to_string(file).ok()?;
    let at = text.find("\"median\"")?;
    let rest = &text[at..];
    let p = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[p..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    num.parse().ok()
}

fn criterion_dir() -> PathBuf {
    // The bench binary is <target>/release/deps/esp-<hash>.
    std::env::current_exe()
        .ok()
        .and_then(|e| e.ancestors().nth(3).map(|t| t.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

fn gbps(size: usize, ns: f64) -> f64 {
    size as f64 / ns
}

fn summary(dir: &Path) -> String {
    let mut out = String::from(
        "| key | size | encap ns | seal ns | ESP/raw | seal-ct ns | decap ns | open ns | ESP/raw | open-ct ns |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for bits in [128, 256] {
        let g = format!("esp-aes{bits}");
        for size in SIZES {
            let m = |f| median_ns(dir, &g, f, size).unwrap_or(f64::NAN);
            let (e, s, sc) = (m("encap"), m("seal"), m("seal-ct"));
            let (d, o, oc) = (m("decap"), m("open"), m("open-ct"));
            out += &format!(
                "| AES-{bits} | {size} B | {e:.1} | {s:.1} | {:.0} % | {sc:.1} | {d:.1} | {o:.1} | {:.0} % | {oc:.1} |\n",
                100.0 * s / e,
                100.0 * o / d
            );
        }
    }
    out += "\n| library | key | size | seal ns (GB/s) | open ns (GB/s) |\n|---|---|---|---|---|\n";
    for lib in ["ring", "aws-lc-rs", "rustcrypto"] {
        for bits in [128, 256] {
            let g = format!("aead-{lib}-aes{bits}");
            for size in SIZES {
                let s = median_ns(dir, &g, "seal", size);
                let o = median_ns(dir, &g, "open", size);
                if s.is_none() && o.is_none() {
                    continue;
                }
                let (s, o) = (s.unwrap_or(f64::NAN), o.unwrap_or(f64::NAN));
                out += &format!(
                    "| {lib} | AES-{bits} | {size} B | {s:.1} ({:.2}) | {o:.1} ({:.2}) |\n",
                    gbps(size, s),
                    gbps(size, o)
                );
            }
        }
    }
    out
}

fn main() {
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
        .output_directory(&dir)
        .configure_from_args();
    bench_esp(&mut c);
    bench_candidate::<Ring>(&mut c);
    bench_candidate::<AwsLc>(&mut c);
    bench_candidate::<RustCrypto>(&mut c);
    c.final_summary();
    let table = summary(&dir);
    println!(
        "\nESP vs raw cipher (ring), medians, one core; ESP/raw = raw ns / ESP ns (throughput ratio), raw = seal/open of the inner packet's size; -ct = of the ESP ciphertext's length:\n\n{table}"
    );
    if let Ok(path) = write_results("esp.md", &table) {
        println!("written to {}", path.display());
    }
}
