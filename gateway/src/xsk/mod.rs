//! AF_XDP sockets: UMEM, the four rings, batch receive and transmit, frame accounting.
//!
//! A thin layer over libc (see README.md, "AF_XDP", for why not a crate). One
//! [`XskSocket`] per RX queue of each interface, each with its own UMEM sized by
//! [`XskConfig`]. Frames move between the caller and the kernel only through the batch calls
//! ([`XskSocket::rx_batch`], [`XskSocket::tx_batch`], [`XskSocket::complete`],
//! [`XskSocket::refill`], [`XskSocket::release`]), and a ledger checks every move, so a frame
//! is never lost or used twice ([`XskSocket::frame_counts`] always sums to the frame count).

mod config;
mod error;
mod ring;
mod socket;
mod umem;

pub use config::{BindMode, BusyPoll, MIN_BATCH, XskConfig};
pub use error::XskError;
pub use socket::{Desc, XskSocket, XskStats, rx_queues};
pub use umem::{FrameCounts, Owner};
