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
#define RG_ABI_VERSION 4

/* ---- Map sizes (max_entries). Pinned maps keep the size they were made with. ---- */

/* Local addresses of the gateway (every WAN address ESP may arrive on). */
#define RG_LOCAL_ADDRS_MAX 1024
/* Inbound SPIs; leaves room for every SA twice over during rekeys. */
#define RG_SPI_INDEX_MAX 131072
/* One AF_XDP socket per RX queue of each interface: slot rg_iface.xsk_base + RX queue. */
#define RG_XSK_MAP_MAX 1024
/* Interfaces with a role (WAN or LAN). */
#define RG_IFACES_MAX 64
/* SA slots: the SA table, the endpoint table and the sequence-number table have one
 * entry per slot. */
#define RG_SA_MAX 65536
/* Words of the SA table's change bitmap (map sa_dirty): one bit per slot. */
#define RG_SA_DIRTY_WORDS (RG_SA_MAX / 64)
/* Protected prefixes per address family (an LPM trie allocates entries as they come). */
#define RG_PREFIXES_MAX 131072
/* Gateway worker counters: RG_WORKERS_MAX workers, RG_GW_CNT_STRIDE counters each. */
#define RG_WORKERS_MAX 64
#define RG_GW_CNT_STRIDE 64
#define RG_GW_COUNTERS_MAX (RG_WORKERS_MAX * RG_GW_CNT_STRIDE)
/* Counter slots; more than RG_CNT_MAX so new counters keep the pinned map compatible. */
#define RG_COUNTERS_MAX 64
/* The readiness marker gateway_ready has one entry. */
#define RG_GATEWAY_READY_MAX 1

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

/* ---- map xsk_map (XSKMAP): __u32 slot (rg_iface.xsk_base + RX queue) -> AF_XDP socket ---- */

/* ---- map ifaces: __u32 ifindex -> struct rg_iface ---- */

/* rg_iface.role. An interface with no entry is a WAN interface with xsk_base 0. */
#define RG_IFACE_ROLE_WAN 1 /* ESP for known SPIs -> AF_XDP; everything else -> kernel */
#define RG_IFACE_ROLE_LAN 2 /* to a protected prefix -> AF_XDP; everything else -> kernel */

/* The role of an interface and where its sockets start in xsk_map. */
struct rg_iface {
	__u32 role;     /* RG_IFACE_ROLE_* */
	__u32 xsk_base; /* xsk_map slot of RX queue 0 */
};

/* ---- maps prefixes_v4, prefixes_v6 (LPM tries): prefix -> struct rg_prefix_value ---- */

/* Keys as the kernel's LPM trie wants them: the prefix length, then the address. */
struct rg_lpm_v4 {
	__u32 prefixlen; /* 0..32 */
	__u8 addr[4];    /* network byte order */
};

struct rg_lpm_v6 {
	__u32 prefixlen; /* 0..128 */
	__u8 addr[16];   /* network byte order */
};

/* A protected prefix on the LAN side: traffic to it leaves through this outbound SA. */
struct rg_prefix_value {
	__u32 sa_slot;
};

/*
 * ---- Seqlock records: maps sa_table and endpoints (BPF_F_MMAPABLE arrays) ----
 *
 * Written by one writer (the control process, or the gateway for static SAs) through
 * the mmapped map; read by the gateway's workers once per batch without a system call.
 * `seq` is a sequence lock: the writer makes it odd, writes the record, makes it even;
 * a reader copies the record and retries while `seq` was odd or changed meanwhile.
 * `generation` grows with every write, so a reader can tell that a record changed.
 * The XDP program never reads these records.
 */

/* A traffic selector prefix. */
struct rg_prefix {
	__u8 addr[16];  /* network byte order; IPv4 IPv4-mapped as in rg_addr_key */
	__u8 family;    /* RG_FAMILY_IPV4 or RG_FAMILY_IPV6 */
	__u8 prefixlen; /* 0..32 or 0..128 */
	__u8 pad[2];    /* zero */
};

/* rg_sa.state */
#define RG_SA_STATE_EMPTY 0
#define RG_SA_STATE_ACTIVE 1
/* rg_sa.direction */
#define RG_SA_DIR_IN 1
#define RG_SA_DIR_OUT 2
/* rg_sa.mode */
#define RG_SA_MODE_TUNNEL 1
#define RG_SA_MODE_BEET 2
/* rg_sa.cipher: AES-GCM with a 16-byte ICV, RFC 4106 */
#define RG_SA_CIPHER_AES128GCM16 1
#define RG_SA_CIPHER_AES256GCM16 2
/* rg_sa.flags */
#define RG_SA_F_ESN 0x01 /* extended sequence numbers, RFC 4304 */
/* Key material (key || 4-byte salt) of the largest cipher. */
#define RG_SA_KEY_MAX 36
/* Traffic selectors per side. */
#define RG_SA_TS_MAX 4

/*
 * ---- map sa_table (array, BPF_F_MMAPABLE): __u32 sa_slot -> struct rg_sa ----
 *
 * Holds the keys: the map is pinned mode 0600 by root, as every roamgate map.
 */
struct rg_sa {
	__u32 seq;        /* seqlock: odd while being written */
	__u32 generation; /* grows with every write */
	__be32 spi;       /* network byte order */
	__u8 state;       /* RG_SA_STATE_* */
	__u8 direction;   /* RG_SA_DIR_* */
	__u8 mode;        /* RG_SA_MODE_* */
	__u8 cipher;      /* RG_SA_CIPHER_* */
	__u8 flags;       /* RG_SA_F_* */
	__u8 key_len;     /* bytes of key used: 20 or 36 */
	__u8 n_local_ts;  /* local_ts entries used */
	__u8 n_remote_ts; /* remote_ts entries used */
	__u8 key[RG_SA_KEY_MAX]; /* key || salt (RFC 4106 § 8.1) */
	__u64 soft_bytes;   /* 0: no limit */
	__u64 hard_bytes;   /* 0: no limit */
	__u64 soft_packets; /* 0: no limit */
	__u64 hard_packets; /* 0: no limit */
	struct rg_addr_key beet_src; /* BEET inner source (mode BEET only) */
	struct rg_addr_key beet_dst; /* BEET inner destination */
	struct rg_prefix local_ts[RG_SA_TS_MAX];  /* our side's protected prefixes */
	struct rg_prefix remote_ts[RG_SA_TS_MAX]; /* the peer's protected prefixes */
};

/* ---- map endpoints (array, BPF_F_MMAPABLE): __u32 sa_slot -> struct rg_endpoint ---- */

/* rg_endpoint.flags */
#define RG_EP_F_UDP_ENCAP 0x01 /* UDP-encapsulated ESP, RFC 3948 */

/*
 * Where an SA's packets go now. MOBIKE moves an SA by rewriting this record alone.
 * egress_ifindex 0 means "route it": the gateway resolves the egress interface and
 * the MAC addresses from the kernel's route and neighbour tables.
 */
struct rg_endpoint {
	__u32 seq;              /* seqlock: odd while being written */
	__u32 generation;       /* grows with every write */
	__u8 local[16];         /* outer source, network byte order (IPv4 IPv4-mapped) */
	__u8 remote[16];        /* outer destination */
	__u8 family;            /* RG_FAMILY_IPV4 or RG_FAMILY_IPV6; 0: no endpoint */
	__u8 flags;             /* RG_EP_F_* */
	__be16 local_port;      /* UDP encapsulation: our port (4500) */
	__be16 remote_port;     /* UDP encapsulation: the peer's port */
	__u16 pad;              /* zero */
	__u32 egress_ifindex;   /* 0: resolve from the route table */
	__u8 next_hop_mac[6];   /* with egress_ifindex */
	__u8 src_mac[6];        /* with egress_ifindex */
};

/* ---- map sa_seq (array, BPF_F_MMAPABLE): __u32 sa_slot -> __u64 ----
 *
 * The gateway's persisted outbound sequence number of the SA in the slot: a restarted
 * gateway continues above it (plus a safe jump), so no (key, IV) pair is used twice.
 * SaTable::install sets it to 0. */

/* ---- map sa_dirty (array, BPF_F_MMAPABLE): __u32 word -> __u64 ----
 *
 * The SA table's change bitmap: bit (slot % 64) of word (slot / 64) is set (atomic OR) by
 * whoever wrote sa_table[slot], after the write. The gateway takes each non-zero word
 * (atomic exchange with 0) and re-reads the slots whose bits were set, so it never scans
 * the whole table. */

/* ---- map gw_counters (array, BPF_F_MMAPABLE): __u32 -> __u64 ----
 *
 * Worker w's counter c is slot w * RG_GW_CNT_STRIDE + c; each worker writes only its
 * own slots. Counter indexes: the gateway's DropReason, then its forwarding counters. */

/*
 * ---- map gateway_ready (array): __u32 0 -> struct rg_gateway_ready ----
 *
 * The gateway's readiness marker. Unlike every other map it is NOT pinned when the
 * object is loaded: the gateway writes its one record and pins it itself, last, once
 * every other map is pinned and its workers run; on a graceful stop it unpins it first,
 * before the workers stop. Its presence in the pin directory means "the data plane of
 * this instance is up"; the control process waits for it before opening the maps.
 * Nothing reads it on the fast path.
 */
struct rg_gateway_ready {
	__u32 abi_version; /* RG_ABI_VERSION of the gateway that pinned it */
	__u32 pid;         /* the gateway's process id (in its own PID namespace) */
	__u32 workers;     /* worker threads running */
	__u32 pad;         /* zero */
};

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
/*
 * Frames on LAN interfaces: each is counted in exactly one.
 */
#define RG_CNT_LAN_REDIRECTED 13  /* to a protected prefix: sent to the AF_XDP socket */
#define RG_CNT_LAN_NO_XSK 14      /* to a protected prefix, no socket on the RX queue: passed */
#define RG_CNT_LAN_PASSED 15      /* not to a protected prefix (or not IP): passed */
#define RG_CNT_LAN_TTL_EXPIRED 16 /* to a protected prefix, TTL <= 1: passed (ICMP) */
/* Number of counters in use (the map has RG_COUNTERS_MAX slots). */
#define RG_CNT_MAX 17

/* ---- Parser limits ---- */

/* IPv6 extension headers walked before giving up (class other). */
#define RG_IPV6_EXT_MAX 6

/* Compile-time layout checks, for the BPF object and for host builds alike. */
_Static_assert(sizeof(struct rg_addr_key) == 20, "rg_addr_key layout");
_Static_assert(sizeof(struct rg_local_addr) == 4, "rg_local_addr layout");
_Static_assert(sizeof(struct rg_spi_key) == 4, "rg_spi_key layout");
_Static_assert(sizeof(struct rg_spi_value) == 8, "rg_spi_value layout");
_Static_assert(sizeof(struct rg_iface) == 8, "rg_iface layout");
_Static_assert(sizeof(struct rg_lpm_v4) == 8, "rg_lpm_v4 layout");
_Static_assert(sizeof(struct rg_lpm_v6) == 20, "rg_lpm_v6 layout");
_Static_assert(sizeof(struct rg_prefix_value) == 4, "rg_prefix_value layout");
_Static_assert(sizeof(struct rg_prefix) == 20, "rg_prefix layout");
_Static_assert(sizeof(struct rg_sa) == 288, "rg_sa layout");
_Static_assert(sizeof(struct rg_endpoint) == 64, "rg_endpoint layout");
_Static_assert(sizeof(struct rg_gateway_ready) == 16, "rg_gateway_ready layout");
_Static_assert(RG_CNT_MAX <= RG_COUNTERS_MAX, "counter slots");

#endif /* ROAMGATE_ABI_H */
