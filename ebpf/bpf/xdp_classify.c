// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * roamgate's XDP classifier. Each interface has a role (map ifaces; none: WAN).
 *
 * WAN: steers inbound ESP for the gateway's own addresses to the AF_XDP socket of
 * the RX queue it arrived on, and leaves everything else (IKE, NAT keepalives, ARP,
 * fragments, malformed frames) to the kernel.
 *
 *   ESP or ESP-in-UDP, local destination, known SPI -> XDP_REDIRECT to
 *                                                      xsk_map[xsk_base + rx queue]
 *                                                      (XDP_PASS if no socket is there)
 *   ESP or ESP-in-UDP, local destination, unknown SPI -> XDP_DROP
 *   ESP or ESP-in-UDP, other destination               -> XDP_PASS
 *   IPv4 with IHL below 5                               -> XDP_DROP
 *   everything else                                     -> XDP_PASS
 *
 * LAN: steers IPv4 and IPv6 packets to a protected prefix (and not to a local
 * address) to the AF_XDP socket of the RX queue; everything else goes to the kernel.
 *
 *   destination in prefixes_v4/v6, TTL > 1     -> XDP_REDIRECT (XDP_PASS if no socket)
 *   destination in prefixes_v4/v6, TTL <= 1    -> XDP_PASS (the kernel sends ICMP)
 *   everything else (ARP, ND, not protected)   -> XDP_PASS
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

/* Where the socket of this RX queue sits in xsk_map. */
static __always_inline __u32 rg_xsk_slot(struct xdp_md *ctx, __u32 xsk_base)
{
	return xsk_base + ctx->rx_queue_index;
}

/* LAN role: protected destinations go to the workers for encapsulation. */
static __always_inline int rg_lan(struct xdp_md *ctx, __u32 xsk_base)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct rg_lan_pkt pkt;

	__builtin_memset(&pkt, 0, sizeof(pkt));
	if (!rg_parse_lan(data, data_end, &pkt)) {
		rg_count(RG_CNT_LAN_PASSED);
		return XDP_PASS;
	}

	struct rg_prefix_value *prefix;

	if (pkt.dst.family == RG_FAMILY_IPV4) {
		struct rg_lpm_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, &pkt.dst.addr[12], sizeof(key.addr));
		prefix = bpf_map_lookup_elem(&prefixes_v4, &key);
	} else {
		struct rg_lpm_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, pkt.dst.addr, sizeof(key.addr));
		prefix = bpf_map_lookup_elem(&prefixes_v6, &key);
	}
	if (!prefix || bpf_map_lookup_elem(&local_addrs, &pkt.dst)) {
		rg_count(RG_CNT_LAN_PASSED);
		return XDP_PASS;
	}
	if (pkt.ttl <= 1) {
		rg_count(RG_CNT_LAN_TTL_EXPIRED);
		return XDP_PASS;
	}

	long action = bpf_redirect_map(&xsk_map, rg_xsk_slot(ctx, xsk_base), XDP_PASS);

	rg_count(action == XDP_REDIRECT ? RG_CNT_LAN_REDIRECTED : RG_CNT_LAN_NO_XSK);
	return action;
}

SEC("xdp")
int xdp_classify(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct rg_iface *iface = bpf_map_lookup_elem(&ifaces, &ifindex);
	__u32 xsk_base = iface ? iface->xsk_base : 0;
	struct rg_pkt pkt;

	if (iface && iface->role == RG_IFACE_ROLE_LAN)
		return rg_lan(ctx, xsk_base);

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
	long action = bpf_redirect_map(&xsk_map, rg_xsk_slot(ctx, xsk_base), XDP_PASS);

	rg_count(action == XDP_REDIRECT ? RG_CNT_ESP_REDIRECTED : RG_CNT_ESP_NO_XSK);
	return action;
}

/*
 * The object's licence is the sources' licence. The kernel treats it as not GPL-compatible,
 * which only matters for GPL-only helpers; the program calls none (bpf_map_lookup_elem and
 * bpf_redirect_map are not GPL-only), and the loader test fails if one is ever added.
 */
char LICENSE[] SEC("license") = "MIT OR Apache-2.0";
