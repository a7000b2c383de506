//! Paths ([RFC 4555 § 3.5](https://www.rfc-editor.org/rfc/rfc4555#section-3.5)): the address
//! pairs an IKE SA can use.

use std::net::SocketAddr;

/// A local and a remote address and port: where a datagram arrived (local) and came from
/// (remote), or where one goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPair {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}
