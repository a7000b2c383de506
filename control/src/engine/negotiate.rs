//! Proposal selection ([RFC 7296 § 2.7](https://www.rfc-editor.org/rfc/rfc7296#section-2.7))
//! and traffic selector narrowing ([§ 2.9](https://www.rfc-editor.org/rfc/rfc7296#section-2.9)).
//!
//! Selection follows strongSwan's default: the responder walks its own proposals in order, and
//! for each the peer's proposals in order; within a proposal it takes the first of its own
//! algorithms of each transform type that the peer also offers.

use crate::crypto::prf::Prf;
use crate::crypto::proposal::{ProposalSpec, Protocol};
use crate::crypto::sk::{Encr, Integ};
use crate::wire::payload::{AddressRange, Proposal, TrafficSelector, Transform};
use crate::wire::{DhGroup, EncrId, EsnId, IntegId, ProtocolId, TransformType};

/// The algorithms of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeAlgorithms {
    /// Encryption.
    pub encr: Encr,
    /// Integrity (`None` with an AEAD).
    pub integ: Option<Integ>,
    /// PRF.
    pub prf: Prf,
    /// Key exchange group.
    pub dh: DhGroup,
}

/// The algorithms of an ESP CHILD_SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspAlgorithms {
    /// Encryption.
    pub encr: Encr,
    /// Integrity (`None` with an AEAD).
    pub integ: Option<Integ>,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Key exchange group for PFS, `None` without.
    pub dh: Option<DhGroup>,
}

/// The encryption algorithm a transform names, if we implement it.
pub fn encr_of(t: &Transform) -> Option<Encr> {
    let id = t.as_encr()?;
    let bits = t.key_length()?;
    match (id, bits) {
        (EncrId::AES_CBC, 128) => Some(Encr::AesCbc(16)),
        (EncrId::AES_CBC, 256) => Some(Encr::AesCbc(32)),
        (EncrId::AES_GCM_16, 128) => Some(Encr::AesGcm16(16)),
        (EncrId::AES_GCM_16, 256) => Some(Encr::AesGcm16(32)),
        _ => None,
    }
}

/// The integrity algorithm an ID names, if we implement it.
pub fn integ_of(id: IntegId) -> Option<Integ> {
    match id {
        IntegId::HMAC_SHA2_256_128 => Some(Integ::HmacSha256_128),
        IntegId::HMAC_SHA2_384_192 => Some(Integ::HmacSha384_192),
        IntegId::HMAC_SHA2_512_256 => Some(Integ::HmacSha512_256),
        _ => None,
    }
}

struct Offered {
    encr: Vec<Encr>,
    integ: Vec<Integ>,
    /// Whether an integrity transform other than NONE was offered (even one we lack).
    any_integ: bool,
    prf: Vec<Prf>,
    dh: Vec<DhGroup>,
    esn: Vec<EsnId>,
}

fn offered(p: &Proposal) -> Offered {
    let mut o = Offered {
        encr: Vec::new(),
        integ: Vec::new(),
        any_integ: false,
        prf: Vec::new(),
        dh: Vec::new(),
        esn: Vec::new(),
    };
    for t in &p.transforms {
        match t.ty {
            TransformType::ENCR => o.encr.extend(encr_of(t)),
            TransformType::INTEG => {
                if t.id != IntegId::NONE.0 {
                    o.any_integ = true;
                }
                o.integ.extend(integ_of(IntegId(t.id)));
            }
            TransformType::PRF => o.prf.extend(t.as_prf().and_then(Prf::from_id)),
            TransformType::DH => o.dh.push(DhGroup(t.id)),
            TransformType::ESN => o.esn.push(EsnId(t.id)),
            _ => {}
        }
    }
    o
}

fn first_common<T: PartialEq + Copy>(ours: &[T], theirs: &[T]) -> Option<T> {
    ours.iter().find(|x| theirs.contains(x)).copied()
}

fn pick_integ(encr: Encr, spec: &ProposalSpec, o: &Offered) -> Option<Option<Integ>> {
    if encr.is_aead() {
        // An AEAD proposal carries no integrity transform (or only NONE).
        (!o.any_integ).then_some(None)
    } else {
        first_common(&spec.integ, &o.integ).map(Some)
    }
}

/// Selects IKE algorithms from the peer's proposals. `ke_group` is the group of the peer's KE
/// payload: when the chosen proposal allows it on both sides it is preferred, which saves an
/// INVALID_KE_PAYLOAD round trip. Returns the peer's proposal number with the algorithms.
pub fn select_ike(
    ours: &[ProposalSpec],
    theirs: &[Proposal],
    ke_group: Option<DhGroup>,
) -> Option<(u8, IkeAlgorithms)> {
    for spec in ours.iter().filter(|s| s.protocol == Protocol::Ike) {
        for p in theirs.iter().filter(|p| p.protocol == ProtocolId::IKE) {
            let o = offered(p);
            let Some(encr) = first_common(&spec.encr, &o.encr) else {
                continue;
            };
            let Some(integ) = pick_integ(encr, spec, &o) else {
                continue;
            };
            let Some(prf) = first_common(&spec.prf, &o.prf) else {
                continue;
            };
            let supported: Vec<DhGroup> = spec
                .dh
                .iter()
                .copied()
                .filter(|g| crate::crypto::dh::is_supported(*g))
                .collect();
            let dh = match ke_group {
                Some(g) if supported.contains(&g) && o.dh.contains(&g) => g,
                _ => match first_common(&supported, &o.dh) {
                    Some(g) => g,
                    None => continue,
                },
            };
            return Some((
                p.number,
                IkeAlgorithms {
                    encr,
                    integ,
                    prf,
                    dh,
                },
            ));
        }
    }
    None
}

/// Selects ESP algorithms. With `pfs` false the DH transforms are ignored (IKE_AUTH, where
/// "the DH transform is not used"); with it true the groups must match as well.
/// Returns the peer's proposal (its number and SPI) with the algorithms.
pub fn select_esp(
    ours: &[ProposalSpec],
    theirs: &[Proposal],
    pfs: bool,
) -> Option<(u8, u32, EspAlgorithms)> {
    for spec in ours.iter().filter(|s| s.protocol == Protocol::Esp) {
        for p in theirs.iter().filter(|p| p.protocol == ProtocolId::ESP) {
            let Ok(spi) = <[u8; 4]>::try_from(&p.spi[..]) else {
                continue;
            };
            let o = offered(p);
            let Some(encr) = first_common(&spec.encr, &o.encr) else {
                continue;
            };
            let Some(integ) = pick_integ(encr, spec, &o) else {
                continue;
            };
            let their_esn = if o.esn.is_empty() {
                vec![EsnId::NO_ESN]
            } else {
                o.esn.clone()
            };
            let Some(esn) = first_common(&spec.esn, &their_esn) else {
                continue;
            };
            let dh = if pfs && !spec.dh.is_empty() {
                match first_common(&spec.dh, &o.dh) {
                    Some(g) => Some(g),
                    None => continue,
                }
            } else {
                None
            };
            return Some((
                p.number,
                u32::from_be_bytes(spi),
                EspAlgorithms {
                    encr,
                    integ,
                    esn: esn == EsnId::ESN,
                    dh,
                },
            ));
        }
    }
    None
}

/// The single-proposal answer for selected IKE algorithms.
pub fn ike_answer(number: u8, alg: &IkeAlgorithms, spi: Vec<u8>) -> Proposal {
    ProposalSpec {
        protocol: Protocol::Ike,
        encr: vec![alg.encr],
        integ: alg.integ.into_iter().collect(),
        prf: vec![alg.prf],
        dh: vec![alg.dh],
        esn: Vec::new(),
    }
    .to_wire(number, spi)
}

/// The single-proposal answer for selected ESP algorithms.
pub fn esp_answer(number: u8, alg: &EspAlgorithms, spi: u32) -> Proposal {
    ProposalSpec {
        protocol: Protocol::Esp,
        encr: vec![alg.encr],
        integ: alg.integ.into_iter().collect(),
        prf: Vec::new(),
        dh: alg.dh.into_iter().collect(),
        esn: vec![if alg.esn { EsnId::ESN } else { EsnId::NO_ESN }],
    }
    .to_wire(number, spi.to_be_bytes().to_vec())
}

/// Our proposals on the wire, numbered from 1, each with `spi`; without DH transforms when
/// `with_dh` is false (ESP in IKE_AUTH).
pub fn offer(specs: &[ProposalSpec], spi: &[u8], with_dh: bool) -> Vec<Proposal> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut s = s.clone();
            if !with_dh {
                s.dh.clear();
            }
            s.to_wire(u8::try_from(i + 1).unwrap_or(u8::MAX), spi.to_vec())
        })
        .collect()
}

/// Checks the responder's answer against what we offered: it must be exactly one proposal,
/// with one transform of each type, acceptable under one of our proposals.
pub fn check_ike_answer(ours: &[ProposalSpec], answer: &[Proposal]) -> Option<IkeAlgorithms> {
    let [p] = answer else { return None };
    let (_, alg) = select_ike(ours, std::slice::from_ref(p), None)?;
    single_of_each(p).then_some(alg)
}

/// Like [`check_ike_answer`] for ESP; returns the responder's SPI too.
pub fn check_esp_answer(
    ours: &[ProposalSpec],
    answer: &[Proposal],
    pfs: bool,
) -> Option<(u32, EspAlgorithms)> {
    let [p] = answer else { return None };
    let (_, spi, alg) = select_esp(ours, std::slice::from_ref(p), pfs)?;
    single_of_each(p).then_some((spi, alg))
}

fn single_of_each(p: &Proposal) -> bool {
    let mut seen = Vec::new();
    p.transforms.iter().all(|t| {
        let fresh = !seen.contains(&t.ty);
        seen.push(t.ty);
        fresh
    })
}

fn range_intersect<A: Ord + Copy>(
    a: &AddressRange<A>,
    b: &AddressRange<A>,
) -> Option<AddressRange<A>> {
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    let start = a.start.max(b.start);
    let end = a.end.min(b.end);
    (start_port <= end_port && start <= end).then_some(AddressRange {
        ip_protocol,
        start_port,
        end_port,
        start,
        end,
    })
}

/// The intersection of two selectors of the same family, if not empty.
pub fn ts_intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    match (a, b) {
        (TrafficSelector::Ipv4(a), TrafficSelector::Ipv4(b)) => {
            range_intersect(a, b).map(TrafficSelector::Ipv4)
        }
        (TrafficSelector::Ipv6(a), TrafficSelector::Ipv6(b)) => {
            range_intersect(a, b).map(TrafficSelector::Ipv6)
        }
        _ => None,
    }
}

/// Narrows the peer's proposed selectors to what `ours` allows
/// ([RFC 7296 § 2.9](https://www.rfc-editor.org/rfc/rfc7296#section-2.9)): every non-empty
/// intersection, in the peer's order, without duplicates. Empty means TS_UNACCEPTABLE.
pub fn narrow(theirs: &[TrafficSelector], ours: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for t in theirs {
        for o in ours {
            if let Some(i) = ts_intersect(t, o)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }
    out
}

/// Whether every selector of `narrowed` lies within one of `proposed` (the initiator's check
/// of the responder's answer).
pub fn is_subset(narrowed: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !narrowed.is_empty()
        && narrowed.iter().all(|n| {
            proposed
                .iter()
                .any(|p| ts_intersect(n, p).as_ref() == Some(n))
        })
}
