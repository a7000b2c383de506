//! INFORMATIONAL requests from the peer ([RFC 7296 § 1.4](https://www.rfc-editor.org/rfc/rfc7296#section-1.4)):
//! Delete of CHILD_SAs and of the IKE SA, liveness checks, and MOBIKE's requests (its
//! address lists, UPDATE_SA_ADDRESSES, path checks; see `mobike`).

use super::*;

impl Core {
    pub(in crate::engine) fn informational_request(
        &mut self,
        _now: Instant,
        sa: &mut IkeSa,
        rx: &Received<'_>,
        payloads: &[Payload],
    ) -> bool {
        let mut delete_ike = false;
        let mut deleted_spis = Vec::new();
        for p in payloads {
            match p {
                Payload::Delete(d) if d.protocol == ProtocolId::IKE => delete_ike = true,
                Payload::Delete(d) if d.protocol == ProtocolId::ESP => {
                    for spi in &d.spis {
                        if let Some(i) = sa.children.iter().position(|c| c.outbound_spi == *spi) {
                            let c = sa.children.remove(i);
                            deleted_spis.push(c.inbound_spi);
                            let reason = if c.rekeyed {
                                DeleteReason::Rekeyed
                            } else {
                                DeleteReason::Peer
                            };
                            self.remove_child_events(sa.handle, &c, reason);
                        }
                    }
                }
                Payload::Notify(n) if n.ty == NotifyType::AUTHENTICATION_FAILED => {
                    delete_ike = true
                }
                _ => {}
            }
        }
        if delete_ike {
            self.respond(sa, rx, Vec::new());
            self.deleted(sa, DeleteReason::Peer);
            return false;
        }
        let mut out = Vec::new();
        if !deleted_spis.is_empty() {
            out.push(Payload::Delete(Delete::esp(&deleted_spis)));
        }
        out.extend(self.mobike_request(sa, rx, payloads));
        self.respond(sa, rx, out);
        true
    }
}
