//! roamgate's XDP programs and the map ABI shared with them.
#![warn(missing_docs, unreachable_pub)]

/// The map ABI: Rust mirrors of the C map records.
pub mod abi {
    /// Describes every map record: its size and field offsets.
    pub fn describe() -> String {
        String::new()
    }
}
