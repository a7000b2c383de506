/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Header parsing for the XDP classifier. Every helper is __always_inline and
 * checks bounds with the `ptr + 1 > data_end` idiom before reading. Lengths
 * come from the headers (IPv4 total length, IPv6 payload length, UDP length),
 * never from the frame size, because short frames carry Ethernet padding; a
 * frame shorter than its headers claim is truncated and counted as malformed.
 */
#ifndef ROAMGATE_PARSE_H
#define ROAMGATE_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

#include "roamgate_abi.h"

/* IPv4 frag_off bits (RFC 791 § 3.1): "More Fragments" and the offset. */
#define RG_IP_MF 0x2000
#define RG_IP_OFFSET 0x1fff
/* IPv6 fragment header (RFC 8200 § 4.5): offset (13 bits) and the M flag. */
#define RG_IP6_FRAG_OFFSET 0xfff8
#define RG_IP6_FRAG_MORE 0x0001

/* No detail counter. */
#define RG_CNT_NONE 0xffffffff

/* An 802.1Q / 802.1ad tag, after the outer ethertype. */
struct rg_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* The ESP header fields we read (RFC 4303 § 2). */
struct rg_esp_hdr {
	__be32 spi;
	__be32 seq;
};

/* Hop-by-hop, routing and destination options share this prefix (RFC 8200 § 4). */
struct rg_ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-octet units, not counting the first 8 octets */
};

/* RFC 8200 § 4.5. */
struct rg_ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* What the parser found out about a frame. */
struct rg_pkt {
	__u32 detail;           /* RG_CNT_* detail counter, or RG_CNT_NONE */
	__be32 spi;             /* ESP classes only */
	struct rg_addr_key dst; /* ESP classes only */
};

/*
 * Classifies the transport payload: `l4` points at it, `l4_len` is its length
 * according to the IP header (already checked to lie within the frame).
 */
static __always_inline __u32 rg_parse_l4(void *l4, void *data_end, __u8 proto, __u32 l4_len,
					 struct rg_pkt *pkt)
{
	if (proto == IPPROTO_ESP) {
		struct rg_esp_hdr *esp = l4;

		if (l4_len < sizeof(*esp) || (void *)(esp + 1) > data_end)
			return RG_CNT_MALFORMED;
		/* RFC 4303 § 2.1: "The SPI value of zero (0) is reserved". */
		if (esp->spi == 0)
			return RG_CNT_MALFORMED;
		pkt->spi = esp->spi;
		return RG_CNT_ESP;
	}
	if (proto != IPPROTO_UDP)
		return RG_CNT_OTHER;

	struct udphdr *udp = l4;

	if ((void *)(udp + 1) > data_end)
		return RG_CNT_MALFORMED;
	__u32 udp_len = bpf_ntohs(udp->len);

	if (udp_len < sizeof(*udp) || udp_len > l4_len)
		return RG_CNT_MALFORMED;
	if (udp->dest == bpf_htons(RG_IKE_PORT))
		return RG_CNT_IKE;
	if (udp->dest != bpf_htons(RG_NATT_PORT))
		return RG_CNT_OTHER;

	__u32 payload_len = udp_len - sizeof(*udp);
	__u8 *payload = (void *)(udp + 1);

	if (payload_len == 1) {
		if ((void *)(payload + 1) > data_end)
			return RG_CNT_MALFORMED;
		/* RFC 3948 § 2.3: "a one-octet payload with the value 0xFF". */
		return payload[0] == 0xff ? RG_CNT_NAT_KEEPALIVE : RG_CNT_MALFORMED;
	}

	struct rg_esp_hdr *esp = (void *)payload;

	if (payload_len < sizeof(__be32) || (void *)payload + sizeof(__be32) > data_end)
		return RG_CNT_MALFORMED;
	/* RFC 3948 § 2.2: the non-ESP marker is four zero octets where the SPI would be. */
	if (esp->spi == 0)
		return RG_CNT_IKE;
	if (payload_len < sizeof(*esp) || (void *)(esp + 1) > data_end)
		return RG_CNT_MALFORMED;
	pkt->spi = esp->spi;
	return RG_CNT_ESP_IN_UDP;
}

static __always_inline __u32 rg_parse_ipv4(void *l3, void *data_end, struct rg_pkt *pkt)
{
	struct iphdr *iph = l3;

	if ((void *)(iph + 1) > data_end)
		return RG_CNT_MALFORMED;
	if (iph->version != 4)
		return RG_CNT_MALFORMED;

	__u32 hdr_len = (iph->ihl & 0xf) * 4;

	if (hdr_len < sizeof(*iph)) {
		pkt->detail = RG_CNT_IPV4_BAD_IHL;
		return RG_CNT_MALFORMED;
	}

	__u32 tot_len = bpf_ntohs(iph->tot_len);

	if (tot_len < hdr_len || l3 + tot_len > data_end)
		return RG_CNT_MALFORMED;
	if (iph->frag_off & bpf_htons(RG_IP_MF | RG_IP_OFFSET)) {
		/* Left to the kernel to reassemble: steering only the first fragment
		 * would split the datagram. */
		pkt->detail = RG_CNT_FRAGMENT;
		return RG_CNT_OTHER;
	}

	pkt->dst.family = RG_FAMILY_IPV4;
	pkt->dst.addr[10] = 0xff;
	pkt->dst.addr[11] = 0xff;
	__builtin_memcpy(&pkt->dst.addr[12], &iph->daddr, sizeof(iph->daddr));

	return rg_parse_l4(l3 + hdr_len, data_end, iph->protocol, tot_len - hdr_len, pkt);
}

static __always_inline __u32 rg_parse_ipv6(void *l3, void *data_end, struct rg_pkt *pkt)
{
	struct ipv6hdr *ip6 = l3;

	if ((void *)(ip6 + 1) > data_end)
		return RG_CNT_MALFORMED;
	if (ip6->version != 6)
		return RG_CNT_MALFORMED;

	__u32 payload_len = bpf_ntohs(ip6->payload_len);

	if ((void *)(ip6 + 1) + payload_len > data_end)
		return RG_CNT_MALFORMED;

	__u8 nexthdr = ip6->nexthdr;
	void *pos = ip6 + 1;
	__u32 walked = 0; /* octets of extension headers */

	for (int i = 0; i < RG_IPV6_EXT_MAX; i++) {
		if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
		    nexthdr == IPPROTO_DSTOPTS) {
			struct rg_ipv6_opt_hdr *opt = pos;

			if ((void *)(opt + 1) > data_end)
				return RG_CNT_MALFORMED;
			__u32 len = ((__u32)opt->hdrlen + 1) * 8;

			nexthdr = opt->nexthdr;
			pos += len;
			walked += len;
		} else if (nexthdr == IPPROTO_FRAGMENT) {
			struct rg_ipv6_frag_hdr *frag = pos;

			if ((void *)(frag + 1) > data_end)
				return RG_CNT_MALFORMED;
			/* An atomic fragment (offset 0, M 0; RFC 6946) is a whole datagram. */
			if (frag->frag_off & bpf_htons(RG_IP6_FRAG_OFFSET | RG_IP6_FRAG_MORE)) {
				pkt->detail = RG_CNT_FRAGMENT;
				return RG_CNT_OTHER;
			}
			nexthdr = frag->nexthdr;
			pos += sizeof(*frag);
			walked += sizeof(*frag);
		} else {
			break;
		}
		if (walked > payload_len)
			return RG_CNT_MALFORMED;
	}
	if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	    nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT) {
		pkt->detail = RG_CNT_IPV6_EXT_LIMIT;
		return RG_CNT_OTHER;
	}

	pkt->dst.family = RG_FAMILY_IPV6;
	__builtin_memcpy(pkt->dst.addr, &ip6->daddr, sizeof(pkt->dst.addr));

	return rg_parse_l4(pos, data_end, nexthdr, payload_len - walked, pkt);
}

/*
 * Parses Ethernet, at most one 802.1Q or 802.1ad tag, and IPv4 or IPv6; returns
 * the frame's class (RG_CNT_ESP ... RG_CNT_MALFORMED).
 */
static __always_inline __u32 rg_parse_frame(void *data, void *data_end, struct rg_pkt *pkt)
{
	struct ethhdr *eth = data;
	void *l3 = eth + 1;

	if ((void *)(eth + 1) > data_end)
		return RG_CNT_MALFORMED;

	__be16 proto = eth->h_proto;

	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct rg_vlan_hdr *vlan = l3;

		if ((void *)(vlan + 1) > data_end)
			return RG_CNT_MALFORMED;
		proto = vlan->encap_proto;
		l3 = vlan + 1;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return rg_parse_ipv4(l3, data_end, pkt);
	if (proto == bpf_htons(ETH_P_IPV6))
		return rg_parse_ipv6(l3, data_end, pkt);
	return RG_CNT_OTHER;
}

/* What the LAN parser found out about a frame. */
struct rg_lan_pkt {
	struct rg_addr_key dst; /* the IP destination */
	__u32 ttl;              /* IPv4 TTL or IPv6 hop limit */
};

/*
 * Parses an untagged Ethernet frame with an IPv4 or IPv6 header (LAN role); returns 1
 * and fills `pkt` for a whole IP header, 0 for anything else (ARP, tagged frames,
 * truncated headers), which the kernel gets.
 */
static __always_inline int rg_parse_lan(void *data, void *data_end, struct rg_lan_pkt *pkt)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5)
			return 0;
		pkt->dst.family = RG_FAMILY_IPV4;
		pkt->dst.addr[10] = 0xff;
		pkt->dst.addr[11] = 0xff;
		__builtin_memcpy(&pkt->dst.addr[12], &iph->daddr, sizeof(iph->daddr));
		pkt->ttl = iph->ttl;
		return 1;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return 0;
		pkt->dst.family = RG_FAMILY_IPV6;
		__builtin_memcpy(pkt->dst.addr, &ip6->daddr, sizeof(pkt->dst.addr));
		pkt->ttl = ip6->hop_limit;
		return 1;
	}
	return 0;
}

#endif /* ROAMGATE_PARSE_H */
