/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * BTF-defined maps of the XDP classifier. Every map is pinned by name
 * (LIBBPF_PIN_BY_NAME): the loader points the pin root at the instance's
 * directory, e.g. /sys/fs/bpf/roamgate/<instance>/spi_index, so the gateway and
 * the control process open the same maps. Records are in roamgate_abi.h.
 */
#ifndef ROAMGATE_MAPS_H
#define ROAMGATE_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "roamgate_abi.h"

/* The gateway's local addresses: ESP is steered only when sent to one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RG_LOCAL_ADDRS_MAX);
	__type(key, struct rg_addr_key);
	__type(value, struct rg_local_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} local_addrs SEC(".maps");

/* Inbound SPI -> SA slot. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RG_SPI_INDEX_MAX);
	__type(key, struct rg_spi_key);
	__type(value, struct rg_spi_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} spi_index SEC(".maps");

/* RX queue index -> the AF_XDP socket bound to that queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, RG_XSK_MAP_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xsk_map SEC(".maps");

/* Per-CPU counters indexed by RG_CNT_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RG_COUNTERS_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

#endif /* ROAMGATE_MAPS_H */
