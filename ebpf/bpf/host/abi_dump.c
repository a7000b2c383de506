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

	CONST(RG_LOCAL_ADDRS_MAX);
	CONST(RG_SPI_INDEX_MAX);
	CONST(RG_XSK_MAP_MAX);
	CONST(RG_COUNTERS_MAX);
	CONST(RG_IKE_PORT);
	CONST(RG_NATT_PORT);
	CONST(RG_FAMILY_IPV4);
	CONST(RG_FAMILY_IPV6);
	CONST(RG_SPI_F_UDP_ENCAP);
	CONST(RG_IPV6_EXT_MAX);
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
	CONST(RG_CNT_MAX);
	return 0;
}
