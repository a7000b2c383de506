//! roamgate's lab: network namespaces joined by veth pairs, bridges, a router and a NAT, with
//! real strongSwan peers, faults and traffic, for the end-to-end tests, the benchmarks and the
//! demo.
//!
//! Every lab uses namespaces of its own with unique names (tests may run in parallel), removes
//! them when dropped — also on panic — and keeps its logs in a folder that outlives it (see
//! [`Lab`]). Nothing here touches an address outside the lab's namespaces.
#![warn(missing_docs, unreachable_pub)]

pub mod capture;
pub mod cmd;
mod error;
pub mod faults;
mod lab;
pub mod netns;
pub mod packages;
pub mod packet;
pub mod pcap;
pub mod pki;
pub mod process;
pub mod roamgate;
pub mod scenario;
pub mod strongswan;
pub mod topology;
pub mod traffic;

pub use error::{LabError, Result};
pub use lab::Lab;
pub use netns::{Netns, require_root, veth};
