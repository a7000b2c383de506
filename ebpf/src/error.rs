//! The loader's error type: every variant reads as a sentence that says what to do.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Everything that can go wrong while loading, attaching or driving the classifier.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// `/sys/fs/bpf` is not a bpffs.
    #[error(
        "bpffs is not mounted at /sys/fs/bpf: run `mount -t bpf bpf /sys/fs/bpf` (or `cargo xtask test`, which mounts it)"
    )]
    BpffsNotMounted,
    /// The pin directory is not on a bpffs at all.
    #[error(
        "the pin directory {path} is not on a bpffs: use a directory under /sys/fs/bpf, e.g. /sys/fs/bpf/roamgate/<instance>"
    )]
    NotOnBpffs {
        /// The pin directory asked for.
        path: PathBuf,
    },
    /// The process may not load BPF programs or pin maps.
    #[error(
        "loading roamgate's XDP program needs root (BPF maps, bpffs pins, XDP attach): run it as root, or with CAP_BPF, CAP_NET_ADMIN and CAP_DAC_OVERRIDE ({detail})"
    )]
    NotRoot {
        /// What was refused.
        detail: String,
    },
    /// The pin directory could not be created or read.
    #[error("cannot create the pin directory {path}: {source}")]
    PinDir {
        /// The pin directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A map pinned by an earlier run does not have the layout this build expects.
    #[error(
        "the pinned map {path} does not match this build's map ABI ({detail}): stop every roamgate process of this instance and remove {dir}; the maps are recreated on the next load"
    )]
    IncompatiblePinnedMap {
        /// The pinned map.
        path: PathBuf,
        /// Its pin directory.
        dir: PathBuf,
        /// What differs.
        detail: String,
    },
    /// The kernel refused the program or one of its maps.
    #[error("loading the XDP program failed: {detail}")]
    Load {
        /// The error with its causes (the verifier log if the verifier refused it).
        detail: String,
    },
    /// An interface name that does not exist in the calling thread's network namespace.
    #[error("there is no interface {name} in this network namespace")]
    UnknownInterface {
        /// The name asked for.
        name: String,
    },
    /// Attaching failed in every mode tried.
    #[error("attaching XDP to {iface} failed: {detail}")]
    Attach {
        /// The interface.
        iface: String,
        /// The error with its causes.
        detail: String,
    },
    /// This classifier is already attached to the interface.
    #[error("the classifier is already attached to {iface}; detach it first")]
    AlreadyAttached {
        /// The interface.
        iface: String,
    },
    /// This classifier is not attached to the interface.
    #[error("the classifier is not attached to {iface}")]
    NotAttached {
        /// The interface.
        iface: String,
    },
    /// An RX queue index beyond the XSK map's slots.
    #[error("RX queue {queue} has no slot in xsk_map, which has {max} (one per RX queue)")]
    QueueOutOfRange {
        /// The queue asked for.
        queue: u32,
        /// Slots in the map.
        max: u32,
    },
    /// A map operation failed.
    #[error("{op} on map {map} failed: {detail}")]
    Map {
        /// What was done (`insert`, `remove`, `read`).
        op: &'static str,
        /// The map's name.
        map: &'static str,
        /// The error with its causes.
        detail: String,
    },
    /// A pinned mmappable map could not be opened or mapped.
    #[error("cannot map {path}: {detail}")]
    Mmap {
        /// The pinned map.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A slot beyond a table's size.
    #[error("slot {slot} is out of range for map {map}, which has {max}")]
    SlotOutOfRange {
        /// The map's name.
        map: &'static str,
        /// The slot asked for.
        slot: u32,
        /// Slots in the map.
        max: u32,
    },
    /// A write through a table opened for reading.
    #[error("map {map} was opened read-only")]
    ReadOnly {
        /// The map's name.
        map: &'static str,
    },
    /// An SA or endpoint that cannot be written as it is.
    #[error("SA slot {slot}: {detail}")]
    InvalidSa {
        /// The slot.
        slot: u32,
        /// Why.
        detail: String,
    },
    /// The gateway's readiness marker (`gateway_ready`) could not be pinned, unpinned or read.
    #[error("the readiness marker {path}: {detail}")]
    Ready {
        /// The marker's pin path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("BPF_PROG_TEST_RUN failed: {detail}")]
    TestRun {
        /// The error with its causes.
        detail: String,
    },
}

/// The loader's result type.
pub type Result<T, E = EbpfError> = std::result::Result<T, E>;

/// `error` and its sources, joined with `: `.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Whether `error` or one of its sources is an OS error `EPERM` or `EACCES`.
pub(crate) fn is_permission_denied(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// A map error as [`EbpfError::Map`], or [`EbpfError::NotRoot`] if it was a permission error.
pub(crate) fn map_error(
    op: &'static str,
    map: &'static str,
    error: &(dyn std::error::Error + 'static),
) -> EbpfError {
    if is_permission_denied(error) {
        return EbpfError::NotRoot {
            detail: format!("{op} on map {map}: {}", chain(error)),
        };
    }
    EbpfError::Map {
        op,
        map,
        detail: chain(error),
    }
}
