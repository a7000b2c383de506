//! Every Debian package the build, the tests, the benchmarks and the demo use: one table, read
//! by `cargo xtask deps` (which installs what is missing) and by [`crate::cmd`] (whose errors
//! name the package of a missing program). docs/lab.md lists the same table for people.
//!
//! A package is listed with the programs or files of it that the project runs, so a test can
//! check after installation that each of them is really there (`tests/packages.rs`), and a
//! missing one is reported with its package's name.

/// One Debian package: its name, what of it is used, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Package {
    /// The Debian package name, as `apt-get install` takes it.
    pub name: &'static str,
    /// Programs (names on `PATH`, or absolute paths) and files of the package the project uses.
    pub provides: &'static [&'static str],
    /// What the project uses it for.
    pub why: &'static str,
}

/// Every package, installed with `--no-install-recommends` (so recommended plugin packages
/// are listed by name). A new machine of this kind already has some of them (gcc, g++,
/// iproute2, openssl, procps, util-linux); they are listed all the same, so the list alone
/// says what the project needs.
pub const PACKAGES: &[Package] = &[
    Package {
        name: "clang",
        provides: &["clang"],
        why: "compiles the XDP program (ebpf/build.rs)",
    },
    Package {
        name: "libbpf-dev",
        provides: &["/usr/include/bpf/bpf_helpers.h"],
        why: "BPF helper headers for the XDP program",
    },
    Package {
        name: "linux-libc-dev",
        provides: &["/usr/include/linux/bpf.h"],
        why: "kernel UAPI headers",
    },
    Package {
        name: "gcc",
        provides: &["cc"],
        why: "host C: the map ABI dump, C parts of crates",
    },
    Package {
        name: "g++",
        provides: &["c++"],
        why: "libFuzzer, built by the fuzz targets",
    },
    Package {
        name: "bpftool",
        provides: &["bpftool"],
        why: "creates foreign pinned maps in the loader tests; shows XDP state",
    },
    Package {
        name: "iproute2",
        provides: &["ip", "bridge"],
        why: "namespaces, veth, bridges, XDP attach in the lab",
    },
    Package {
        name: "nftables",
        provides: &["nft"],
        why: "the lab's NAT, silent path cuts and ESP counters",
    },
    Package {
        name: "ethtool",
        provides: &["ethtool"],
        why: "turns off checksum offload on lab hosts behind the AF_XDP gateway",
    },
    Package {
        name: "iputils-ping",
        provides: &["ping"],
        why: "reachability in the lab",
    },
    Package {
        name: "iperf3",
        provides: &["iperf3"],
        why: "throughput in the lab",
    },
    Package {
        name: "tshark",
        provides: &["tshark"],
        why: "dissects IKEv2 and ESP captures",
    },
    Package {
        name: "strongswan-charon",
        provides: &["/usr/lib/ipsec/charon"],
        why: "the real IKEv2 peer",
    },
    Package {
        name: "strongswan-swanctl",
        provides: &["swanctl"],
        why: "drives the peer over vici",
    },
    Package {
        name: "libstrongswan-standard-plugins",
        provides: &[
            "/usr/lib/ipsec/plugins/libstrongswan-gcm.so",
            "/usr/lib/ipsec/plugins/libstrongswan-openssl.so",
        ],
        why: "the peer's AES-GCM and OpenSSL crypto (ECDSA, RSA-PSS, ECDH)",
    },
    Package {
        name: "libstrongswan-extra-plugins",
        provides: &["/usr/lib/ipsec/plugins/libstrongswan-curve25519.so"],
        why: "the peer's x25519 and Ed25519",
    },
    Package {
        name: "libcharon-extra-plugins",
        provides: &["/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"],
        why: "kernel-libipsec: userspace ESP for the peer (this kernel has no ESP)",
    },
    Package {
        name: "strongswan-pki",
        provides: &["pki"],
        why: "makes the lab's certificates",
    },
    Package {
        name: "openssl",
        provides: &["openssl"],
        why: "cross-checks certificates and keys in the PKI tests",
    },
    Package {
        name: "util-linux",
        provides: &["unshare", "nsenter", "setpriv", "mount", "umount"],
        why: "one charon per namespace, processes in namespaces, dropping root in tests",
    },
    Package {
        name: "procps",
        provides: &["sysctl"],
        why: "namespace settings",
    },
];

/// The package that provides `program` (a name on `PATH` or an absolute path).
pub fn package_of(program: &str) -> Option<&'static Package> {
    PACKAGES.iter().find(|p| p.provides.contains(&program))
}

/// The packages whose names are in `names` removed from the list: what an installer uses when
/// asked to leave some out (`ROAMGATE_DEPS_OMIT`, to show that a package is needed).
pub fn without<'a>(names: &'a [&str]) -> impl Iterator<Item = &'static Package> + 'a {
    PACKAGES.iter().filter(move |p| !names.contains(&p.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_package_and_program_is_listed_once() {
        let mut names: Vec<_> = PACKAGES.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PACKAGES.len(), "a package is listed twice");
        let mut provided: Vec<_> = PACKAGES.iter().flat_map(|p| p.provides).collect();
        let all = provided.len();
        provided.sort_unstable();
        provided.dedup();
        assert_eq!(
            provided.len(),
            all,
            "a program is listed under two packages"
        );
    }

    #[test]
    fn programs_map_to_their_packages() {
        assert_eq!(
            package_of("swanctl").map(|p| p.name),
            Some("strongswan-swanctl")
        );
        assert_eq!(
            package_of("/usr/lib/ipsec/charon").map(|p| p.name),
            Some("strongswan-charon")
        );
        assert_eq!(package_of("no-such-program"), None);
        let rest: Vec<_> = without(&["bpftool"]).map(|p| p.name).collect();
        assert_eq!(rest.len(), PACKAGES.len() - 1);
        assert!(!rest.contains(&"bpftool"));
    }
}
