/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * roamgate's map ABI: every map key and value record, every constant and every
 * counter index shared by the XDP program, the gateway and the control process.
 *
 * This is the one header the Rust mirror (ebpf/src/abi.rs) follows. Rules:
 *  - every record has explicit padding fields (named `pad`, always zero) and no
 *    implicit padding: the size of every record is the sum of its fields;
 *  - changing a record, a constant or a map's size changes the ABI: update
 *    abi.rs and bpf/host/abi_dump.c in the same change (the build and the
 *    tests fail until they agree), and bump RG_ABI_VERSION.
 *
 * Byte order: addresses and the SPI are kept in network byte order, exactly as
 * they appear on the wire, so the program never swaps bytes on the fast path.
 */
#ifndef ROAMGATE_ABI_H
#define ROAMGATE_ABI_H

#include <linux/types.h>

/* Bumped on every incompatible change to a record, a constant or a map. */
#define RG_ABI_VERSION 1

/* ---- Map sizes (max_entries). Pinned maps keep the size they were made with. ---- */

/* Local addresses of the gateway (every WAN address ESP may arrive on). */
#define RG_LOCAL_ADDRS_MAX 1024
/* Inbound SPIs; leaves room for every SA twice over during rekeys. */
#define RG_SPI_INDEX_MAX 131072
/* One AF_XDP socket per RX queue; the slot is the RX queue index. */
#define RG_XSK_MAP_MAX 256
/* Counter slots; more than RG_CNT_MAX so new counters keep the pinned map compatible. */
#define RG_COUNTERS_MAX 64

/* ---- Well-known ports ---- */

/* IKE, RFC 7296 § 2: "IKE messages use UDP ports 500 and/or 4500". */
#define RG_IKE_PORT 500
/* UDP encapsulation of ESP and IKE, RFC 3948 § 2. */
#define RG_NATT_PORT 4500

/* ---- map local_addrs: struct rg_addr_key -> struct rg_local_addr ---- */

/* Values of rg_addr_key.family. */
#define RG_FAMILY_IPV4 4
#define RG_FAMILY_IPV6 6

/*
 * An IP address. IPv6 addresses are stored as they are; an IPv4 address a.b.c.d
 * is stored IPv4-mapped, ::ffff:a.b.c.d (RFC 4291 § 2.5.5.2), with family
 * RG_FAMILY_IPV4, so that it never equals the IPv6 address ::ffff:a.b.c.d
 * (family RG_FAMILY_IPV6).
 */
struct rg_addr_key {
	__u8 addr[16]; /* network byte order */
	__u8 family;   /* RG_FAMILY_IPV4 or RG_FAMILY_IPV6 */
	__u8 pad[3];   /* zero */
};

/* A local address. Its presence is what matters; flags are reserved (zero). */
struct rg_local_addr {
	__u32 flags; /* zero; reserved */
};

/* ---- map spi_index: struct rg_spi_key -> struct rg_spi_value ---- */

/* An inbound SPI, in network byte order (the 4 bytes as they are on the wire). */
struct rg_spi_key {
	__be32 spi;
};

/* rg_spi_value.flags: the SA is UDP-encapsulated (RFC 3948). The XDP program
 * steers ESP and ESP-in-UDP alike; the flag is for the gateway's workers. */
#define RG_SPI_F_UDP_ENCAP 0x0001

/* Where an inbound SPI's SA lives. */
struct rg_spi_value {
	__u32 sa_slot; /* index into the gateway's SA table */
	__u16 flags;   /* RG_SPI_F_* */
	__u16 pad;     /* zero */
};

/* ---- map xsk_map (XSKMAP): __u32 RX queue index -> AF_XDP socket ---- */

/* ---- map counters (per-CPU array of __u64): counter index -> count ---- */

/*
 * Frame classes: every frame the program sees is counted in exactly one class.
 */
#define RG_CNT_ESP 0           /* IP protocol 50 */
#define RG_CNT_ESP_IN_UDP 1    /* UDP 4500 with a non-zero SPI (RFC 3948) */
#define RG_CNT_IKE 2           /* UDP 500, or UDP 4500 with the non-ESP marker */
#define RG_CNT_NAT_KEEPALIVE 3 /* UDP 4500 with the 1-byte 0xFF payload (RFC 3948 § 2.3) */
#define RG_CNT_OTHER 4         /* anything else (ARP, TCP, fragments, ...) */
#define RG_CNT_MALFORMED 5     /* truncated or inconsistent headers */
/*
 * What happened to ESP and ESP-in-UDP frames: each is counted in exactly one.
 */
#define RG_CNT_ESP_REDIRECTED 6  /* local address, known SPI: sent to the AF_XDP socket */
#define RG_CNT_ESP_UNKNOWN_SPI 7 /* local address, unknown SPI: dropped */
#define RG_CNT_ESP_NOT_LOCAL 8   /* not for a local address: passed to the kernel */
#define RG_CNT_ESP_NO_XSK 9      /* known SPI, no socket on the RX queue: passed */
/*
 * Details, each also counted in a class above.
 */
#define RG_CNT_FRAGMENT 10       /* IPv4 or IPv6 fragment (class other) */
#define RG_CNT_IPV6_EXT_LIMIT 11 /* more IPv6 extension headers than walked (class other) */
#define RG_CNT_IPV4_BAD_IHL 12   /* IPv4 IHL below 5 (class malformed): dropped */
/* Number of counters in use (the map has RG_COUNTERS_MAX slots). */
#define RG_CNT_MAX 13

/* ---- Parser limits ---- */

/* IPv6 extension headers walked before giving up (class other). */
#define RG_IPV6_EXT_MAX 6

/* Compile-time layout checks, for the BPF object and for host builds alike. */
_Static_assert(sizeof(struct rg_addr_key) == 20, "rg_addr_key layout");
_Static_assert(sizeof(struct rg_local_addr) == 4, "rg_local_addr layout");
_Static_assert(sizeof(struct rg_spi_key) == 4, "rg_spi_key layout");
_Static_assert(sizeof(struct rg_spi_value) == 8, "rg_spi_value layout");
_Static_assert(RG_CNT_MAX <= RG_COUNTERS_MAX, "counter slots");

#endif /* ROAMGATE_ABI_H */
