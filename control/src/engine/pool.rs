//! Virtual-IP pools ([RFC 7296 § 2.19](https://www.rfc-editor.org/rfc/rfc7296#section-2.19)):
//! a responder hands each peer an inner address and takes it back when the IKE SA goes. An
//! identity keeps its lease, so a road warrior that reconnects gets its previous address.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::config::PoolConfig;

struct Pool {
    name: String,
    first: u128,
    last: u128,
    v4: bool,
    /// Identity → address, kept after release.
    leases: HashMap<Vec<u8>, u128>,
    /// Address → identity holding its lease.
    owners: HashMap<u128, Vec<u8>>,
    in_use: HashSet<u128>,
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(0)))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// Every configured pool.
pub(super) struct Pools {
    pools: Vec<Pool>,
}

/// At most this many addresses are examined per allocation (bounded work per packet).
const MAX_SCAN: u128 = 1 << 16;

impl Pools {
    pub(super) fn new(config: &[PoolConfig]) -> Pools {
        Pools {
            pools: config
                .iter()
                .filter(|p| p.first.is_ipv4() == p.last.is_ipv4())
                .map(|p| Pool {
                    name: p.name.clone(),
                    first: to_u128(p.first),
                    last: to_u128(p.last),
                    v4: p.first.is_ipv4(),
                    leases: HashMap::new(),
                    owners: HashMap::new(),
                    in_use: HashSet::new(),
                })
                .collect(),
        }
    }

    /// An address of the family `v4` for `identity` from one of the pools named `names`:
    /// its previous lease if free, else the first address never leased, else the first free
    /// one (taking it from the identity that held it).
    pub(super) fn allocate(
        &mut self,
        names: &[String],
        identity: &[u8],
        v4: bool,
    ) -> Option<IpAddr> {
        for name in names {
            let Some(pool) = self
                .pools
                .iter_mut()
                .find(|p| &p.name == name && p.v4 == v4)
            else {
                continue;
            };
            if let Some(&a) = pool.leases.get(identity)
                && !pool.in_use.contains(&a)
            {
                pool.in_use.insert(a);
                return Some(from_u128(a, v4));
            }
            let end = pool.last.min(pool.first.saturating_add(MAX_SCAN));
            let mut reusable = None;
            let mut a = pool.first;
            while a <= end {
                if !pool.in_use.contains(&a) {
                    if !pool.owners.contains_key(&a) {
                        reusable = Some(a);
                        break;
                    }
                    reusable.get_or_insert(a);
                }
                let Some(next) = a.checked_add(1) else { break };
                a = next;
            }
            let Some(a) = reusable else { continue };
            if let Some(old) = pool.owners.insert(a, identity.to_vec()) {
                pool.leases.remove(&old);
            }
            if let Some(prev) = pool.leases.insert(identity.to_vec(), a)
                && prev != a
            {
                pool.owners.remove(&prev);
            }
            pool.in_use.insert(a);
            return Some(from_u128(a, v4));
        }
        None
    }

    /// Marks `addr` as in use (an SA that outlived a reconfiguration holds it).
    pub(super) fn reserve(&mut self, addr: IpAddr) {
        let v = to_u128(addr);
        for p in &mut self.pools {
            if p.v4 == addr.is_ipv4() && p.first <= v && v <= p.last {
                p.in_use.insert(v);
                return;
            }
        }
    }

    /// Gives `addr` back (its lease stays with the identity).
    pub(super) fn release(&mut self, addr: IpAddr) {
        let v = to_u128(addr);
        for p in &mut self.pools {
            if p.v4 == addr.is_ipv4() && p.in_use.remove(&v) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(first: &str, last: &str) -> Pools {
        Pools::new(&[PoolConfig {
            name: "p".into(),
            first: first.parse().unwrap(),
            last: last.parse().unwrap(),
        }])
    }

    #[test]
    fn leases_stick_to_identities_and_free_addresses_are_reused() {
        let names = ["p".to_owned()];
        let mut p = pools("10.0.0.1", "10.0.0.2");
        let a = p.allocate(&names, b"alice", true).unwrap();
        let b = p.allocate(&names, b"bob", true).unwrap();
        assert_ne!(a, b);
        assert_eq!(p.allocate(&names, b"carol", true), None, "pool exhausted");
        assert_eq!(p.allocate(&names, b"alice", false), None, "no IPv6 pool");
        p.release(a);
        // Alice's lease waits for her even though it is free...
        assert_eq!(p.allocate(&names, b"alice", true), Some(a));
        p.release(a);
        // ...but a newcomer takes it when nothing else is left, and Alice loses the lease.
        assert_eq!(p.allocate(&names, b"carol", true), Some(a));
        p.release(b);
        assert_eq!(p.allocate(&names, b"alice", true), Some(b));
    }

    #[test]
    fn range_at_the_end_of_the_address_space() {
        let names = ["p".to_owned()];
        let mut p = pools(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        );
        assert!(p.allocate(&names, b"a", false).is_some());
        assert!(p.allocate(&names, b"b", false).is_some());
        assert_eq!(p.allocate(&names, b"c", false), None);
    }
}
