//! Counters for everything the engine receives, sends and rejects.

/// The engine's counters; every drop and every reject has its own field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Datagrams handed to the engine.
    pub datagrams_received: u64,
    /// Datagrams the engine queued for sending (first sends and retransmissions).
    pub datagrams_sent: u64,
    /// NAT keepalives received on the NAT-T port.
    pub keepalives_received: u64,
    /// NAT keepalives sent.
    pub keepalives_sent: u64,
    /// ESP packets handed to the engine on the NAT-T port (they belong to the data plane).
    pub drop_esp_on_natt_port: u64,
    /// Datagrams whose IKE header or payloads did not decode.
    pub drop_malformed: u64,
    /// Messages for an IKE SA we do not know.
    pub drop_unknown_spi: u64,
    /// Protected messages that failed the integrity check or did not decrypt.
    pub drop_integrity: u64,
    /// Requests outside the message-ID window.
    pub drop_out_of_window: u64,
    /// Responses to no outstanding request (duplicates, late retransmissions).
    pub drop_unexpected_response: u64,
    /// Messages of an exchange the IKE SA's state does not allow.
    pub drop_unexpected_exchange: u64,
    /// IKE_SA_INIT requests that were not acceptable (missing payloads, bad KE data).
    pub drop_invalid_init: u64,
    /// Half-open IKE SAs that expired.
    pub half_open_expired: u64,
    /// Retransmitted requests answered from the response cache.
    pub responses_retransmitted: u64,
    /// Our requests retransmitted.
    pub requests_retransmitted: u64,
    /// Exchanges given up after the last retransmission.
    pub exchange_timeouts: u64,
    /// COOKIE notifications sent.
    pub cookies_sent: u64,
    /// IKE_SA_INIT requests with a wrong COOKIE.
    pub cookies_invalid: u64,
    /// INVALID_KE_PAYLOAD notifications sent.
    pub invalid_ke_sent: u64,
    /// NO_PROPOSAL_CHOSEN notifications sent.
    pub no_proposal_chosen_sent: u64,
    /// AUTH payloads that did not verify, or peers whose identity matched no connection.
    pub authentication_failed: u64,
    /// TS_UNACCEPTABLE notifications sent.
    pub ts_unacceptable_sent: u64,
    /// INVALID_IKE_SPI notifications sent.
    pub invalid_ike_spi_sent: u64,
    /// INVALID_IKE_SPI notifications not sent because of the rate limit.
    pub invalid_ike_spi_rate_limited: u64,
    /// INTERNAL_ADDRESS_FAILURE notifications sent (pool exhausted or no pool).
    pub internal_address_failure_sent: u64,
    /// IKE SAs established.
    pub ike_sas_established: u64,
    /// IKE SAs deleted (any reason, after establishment).
    pub ike_sas_deleted: u64,
    /// IKE SAs held because their MOBIKE peer answered on no pair (the hold policy).
    pub ike_sas_held: u64,
    /// Held IKE SAs whose peer came back.
    pub ike_sas_resumed: u64,
    /// CHILD_SAs installed.
    pub child_sas_installed: u64,
    /// CHILD_SAs deleted.
    pub child_sas_deleted: u64,
    /// CHILD_SA rekeys that crossed the peer's rekey of the same SA
    /// ([RFC 7296 § 2.8.1](https://www.rfc-editor.org/rfc/rfc7296#section-2.8.1)).
    pub child_rekey_collisions: u64,
    /// SA events the data plane failed to apply.
    pub sa_sink_errors: u64,
    /// CHILD_SAs deleted because the data plane refused to install or move them.
    pub child_sas_refused: u64,
    /// IKE fragments sent ([RFC 7383](https://www.rfc-editor.org/rfc/rfc7383)).
    pub fragments_sent: u64,
    /// IKE fragments received that passed their integrity check.
    pub fragments_received: u64,
    /// Messages put together from fragments.
    pub messages_reassembled: u64,
    /// Fragments dropped: fragmentation not negotiated, over the count or size limits,
    /// inconsistent numbering, duplicates, or a reassembly that timed out.
    pub drop_fragment: u64,
    /// IKE SAs moved to another address pair by MOBIKE (an UPDATE_SA_ADDRESSES either way,
    /// a return routability check, an address list answered on a new pair).
    pub mobike_moves: u64,
    /// Path checks sent (initiator: one per round over the candidate pairs).
    pub mobike_path_checks: u64,
    /// Return routability checks sent (responder, before a move the policy checks).
    pub mobike_return_routability_checks: u64,
    /// Answers that did not echo our COOKIE2 (each closes its IKE SA, RFC 4555 § 3.7).
    pub mobike_cookie2_mismatch: u64,
    /// Moves refused: UNEXPECTED_NAT_DETECTED sent or received, UNACCEPTABLE_ADDRESSES
    /// received, UPDATE_SA_ADDRESSES from the responder, a check answered on another pair.
    pub mobike_updates_refused: u64,
    /// Address lists received (ADDITIONAL_* or NO_ADDITIONAL_ADDRESSES after IKE_AUTH).
    pub mobike_address_lists_received: u64,
    /// Address lists sent after IKE_AUTH.
    pub mobike_address_lists_sent: u64,
    /// MOBIKE notifications on an IKE SA without MOBIKE (ignored).
    pub mobike_ignored: u64,
}
