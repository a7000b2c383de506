//! Errors of the AF_XDP layer, each a sentence an operator can act on.

use std::io;

/// What went wrong opening or driving an AF_XDP socket.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A size or mode in [`super::XskConfig`] is unusable.
    #[error("invalid AF_XDP configuration: {0}")]
    InvalidConfig(String),
    /// No interface of that name in the calling thread's network namespace.
    #[error("interface {0:?} not found in this network namespace")]
    InterfaceNotFound(String),
    /// The queue does not exist on the interface.
    #[error("queue {queue} is out of range: interface {ifname:?} has {queues} RX queue(s)")]
    QueueOutOfRange {
        /// Interface name.
        ifname: String,
        /// Queue asked for.
        queue: u32,
        /// RX queues the interface has.
        queues: u32,
    },
    /// The process lacks the privilege AF_XDP needs.
    #[error(
        "{op}: permission denied; AF_XDP needs root or CAP_NET_RAW (and CAP_BPF/CAP_NET_ADMIN for XDP): {source}"
    )]
    Permission {
        /// The step that failed.
        op: &'static str,
        /// The errno.
        source: io::Error,
    },
    /// Registering the UMEM with the socket failed.
    #[error("UMEM registration failed ({len} bytes, frame size {frame_size}): {source}")]
    UmemRegistration {
        /// UMEM bytes.
        len: usize,
        /// Frame size.
        frame_size: u32,
        /// The errno.
        source: io::Error,
    },
    /// Zero-copy was required but the driver refused it.
    #[error("interface {ifname:?} queue {queue} refused zero-copy binding: {source}")]
    ZeroCopyUnsupported {
        /// Interface name.
        ifname: String,
        /// Queue.
        queue: u32,
        /// The errno.
        source: io::Error,
    },
    /// Any other system call failed.
    #[error("{op} failed: {source}")]
    Sys {
        /// The step that failed.
        op: &'static str,
        /// The errno.
        source: io::Error,
    },
}

impl XskError {
    /// Wraps the last OS error of step `op`, singling out missing privileges.
    pub(crate) fn last_os(op: &'static str) -> XskError {
        XskError::from_io(op, io::Error::last_os_error())
    }

    /// Wraps `source` of step `op`, singling out missing privileges.
    pub(crate) fn from_io(op: &'static str, source: io::Error) -> XskError {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => XskError::Permission { op, source },
            _ => XskError::Sys { op, source },
        }
    }
}
