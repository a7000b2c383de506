// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * roamgate's XDP classifier: steers inbound ESP for the gateway's own addresses
 * to the AF_XDP socket of the RX queue it arrived on, and leaves everything else
 * (IKE, NAT keepalives, ARP, fragments, malformed frames) to the kernel.
 *
 *   ESP or ESP-in-UDP, local destination, known SPI -> XDP_REDIRECT to xsk_map[rx queue]
 *                                                      (XDP_PASS if no socket is there)
 *   ESP or ESP-in-UDP, local destination, unknown SPI -> XDP_DROP
 *   ESP or ESP-in-UDP, other destination               -> XDP_PASS
 *   IPv4 with IHL below 5                               -> XDP_DROP
 *   everything else                                     -> XDP_PASS
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "roamgate_abi.h"
#include "maps.h"
#include "parse.h"

static __always_inline void rg_count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &index);

	/* Per-CPU slot: no other CPU writes it, so no atomic add is needed. */
	if (value)
		*value += 1;
}

SEC("xdp")
int xdp_classify(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct rg_pkt pkt;

	__builtin_memset(&pkt, 0, sizeof(pkt));
	pkt.detail = RG_CNT_NONE;

	__u32 class = rg_parse_frame(data, data_end, &pkt);

	rg_count(class);
	if (pkt.detail != RG_CNT_NONE)
		rg_count(pkt.detail);

	if (pkt.detail == RG_CNT_IPV4_BAD_IHL)
		return XDP_DROP;
	if (class != RG_CNT_ESP && class != RG_CNT_ESP_IN_UDP)
		return XDP_PASS;

	if (!bpf_map_lookup_elem(&local_addrs, &pkt.dst)) {
		rg_count(RG_CNT_ESP_NOT_LOCAL);
		return XDP_PASS;
	}

	struct rg_spi_key key = { .spi = pkt.spi };

	if (!bpf_map_lookup_elem(&spi_index, &key)) {
		rg_count(RG_CNT_ESP_UNKNOWN_SPI);
		return XDP_DROP;
	}

	/* With no socket in the queue's slot the helper returns the fallback, XDP_PASS. */
	long action = bpf_redirect_map(&xsk_map, ctx->rx_queue_index, XDP_PASS);

	rg_count(action == XDP_REDIRECT ? RG_CNT_ESP_REDIRECTED : RG_CNT_ESP_NO_XSK);
	return action;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
