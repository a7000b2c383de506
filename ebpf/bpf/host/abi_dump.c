// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * Host program, built and run by ebpf/build.rs: prints the layout of every
 * record and the value of every constant in roamgate_abi.h, in the format of
 * roamgate_ebpf::abi::layout(). A test compares the two, so the header and the
 * Rust mirror cannot drift apart. When a record gains a field, list it here too:
 * the test also checks that the fields listed cover each record without gaps.
 */
#include <stddef.h>
#include <stdio.h>

#include "../roamgate_abi.h"

#define RECORD(type) \
	printf("struct %s: size %zu, align %zu\n", #type, sizeof(struct type), _Alignof(struct type))
#define FIELD(type, field)                                                        \
	printf("  %s: offset %zu, size %zu\n", #field, offsetof(struct type, field), \
	       sizeof(((struct type *)0)->field))
#define CONST(name) printf("const %s = %llu\n", #name, (unsigned long long)(name))

int main(void)
{
	printf("roamgate map ABI version %d\n", RG_ABI_VERSION);

	RECORD(rg_addr_key);
	FIELD(rg_addr_key, addr);
	FIELD(rg_addr_key, family);
	FIELD(rg_addr_key, pad);

	RECORD(rg_local_addr);
	FIELD(rg_local_addr, flags);

	RECORD(rg_spi_key);
	FIELD(rg_spi_key, spi);

	RECORD(rg_spi_value);
	FIELD(rg_spi_value, sa_slot);
	FIELD(rg_spi_value, flags);
	FIELD(rg_spi_value, pad);

	RECORD(rg_iface);
	FIELD(rg_iface, role);
	FIELD(rg_iface, xsk_base);

	RECORD(rg_lpm_v4);
	FIELD(rg_lpm_v4, prefixlen);
	FIELD(rg_lpm_v4, addr);

	RECORD(rg_lpm_v6);
	FIELD(rg_lpm_v6, prefixlen);
	FIELD(rg_lpm_v6, addr);

	RECORD(rg_prefix_value);
	FIELD(rg_prefix_value, sa_slot);

	RECORD(rg_prefix);
	FIELD(rg_prefix, addr);
	FIELD(rg_prefix, family);
	FIELD(rg_prefix, prefixlen);
	FIELD(rg_prefix, pad);

	RECORD(rg_sa);
	FIELD(rg_sa, seq);
	FIELD(rg_sa, generation);
	FIELD(rg_sa, spi);
	FIELD(rg_sa, state);
	FIELD(rg_sa, direction);
	FIELD(rg_sa, mode);
	FIELD(rg_sa, cipher);
	FIELD(rg_sa, flags);
	FIELD(rg_sa, key_len);
	FIELD(rg_sa, n_local_ts);
	FIELD(rg_sa, n_remote_ts);
	FIELD(rg_sa, key);
	FIELD(rg_sa, soft_bytes);
	FIELD(rg_sa, hard_bytes);
	FIELD(rg_sa, soft_packets);
	FIELD(rg_sa, hard_packets);
	FIELD(rg_sa, beet_src);
	FIELD(rg_sa, beet_dst);
	FIELD(rg_sa, local_ts);
	FIELD(rg_sa, remote_ts);

	RECORD(rg_endpoint);
	FIELD(rg_endpoint, seq);
	FIELD(rg_endpoint, generation);
	FIELD(rg_endpoint, local);
	FIELD(rg_endpoint, remote);
	FIELD(rg_endpoint, family);
	FIELD(rg_endpoint, flags);
	FIELD(rg_endpoint, local_port);
	FIELD(rg_endpoint, remote_port);
	FIELD(rg_endpoint, pad);
	FIELD(rg_endpoint, egress_ifindex);
	FIELD(rg_endpoint, next_hop_mac);
	FIELD(rg_endpoint, src_mac);

	RECORD(rg_gateway_ready);
	FIELD(rg_gateway_ready, abi_version);
	FIELD(rg_gateway_ready, pid);
	FIELD(rg_gateway_ready, workers);
	FIELD(rg_gateway_ready, pad);

	CONST(RG_LOCAL_ADDRS_MAX);
	CONST(RG_SPI_INDEX_MAX);
	CONST(RG_XSK_MAP_MAX);
	CONST(RG_COUNTERS_MAX);
	CONST(RG_GATEWAY_READY_MAX);
	CONST(RG_IFACES_MAX);
	CONST(RG_SA_MAX);
	CONST(RG_SA_DIRTY_WORDS);
	CONST(RG_PREFIXES_MAX);
	CONST(RG_WORKERS_MAX);
	CONST(RG_GW_CNT_STRIDE);
	CONST(RG_GW_COUNTERS_MAX);
	CONST(RG_IKE_PORT);
	CONST(RG_NATT_PORT);
	CONST(RG_FAMILY_IPV4);
	CONST(RG_FAMILY_IPV6);
	CONST(RG_SPI_F_UDP_ENCAP);
	CONST(RG_IPV6_EXT_MAX);
	CONST(RG_IFACE_ROLE_WAN);
	CONST(RG_IFACE_ROLE_LAN);
	CONST(RG_SA_STATE_EMPTY);
	CONST(RG_SA_STATE_ACTIVE);
	CONST(RG_SA_DIR_IN);
	CONST(RG_SA_DIR_OUT);
	CONST(RG_SA_MODE_TUNNEL);
	CONST(RG_SA_MODE_BEET);
	CONST(RG_SA_CIPHER_AES128GCM16);
	CONST(RG_SA_CIPHER_AES256GCM16);
	CONST(RG_SA_F_ESN);
	CONST(RG_SA_KEY_MAX);
	CONST(RG_SA_TS_MAX);
	CONST(RG_EP_F_UDP_ENCAP);
	CONST(RG_CNT_ESP);
	CONST(RG_CNT_ESP_IN_UDP);
	CONST(RG_CNT_IKE);
	CONST(RG_CNT_NAT_KEEPALIVE);
	CONST(RG_CNT_OTHER);
	CONST(RG_CNT_MALFORMED);
	CONST(RG_CNT_ESP_REDIRECTED);
	CONST(RG_CNT_ESP_UNKNOWN_SPI);
	CONST(RG_CNT_ESP_NOT_LOCAL);
	CONST(RG_CNT_ESP_NO_XSK);
	CONST(RG_CNT_FRAGMENT);
	CONST(RG_CNT_IPV6_EXT_LIMIT);
	CONST(RG_CNT_IPV4_BAD_IHL);
	CONST(RG_CNT_LAN_REDIRECTED);
	CONST(RG_CNT_LAN_NO_XSK);
	CONST(RG_CNT_LAN_PASSED);
	CONST(RG_CNT_LAN_TTL_EXPIRED);
	CONST(RG_CNT_MAX);
	return 0;
}
