//! [`Counters`]: the program's per-CPU counters, summed, with a named field per counter.

use crate::abi::Counter;

macro_rules! counters {
    ($($(#[$doc:meta])* $field:ident => $counter:ident,)+) => {
        /// The classifier's counters summed over all CPUs (see [`Counter`] for their meaning).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct Counters {
            $($(#[$doc])* pub $field: u64,)+
        }

        impl Counters {
            /// The value of `counter`.
            pub fn get(&self, counter: Counter) -> u64 {
                match counter {
                    $(Counter::$counter => self.$field,)+
                }
            }

            /// Sets the value of `counter`.
            pub fn set(&mut self, counter: Counter, value: u64) {
                match counter {
                    $(Counter::$counter => self.$field = value,)+
                }
            }
        }
    };
}

counters! {
    /// Frames of class ESP (IP protocol 50).
    esp => Esp,
    /// Frames of class ESP-in-UDP (UDP 4500, non-zero SPI).
    esp_in_udp => EspInUdp,
    /// Frames of class IKE (UDP 500, or UDP 4500 with the non-ESP marker).
    ike => Ike,
    /// NAT keepalives (UDP 4500, one byte 0xFF).
    nat_keepalive => NatKeepalive,
    /// Frames of class other.
    other => Other,
    /// Truncated or malformed frames.
    malformed => Malformed,
    /// ESP sent to an AF_XDP socket.
    esp_redirected => EspRedirected,
    /// ESP for a local address with an unknown SPI, dropped.
    esp_unknown_spi => EspUnknownSpi,
    /// ESP for an address that is not local, passed.
    esp_not_local => EspNotLocal,
    /// ESP with a known SPI and no AF_XDP socket on the RX queue, passed.
    esp_no_xsk => EspNoXsk,
    /// Fragments (also counted as other).
    fragment => Fragment,
    /// IPv6 frames with too many extension headers (also counted as other).
    ipv6_ext_limit => Ipv6ExtLimit,
    /// IPv4 frames with an IHL below 5, dropped (also counted as malformed).
    ipv4_bad_ihl => Ipv4BadIhl,
    /// LAN frames to a protected prefix sent to an AF_XDP socket.
    lan_redirected => LanRedirected,
    /// LAN frames to a protected prefix with no socket on the RX queue, passed.
    lan_no_xsk => LanNoXsk,
    /// LAN frames not to a protected prefix, passed.
    lan_passed => LanPassed,
    /// LAN frames to a protected prefix with TTL ≤ 1, passed.
    lan_ttl_expired => LanTtlExpired,
}

impl Counters {
    /// Every counter with its value, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    /// What changed since `earlier` (counters only grow; a wrap is taken modulo 2^64).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut delta = Counters::default();
        for counter in Counter::ALL {
            delta.set(
                counter,
                self.get(counter).wrapping_sub(earlier.get(counter)),
            );
        }
        delta
    }

    /// Frames seen: the sum of the class counters.
    pub fn frames(&self) -> u64 {
        Counter::CLASSES.iter().map(|c| self.get(*c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_field() {
        let mut c = Counters::default();
        for (i, counter) in Counter::ALL.into_iter().enumerate() {
            c.set(counter, i as u64 + 1);
        }
        for (i, (counter, value)) in c.iter().enumerate() {
            assert_eq!(value, i as u64 + 1, "{}", counter.name());
        }
        assert_eq!(c.since(&c), Counters::default());
    }
}
