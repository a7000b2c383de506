//! IKE fragmentation ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)): splitting a
//! protected message into Encrypted Fragment payloads below the fragment size
//! ([§ 2.5](https://www.rfc-editor.org/rfc/rfc7383#section-2.5)) and putting received fragments
//! together, each one authenticated before it is kept, within limits on count, size and time
//! ([§ 2.6](https://www.rfc-editor.org/rfc/rfc7383#section-2.6)).

use super::*;

/// At most this many fragments make one message (RFC 7383 § 2.6 leaves the limit to the
/// receiver; 64 fragments of 1280 octets are far more than any IKE_AUTH needs).
pub(super) const MAX_FRAGMENTS: u16 = 64;

/// A message put together from fragments is at most this large (plaintext).
pub(super) const MAX_REASSEMBLED: usize = 64 * 1024;

/// The fragments of a message that is still incomplete after this long are dropped.
pub(in crate::engine) const REASSEMBLY_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(30);

impl Core {
    /// The largest IKE message (UDP payload without the non-ESP marker) a fragment may be,
    /// when fragmentation is negotiated.
    pub(super) fn fragment_limit(&self, sa: &IkeSa) -> Option<usize> {
        if !sa.fragmentation {
            return None;
        }
        let ip = if sa.path.remote().is_ipv4() { 20 } else { 40 };
        let marker = if sa.path.local().port() == NATT_PORT {
            4
        } else {
            0
        };
        self.config.fragment_size.checked_sub(ip + 8 + marker)
    }

    /// Encrypts `payloads` into one message, or into Encrypted Fragment messages when
    /// fragmentation is negotiated and the message would exceed the fragment size
    /// ([RFC 7383 § 2.5](https://www.rfc-editor.org/rfc/rfc7383#section-2.5)).
    pub(in crate::engine) fn seal_datagrams(
        &mut self,
        sa: &mut IkeSa,
        exchange: ExchangeType,
        response: bool,
        mid: u32,
        payloads: Vec<Payload>,
    ) -> Option<Vec<Vec<u8>>> {
        // IKE header (28) and SK (4) or SKF (8) payload header.
        const SK_HEADERS: usize = 28 + 4;
        const SKF_HEADERS: usize = 28 + 8;
        let Some(limit) = self.fragment_limit(sa) else {
            return self
                .seal(sa, exchange, response, mid, payloads)
                .map(|b| vec![b]);
        };
        let (first, plain) = encode_chain_to_vec(&payloads).ok()?;
        let keys = sa.keys.as_ref()?;
        let fits = keys.out.max_plaintext(limit.saturating_sub(SK_HEADERS)) >= plain.len();
        let per = keys.out.max_plaintext(limit.saturating_sub(SKF_HEADERS));
        let total = if per == 0 {
            usize::MAX
        } else {
            plain.len().div_ceil(per)
        };
        if fits || total > usize::from(MAX_FRAGMENTS) {
            if !fits {
                tracing::warn!(
                    len = plain.len(),
                    "a message too large for {MAX_FRAGMENTS} fragments goes out whole"
                );
            }
            return self
                .seal(sa, exchange, response, mid, payloads)
                .map(|b| vec![b]);
        }
        let total = u16::try_from(total).ok()?;
        let mut out = Vec::with_capacity(usize::from(total));
        for (i, piece) in plain.chunks(per).enumerate() {
            let number = u16::try_from(i + 1).ok()?;
            let iv = next_iv(&mut *self.rng, &mut sa.iv_counter, keys.out.iv_len());
            let msg = encrypted_message_header(sa, exchange, response, mid);
            let inner = if number == 1 {
                first
            } else {
                crate::wire::PayloadType::NO_NEXT_PAYLOAD
            };
            match keys
                .out
                .seal_fragment(&iv, msg, inner, (number, total), piece)
            {
                Ok(b) => out.push(b),
                Err(e) => {
                    tracing::error!(error = %e, "cannot seal a fragment");
                    return None;
                }
            }
        }
        self.stats.fragments_sent += u64::from(total);
        Some(out)
    }

    /// Keeps one authenticated fragment; returns the whole plaintext chain when it was the
    /// last one missing.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_fragment(
        &mut self,
        now: Instant,
        sa: &mut IkeSa,
        mid: u32,
        (number, total): (u16, u16),
        first_inner: crate::wire::PayloadType,
        piece: Vec<u8>,
        datagram: &[u8],
    ) -> Option<(crate::wire::PayloadType, Vec<u8>)> {
        if !sa.cfg.fragmentation || total > MAX_FRAGMENTS || number == 0 || number > total {
            self.stats.drop_fragment += 1;
            return None;
        }
        // A fragment of another message, a larger Total Fragments (the sender re-fragmented
        // for a smaller MTU) or a stale reassembly starts over (RFC 7383 § 2.6.2).
        let restart = match &sa.reassembly {
            None => true,
            Some(r) => {
                r.message_id != mid
                    || now.saturating_duration_since(r.started) >= REASSEMBLY_TIMEOUT
                    || usize::from(total) > r.parts.len()
            }
        };
        if restart {
            if sa.reassembly.is_some() {
                self.stats.drop_fragment += 1;
            }
            sa.reassembly = Some(crate::engine::ike_sa::Reassembly {
                message_id: mid,
                started: now,
                first_inner: crate::wire::PayloadType::NO_NEXT_PAYLOAD,
                parts: vec![None; usize::from(total)],
                datagrams: vec![None; usize::from(total)],
                len: 0,
            });
        }
        let r = sa.reassembly.as_mut()?;
        let slot = usize::from(number) - 1;
        if usize::from(total) < r.parts.len() || r.parts[slot].is_some() {
            // Left over from an older fragmentation, or a duplicate.
            self.stats.drop_fragment += 1;
            return None;
        }
        if r.len + piece.len() > MAX_REASSEMBLED {
            self.stats.drop_fragment += 1;
            sa.reassembly = None;
            return None;
        }
        if number == 1 {
            r.first_inner = first_inner;
        }
        r.len += piece.len();
        r.parts[slot] = Some(piece);
        r.datagrams[slot] = Some(datagram.to_vec());
        if r.parts.iter().any(Option::is_none) {
            return None;
        }
        let r = sa.reassembly.take()?;
        let mut plain = Vec::with_capacity(r.len);
        for p in r.parts.into_iter().flatten() {
            plain.extend_from_slice(&p);
        }
        sa.reassembled_from = r.datagrams.into_iter().flatten().collect();
        self.stats.messages_reassembled += 1;
        Some((r.first_inner, plain))
    }
}
