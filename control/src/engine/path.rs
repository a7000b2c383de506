//! Paths: the address pairs an IKE SA can use ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)).
//!
//! An IKE SA has one current `Path` (the pair its messages and its CHILD_SAs' ESP use,
//! with what NAT detection found on it) and `Paths`: our local address set, the peer's
//! address set and the candidate pairs they make, in preference order, each with the state
//! of its return routability check ([`PathCheck`]). Only an authenticated exchange and the
//! daemon's report of the host's addresses change any of it; the MOBIKE exchanges that
//! move an SA between pairs are built on it.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{IKE_PORT, NATT_PORT};

/// A local and a remote address and port: where a datagram arrived (local) and came from
/// (remote), or where one goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPair {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// The pair an IKE SA uses now, with the NAT state found on it
/// ([RFC 7296 § 2.23](https://www.rfc-editor.org/rfc/rfc7296#section-2.23)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Path {
    pub(super) pair: AddressPair,
    /// A NAT in front of us on this pair.
    pub(super) nat_local: bool,
    /// A NAT in front of the peer on this pair.
    pub(super) nat_remote: bool,
}

impl Path {
    /// A pair with no NAT found (yet).
    pub(super) fn new(local: SocketAddr, remote: SocketAddr) -> Path {
        Path {
            pair: AddressPair { local, remote },
            nat_local: false,
            nat_remote: false,
        }
    }

    pub(super) fn local(&self) -> SocketAddr {
        self.pair.local
    }

    pub(super) fn remote(&self) -> SocketAddr {
        self.pair.remote
    }

    /// Whether ESP on this pair goes in UDP (a NAT on either side,
    /// [RFC 3948](https://www.rfc-editor.org/rfc/rfc3948)).
    pub(super) fn udp_encap(&self) -> bool {
        self.nat_local || self.nat_remote
    }
}

/// Where a candidate pair's return routability check stands
/// ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5): "the initiator
/// can send an INFORMATIONAL request on a path to see whether it works").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathCheck {
    /// Never tried.
    Untested,
    /// The peer answered an authenticated request on this pair at this time.
    Reachable(Instant),
    /// A request on this pair went unanswered, last tried at this time.
    Unreachable(Instant),
}

/// One candidate pair and its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The pair.
    pub pair: AddressPair,
    /// What is known of it.
    pub check: PathCheck,
}

/// The addresses an IKE SA can use on both sides and the pairs they make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Paths {
    /// Ours, most preferred first: the connection's `local_addrs` that the host has, or
    /// every address of the host (`%any`), as the daemon last reported them
    /// ([`Engine::set_local_addresses`](super::Engine::set_local_addresses)).
    local: Vec<IpAddr>,
    /// The peer's: the address it used last, then the others it announced
    /// ([RFC 4555 § 3.4](https://www.rfc-editor.org/rfc/rfc4555#section-3.4)), in its order.
    peer: Vec<IpAddr>,
    /// Every pair of one address family from `local` × `peer`, ours in order first, then
    /// the peer's.
    candidates: Vec<Candidate>,
    /// The address list we last sent the peer (our set but the address in use), if we
    /// sent one.
    pub(super) announced: Option<Vec<IpAddr>>,
}

/// At most this many of the peer's announced addresses are kept (the rest of a longer list
/// is ignored): the candidate pairs grow with the product of both sets.
pub const MAX_PEER_ADDRESSES: usize = 16;

impl Paths {
    /// The addresses of a new IKE SA on `current`: one on each side.
    pub(super) fn new(current: &Path) -> Paths {
        let mut paths = Paths {
            local: vec![current.local().ip()],
            peer: vec![current.remote().ip()],
            candidates: Vec::new(),
            announced: None,
        };
        paths.rebuild(current);
        paths
    }

    pub(super) fn local(&self) -> &[IpAddr] {
        &self.local
    }

    pub(super) fn peer(&self) -> &[IpAddr] {
        &self.peer
    }

    pub(super) fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Replaces our address set (most preferred first); returns whether it changed.
    pub(super) fn set_local(&mut self, local: Vec<IpAddr>, current: &Path) -> bool {
        let local = dedup(local);
        if local == self.local {
            return false;
        }
        self.local = local;
        self.rebuild(current);
        true
    }

    /// Replaces the peer's address set with `source`, the address its list came from (the
    /// list leaves that one out: it is in the IP header, RFC 4555 § 3.6), and the others it
    /// `announced` (a received list replaces the stored one, § 3.4), at most
    /// [`MAX_PEER_ADDRESSES`] of them; the pairs follow, `current` first.
    pub(super) fn set_peer(&mut self, source: IpAddr, announced: &[IpAddr], current: &Path) {
        let mut peer = dedup(
            std::iter::once(source)
                .chain(announced.iter().copied())
                .collect(),
        );
        peer.truncate(MAX_PEER_ADDRESSES + 1);
        self.peer = peer;
        self.rebuild(current);
    }

    /// The check state of `pair`, if it is a candidate.
    pub(super) fn check(&self, pair: AddressPair) -> Option<PathCheck> {
        self.candidates
            .iter()
            .find(|c| c.pair == pair)
            .map(|c| c.check)
    }

    /// The SA moved to `current`: the peer's address there comes first in its set (the
    /// others it announced stay), and the pairs follow.
    pub(super) fn moved(&mut self, current: &Path) {
        let announced: Vec<IpAddr> = self.peer.clone();
        self.set_peer(current.remote().ip(), &announced, current);
    }

    /// Records what an exchange on `pair` showed; a pair that is not a candidate (the
    /// peer's NAT mapping, say) is left alone.
    pub(super) fn record(&mut self, pair: AddressPair, check: PathCheck) {
        if let Some(c) = self.candidates.iter_mut().find(|c| c.pair == pair) {
            c.check = check;
        }
    }

    /// The candidate pairs, from our address set and the peer's, keeping what is known of
    /// pairs that stay. The pair in use keeps its ports (a NAT mapping, the NAT-T port);
    /// other pairs use the NAT-T port when the SA moved to it, else the IKE port.
    fn rebuild(&mut self, current: &Path) {
        let port = if current.local().port() == NATT_PORT {
            NATT_PORT
        } else {
            IKE_PORT
        };
        let local_port = current.local().port();
        let old = std::mem::take(&mut self.candidates);
        for &l in &self.local {
            for &r in &self.peer {
                if l.is_ipv4() != r.is_ipv4() {
                    continue;
                }
                let remote_port = if r == current.remote().ip() {
                    current.remote().port()
                } else {
                    port
                };
                let pair = AddressPair {
                    local: SocketAddr::new(l, local_port),
                    remote: SocketAddr::new(r, remote_port),
                };
                let check = old
                    .iter()
                    .find(|c| c.pair == pair)
                    .map_or(PathCheck::Untested, |c| c.check);
                self.candidates.push(Candidate { pair, check });
            }
        }
    }
}

/// One of the host's addresses, as the daemon reports it: the interface it is on and the
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    /// The interface (`wan1`), for a connection's `links`.
    pub interface: String,
    /// The address.
    pub address: IpAddr,
}

impl HostAddress {
    /// `address` on `interface`.
    pub fn new(interface: &str, address: IpAddr) -> HostAddress {
        HostAddress {
            interface: interface.to_owned(),
            address,
        }
    }
}

/// An IKE SA's local address set. While the host's addresses are unknown (`host` is `None`):
/// the connection's specific `configured` addresses, in their order, or the address in use,
/// `current`. Once known: the host's addresses on the connection's `links` (the interfaces
/// it may use, most preferred first; none: any), and of those, the `configured` ones in
/// their order — or, for a connection with none (`%any`), all of them of the same [`Scope`]
/// as `current` (a loopback or link-local address is no use to a peer reached over a global
/// one).
pub(super) fn local_set(
    configured: &[IpAddr],
    links: &[String],
    host: Option<&[HostAddress]>,
    current: IpAddr,
) -> Vec<IpAddr> {
    let specific: Vec<IpAddr> = configured
        .iter()
        .copied()
        .filter(|a| !a.is_unspecified())
        .collect();
    let Some(host) = host else {
        return if specific.is_empty() {
            vec![current]
        } else {
            specific
        };
    };
    let mut allowed: Vec<(usize, IpAddr)> = host
        .iter()
        .filter_map(|h| {
            let rank = if links.is_empty() {
                0
            } else {
                links.iter().position(|l| *l == h.interface)?
            };
            Some((rank, h.address))
        })
        .collect();
    // Stable: the host's order within one link.
    allowed.sort_by_key(|&(rank, _)| rank);
    let allowed: Vec<IpAddr> = allowed.into_iter().map(|(_, a)| a).collect();
    if specific.is_empty() {
        allowed
            .into_iter()
            .filter(|a| Scope::of(a) == Scope::of(&current))
            .collect()
    } else {
        specific
            .into_iter()
            .filter(|a| allowed.contains(a))
            .collect()
    }
}

/// How far an address reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The host itself (127.0.0.0/8, ::1).
    Host,
    /// The link (169.254.0.0/16, fe80::/10).
    Link,
    /// Beyond the link.
    Global,
}

impl Scope {
    fn of(a: &IpAddr) -> Scope {
        match a {
            IpAddr::V4(v4) if v4.is_loopback() => Scope::Host,
            IpAddr::V4(v4) if v4.is_link_local() => Scope::Link,
            IpAddr::V6(v6) if v6.is_loopback() => Scope::Host,
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Scope::Link,
            _ => Scope::Global,
        }
    }
}

/// `addrs` without repetitions or unspecified addresses, in order.
fn dedup(addrs: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(addrs.len());
    for a in addrs {
        if !a.is_unspecified() && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
// Tests stand in for the daemon: they read the clock.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn pairs(p: &Paths) -> Vec<(String, String)> {
        p.candidates()
            .iter()
            .map(|c| (c.pair.local.to_string(), c.pair.remote.to_string()))
            .collect()
    }

    #[test]
    fn candidates_are_every_same_family_pair_ours_in_order_first() {
        let current = Path::new(sock("10.0.1.2:4500"), sock("198.51.100.7:31000"));
        let mut p = Paths::new(&current);
        assert_eq!(
            pairs(&p),
            [("10.0.1.2:4500".into(), "198.51.100.7:31000".into())]
        );
        p.set_local(
            vec![
                ip("10.0.2.2"),
                ip("2001:db8::2"),
                ip("10.0.1.2"),
                ip("10.0.2.2"),
            ],
            &current,
        );
        p.set_peer(
            current.remote().ip(),
            &[ip("203.0.113.9"), ip("2001:db8:f::9")],
            &current,
        );
        assert_eq!(
            p.local(),
            [ip("10.0.2.2"), ip("2001:db8::2"), ip("10.0.1.2")]
        );
        assert_eq!(
            p.peer(),
            [ip("198.51.100.7"), ip("203.0.113.9"), ip("2001:db8:f::9")]
        );
        // The pair in use keeps the peer's NAT-mapped port; the others use 4500.
        let expect = [
            ("10.0.2.2:4500", "198.51.100.7:31000"),
            ("10.0.2.2:4500", "203.0.113.9:4500"),
            ("[2001:db8::2]:4500", "[2001:db8:f::9]:4500"),
            ("10.0.1.2:4500", "198.51.100.7:31000"),
            ("10.0.1.2:4500", "203.0.113.9:4500"),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(pairs(&p), expect);
    }

    #[test]
    fn a_check_result_stays_with_its_pair_when_the_sets_change() {
        let current = Path::new(sock("10.0.1.2:500"), sock("10.9.0.1:500"));
        let mut p = Paths::new(&current);
        let now = Instant::now();
        p.record(current.pair, PathCheck::Reachable(now));
        // Not a candidate: nothing recorded.
        p.record(
            AddressPair {
                local: sock("10.0.1.2:500"),
                remote: sock("10.9.0.1:1234"),
            },
            PathCheck::Unreachable(now),
        );
        assert!(p.set_local(vec![ip("10.0.3.2"), ip("10.0.1.2")], &current));
        assert!(!p.set_local(vec![ip("10.0.3.2"), ip("10.0.1.2")], &current));
        let checks: Vec<PathCheck> = p.candidates().iter().map(|c| c.check).collect();
        assert_eq!(checks, [PathCheck::Untested, PathCheck::Reachable(now)]);
        // The address in use is gone from the host: no pair is left.
        p.set_local(vec![], &current);
        assert!(p.candidates().is_empty());
    }

    #[test]
    fn the_local_set_is_the_configured_addresses_the_host_has_or_all_of_the_host() {
        let (a, b, c) = (ip("10.0.1.2"), ip("10.0.2.2"), ip("10.0.3.2"));
        let any = [ip("0.0.0.0")];
        let host = |addrs: &[IpAddr]| -> Vec<HostAddress> {
            addrs
                .iter()
                .enumerate()
                .map(|(i, &a)| HostAddress::new(&format!("eth{i}"), a))
                .collect()
        };
        assert_eq!(local_set(&[], &[], None, a), [a]);
        assert_eq!(local_set(&any, &[], None, a), [a]);
        assert_eq!(local_set(&[b, a], &[], None, a), [b, a]);
        assert_eq!(local_set(&[], &[], Some(&host(&[c, b])), a), [c, b]);
        assert_eq!(local_set(&[b, a], &[], Some(&host(&[a, c])), a), [a]);
        assert_eq!(local_set(&[b], &[], Some(&[]), b), Vec::<IpAddr>::new());
        // `%any` takes the host's addresses of the scope in use only.
        let (lo, ll) = (ip("127.0.0.1"), ip("fe80::1"));
        assert_eq!(local_set(&[], &[], Some(&host(&[lo, c, ll, b])), a), [c, b]);
        assert_eq!(local_set(&[], &[], Some(&host(&[lo, c, ll, b])), lo), [lo]);
        // A configured loopback address stays.
        assert_eq!(local_set(&[lo], &[], Some(&host(&[lo, c])), lo), [lo]);
    }

    #[test]
    fn links_choose_and_order_the_interfaces_a_connection_uses() {
        let (a, b, c) = (ip("10.0.1.2"), ip("10.0.2.2"), ip("10.0.3.2"));
        let host = [
            HostAddress::new("wan1", a),
            HostAddress::new("wan2", b),
            HostAddress::new("lte", c),
        ];
        let links = |l: &[&str]| -> Vec<String> { l.iter().map(|s| s.to_string()).collect() };
        // Only the links named, in their order, whatever the host's.
        assert_eq!(
            local_set(&[], &links(&["lte", "wan1"]), Some(&host), a),
            [c, a]
        );
        assert_eq!(local_set(&[], &links(&["wan1"]), Some(&host), a), [a]);
        // Its only link gone, the connection has nothing (it does not go elsewhere).
        assert_eq!(
            local_set(&[], &links(&["wan1"]), Some(&host[1..]), a),
            Vec::<IpAddr>::new()
        );
        // With addresses too: those on the links, in the addresses' order.
        assert_eq!(
            local_set(&[c, b, a], &links(&["wan1", "wan2"]), Some(&host), a),
            [b, a]
        );
        // Before the host is known, links change nothing.
        assert_eq!(local_set(&[b], &links(&["wan1"]), None, a), [b]);
    }
}
