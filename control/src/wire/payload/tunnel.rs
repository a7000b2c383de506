//! The payloads that describe the inside of a tunnel: the Traffic Selector payloads TSi and
//! TSr ([RFC 7296 § 3.13](https://www.rfc-editor.org/rfc/rfc7296#section-3.13)) and the
//! Configuration payload CP ([RFC 7296 § 3.15](https://www.rfc-editor.org/rfc/rfc7296#section-3.15)).
//!
//! ```text
//! TS payload body  = Number of TSs (1) | RESERVED (3) | Traffic Selectors
//! Traffic Selector = TS Type (1) | IP Protocol ID (1) | Selector Length (2)
//!                    Start Port (2) | End Port (2) | Starting Address | Ending Address
//! CP payload body  = CFG Type (1) | RESERVED (3) | Configuration Attributes
//! Attribute        = R (1 bit) | Attribute Type (15 bits) | Length (2) | Value
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Body;
use crate::wire::codec::{MAX_CONFIG_ATTRIBUTES, MAX_TRAFFIC_SELECTORS, Reader, Writer, count};
use crate::wire::codes::{CfgAttrType, CfgType, TsType};
use crate::wire::error::{DecodeError, EncodeError, Structure};

/// The fixed part of a selector: type, protocol, length.
const SELECTOR_HEAD_LEN: usize = 4;
/// The length of an IPv4 range selector: head, ports, two addresses.
const IPV4_SELECTOR_LEN: usize = SELECTOR_HEAD_LEN + 4 + 2 * 4;
/// The length of an IPv6 range selector: head, ports, two addresses.
const IPV6_SELECTOR_LEN: usize = SELECTOR_HEAD_LEN + 4 + 2 * 16;

/// A TSi or TSr payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TrafficSelectors {
    /// The selectors, in order.
    pub selectors: Vec<TrafficSelector>,
}

/// One traffic selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrafficSelector {
    /// `TS_IPV4_ADDR_RANGE`.
    Ipv4(AddressRange<Ipv4Addr>),
    /// `TS_IPV6_ADDR_RANGE`.
    Ipv6(AddressRange<Ipv6Addr>),
    /// A selector type we do not decode, kept as sent.
    Other {
        /// Its type.
        ty: TsType,
        /// The octet after the type (the IP protocol for address ranges).
        second: u8,
        /// Everything after the Selector Length field.
        data: Vec<u8>,
    },
}

/// An address range selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressRange<A> {
    /// "IP Protocol ID (1 octet) - Value specifying an associated IP protocol ID (such as UDP,
    /// TCP, and ICMP). A value of zero means that the protocol ID is not relevant to this
    /// Traffic Selector".
    pub ip_protocol: u8,
    /// The first port (for ICMP, type and code).
    pub start_port: u16,
    /// The last port.
    pub end_port: u16,
    /// The first address.
    pub start: A,
    /// The last address.
    pub end: A,
}

impl<A> AddressRange<A> {
    /// Every protocol and port between `start` and `end`.
    pub fn any(start: A, end: A) -> AddressRange<A> {
        AddressRange {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start,
            end,
        }
    }
}

impl TrafficSelector {
    /// The selector's type.
    pub fn ty(&self) -> TsType {
        match self {
            TrafficSelector::Ipv4(_) => TsType::IPV4_ADDR_RANGE,
            TrafficSelector::Ipv6(_) => TsType::IPV6_ADDR_RANGE,
            TrafficSelector::Other { ty, .. } => *ty,
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<TrafficSelector, DecodeError> {
        let ty = TsType(r.u8()?);
        let second = r.u8()?;
        let len = usize::from(r.u16()?);
        if len < SELECTOR_HEAD_LEN {
            return Err(DecodeError::BadLength(Structure::TrafficSelector));
        }
        let mut s = r.sub(len - SELECTOR_HEAD_LEN, Structure::TrafficSelector)?;
        let ts = match ty {
            TsType::IPV4_ADDR_RANGE | TsType::IPV6_ADDR_RANGE => {
                let expected = if ty == TsType::IPV4_ADDR_RANGE {
                    IPV4_SELECTOR_LEN
                } else {
                    IPV6_SELECTOR_LEN
                };
                if len != expected {
                    return Err(DecodeError::BadLength(Structure::TrafficSelector));
                }
                let start_port = s.u16()?;
                let end_port = s.u16()?;
                if ty == TsType::IPV4_ADDR_RANGE {
                    TrafficSelector::Ipv4(AddressRange {
                        ip_protocol: second,
                        start_port,
                        end_port,
                        start: Ipv4Addr::from(s.array::<4>()?),
                        end: Ipv4Addr::from(s.array::<4>()?),
                    })
                } else {
                    TrafficSelector::Ipv6(AddressRange {
                        ip_protocol: second,
                        start_port,
                        end_port,
                        start: Ipv6Addr::from(s.array::<16>()?),
                        end: Ipv6Addr::from(s.array::<16>()?),
                    })
                }
            }
            _ => TrafficSelector::Other {
                ty,
                second,
                data: s.rest().to_vec(),
            },
        };
        s.finish()?;
        Ok(ts)
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let start = w.len();
        match self {
            TrafficSelector::Ipv4(r) => {
                w.u8(TsType::IPV4_ADDR_RANGE.0);
                w.u8(r.ip_protocol);
                let mark = w.len_placeholder(start, Structure::TrafficSelector);
                w.u16(r.start_port);
                w.u16(r.end_port);
                w.bytes(&r.start.octets());
                w.bytes(&r.end.octets());
                w.patch_len(mark)
            }
            TrafficSelector::Ipv6(r) => {
                w.u8(TsType::IPV6_ADDR_RANGE.0);
                w.u8(r.ip_protocol);
                let mark = w.len_placeholder(start, Structure::TrafficSelector);
                w.u16(r.start_port);
                w.u16(r.end_port);
                w.bytes(&r.start.octets());
                w.bytes(&r.end.octets());
                w.patch_len(mark)
            }
            TrafficSelector::Other { ty, second, data } => {
                if *ty == TsType::IPV4_ADDR_RANGE || *ty == TsType::IPV6_ADDR_RANGE {
                    // Would decode as the typed variant (or not at all).
                    return Err(EncodeError::InvalidValue(Structure::TrafficSelector));
                }
                w.u8(ty.0);
                w.u8(*second);
                let mark = w.len_placeholder(start, Structure::TrafficSelector);
                w.bytes(data);
                w.patch_len(mark)
            }
        }
    }
}

impl Body for TrafficSelectors {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = usize::from(r.u8()?);
        r.skip_reserved(3)?;
        if n > MAX_TRAFFIC_SELECTORS {
            return Err(DecodeError::TooMany(Structure::TrafficSelectors));
        }
        let mut selectors = Vec::new();
        for _ in 0..n {
            selectors.push(TrafficSelector::decode(r)?);
        }
        Ok(TrafficSelectors { selectors })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.selectors.len() > MAX_TRAFFIC_SELECTORS {
            return Err(EncodeError::TooLong(Structure::TrafficSelectors));
        }
        w.u8(count(self.selectors.len(), Structure::TrafficSelectors)?);
        w.zeros(3);
        for ts in &self.selectors {
            ts.encode(w)?;
        }
        Ok(())
    }
}

/// "Reserved (1 bit) - This bit MUST be set to zero and MUST be ignored on receipt."
const RESERVED_BIT: u16 = 0x8000;

/// A CP payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Configuration {
    /// Request, reply, set or ack.
    pub ty: CfgType,
    /// The attributes, in order.
    pub attributes: Vec<ConfigAttribute>,
}

/// A configuration attribute. In a CFG_REQUEST the value is usually empty ("give me one").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigAttribute {
    /// The attribute type (15 bits).
    pub ty: CfgAttrType,
    /// The value, as the type encodes it.
    pub value: Vec<u8>,
}

impl ConfigAttribute {
    /// An attribute with an empty value, as a request carries it.
    pub fn request(ty: CfgAttrType) -> ConfigAttribute {
        ConfigAttribute {
            ty,
            value: Vec::new(),
        }
    }

    /// `INTERNAL_IP4_ADDRESS` and friends: a four-octet IPv4 value.
    pub fn ipv4(ty: CfgAttrType, addr: Ipv4Addr) -> ConfigAttribute {
        ConfigAttribute {
            ty,
            value: addr.octets().to_vec(),
        }
    }

    /// `INTERNAL_IP6_ADDRESS`: "the IPv6 address and prefix length" (17 octets).
    pub fn ipv6_with_prefix(addr: Ipv6Addr, prefix_len: u8) -> ConfigAttribute {
        let mut value = addr.octets().to_vec();
        value.push(prefix_len);
        ConfigAttribute {
            ty: CfgAttrType::INTERNAL_IP6_ADDRESS,
            value,
        }
    }

    /// The value as an IPv4 address, if it is four octets.
    pub fn as_ipv4(&self) -> Option<Ipv4Addr> {
        let b: [u8; 4] = self.value.as_slice().try_into().ok()?;
        Some(Ipv4Addr::from(b))
    }
}

impl Body for Configuration {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = CfgType(r.u8()?);
        r.skip_reserved(3)?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            if attributes.len() == MAX_CONFIG_ATTRIBUTES {
                return Err(DecodeError::TooMany(Structure::Configuration));
            }
            let attr_ty = CfgAttrType(r.u16()? & !RESERVED_BIT);
            let len = usize::from(r.u16()?);
            let value = r.sub(len, Structure::ConfigAttribute)?.rest().to_vec();
            attributes.push(ConfigAttribute { ty: attr_ty, value });
        }
        Ok(Configuration { ty, attributes })
    }

    fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        if self.attributes.len() > MAX_CONFIG_ATTRIBUTES {
            return Err(EncodeError::TooLong(Structure::Configuration));
        }
        w.u8(self.ty.0);
        w.zeros(3);
        for a in &self.attributes {
            if a.ty.0 & RESERVED_BIT != 0 {
                return Err(EncodeError::InvalidValue(Structure::ConfigAttribute));
            }
            w.u16(a.ty.0);
            w.u16(count(a.value.len(), Structure::ConfigAttribute)?);
            w.bytes(&a.value);
        }
        Ok(())
    }
}
