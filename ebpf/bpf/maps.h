/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * BTF-defined maps of the XDP classifier. Every map but gateway_ready is pinned
 * by name (LIBBPF_PIN_BY_NAME): the loader points the pin root at the instance's
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

/* rg_iface.xsk_base + RX queue index -> the AF_XDP socket bound to that queue. */
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

/* ifindex -> role and xsk_map base; no entry: WAN, base 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RG_IFACES_MAX);
	__type(key, __u32);
	__type(value, struct rg_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ifaces SEC(".maps");

/* Protected IPv4 prefixes (LAN side) -> outbound SA slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, RG_PREFIXES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rg_lpm_v4);
	__type(value, struct rg_prefix_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} prefixes_v4 SEC(".maps");

/* Protected IPv6 prefixes (LAN side) -> outbound SA slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, RG_PREFIXES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rg_lpm_v6);
	__type(value, struct rg_prefix_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} prefixes_v6 SEC(".maps");

/*
 * The SA table, the endpoint table, the persisted sequence numbers, the SA table's change
 * bitmap and the workers'
 * counters: mmapped by the gateway and the control process, never read by the program.
 * They live in this object so that one load makes and pins every map of an instance.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RG_SA_MAX);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct rg_sa);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sa_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RG_SA_MAX);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct rg_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RG_SA_MAX);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sa_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RG_SA_DIRTY_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sa_dirty SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RG_GW_COUNTERS_MAX);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gw_counters SEC(".maps");

/*
 * The gateway's readiness marker (struct rg_gateway_ready in roamgate_abi.h). No pinning
 * attribute on purpose: the loader makes it unpinned, and the gateway pins it itself as
 * the last step of its start (and unpins it first when it stops), so its pin appears only
 * once everything else is in place.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RG_GATEWAY_READY_MAX);
	__type(key, __u32);
	__type(value, struct rg_gateway_ready);
} gateway_ready SEC(".maps");

#endif /* ROAMGATE_MAPS_H */
