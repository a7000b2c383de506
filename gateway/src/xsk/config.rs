//! Sizes and modes of one AF_XDP socket, checked before anything touches the kernel.

use super::XskError;

/// How to bind: the kernel's copy mode, zero-copy, or zero-copy with a fallback to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// Try zero-copy; if the driver refuses it, bind in copy mode (veth only has copy mode).
    #[default]
    Auto,
    /// `XDP_COPY` only.
    Copy,
    /// `XDP_ZEROCOPY` only; fails on drivers without it.
    ZeroCopy,
}

/// Busy polling (`SO_BUSY_POLL`, `SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyPoll {
    /// Microseconds to busy-poll the device queue in a blocking call.
    pub usecs: u32,
    /// Packets per busy-poll round (`SO_BUSY_POLL_BUDGET`).
    pub budget: u16,
}

/// The smallest batch the data plane works in.
pub const MIN_BATCH: u32 = 64;

/// Frames, UMEM and rings of one socket. `Default` gives 4096 frames of 2048 bytes and rings of
/// 2048 descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XskConfig {
    /// Bytes per UMEM frame: 2048 or 4096 (aligned chunk mode).
    pub frame_size: u32,
    /// Frames in the UMEM.
    pub frame_count: u32,
    /// Headroom the kernel leaves in front of each received frame (for encapsulation).
    pub frame_headroom: u32,
    /// Fill ring descriptors (power of two).
    pub fill_size: u32,
    /// Completion ring descriptors (power of two).
    pub completion_size: u32,
    /// RX ring descriptors (power of two).
    pub rx_size: u32,
    /// TX ring descriptors (power of two).
    pub tx_size: u32,
    /// Back the UMEM with huge pages (`MAP_HUGETLB`); falls back to normal pages if none.
    pub hugepages: bool,
    /// Copy, zero-copy, or zero-copy with fallback.
    pub mode: BindMode,
    /// Ask for `XDP_USE_NEED_WAKEUP`: the kernel says when it needs a syscall to make progress.
    pub need_wakeup: bool,
    /// Optional busy polling.
    pub busy_poll: Option<BusyPoll>,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_size: 2048,
            frame_count: 4096,
            frame_headroom: 0,
            fill_size: 2048,
            completion_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            hugepages: false,
            mode: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
        }
    }
}

impl XskConfig {
    /// Checks the sizes; the error says which one is wrong and why.
    pub fn validate(&self) -> Result<(), XskError> {
        let bad = |what: String| Err(XskError::InvalidConfig(what));
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return bad(format!(
                "frame_size is {}, but must be 2048 or 4096 bytes",
                self.frame_size
            ));
        }
        // The kernel reserves XDP_PACKET_HEADROOM (256) in front of the headroom we ask for.
        if self.frame_headroom > self.frame_size / 2 {
            return bad(format!(
                "frame_headroom is {}, more than half the frame size {}",
                self.frame_headroom, self.frame_size
            ));
        }
        for (name, size) in [
            ("fill_size", self.fill_size),
            ("completion_size", self.completion_size),
            ("rx_size", self.rx_size),
            ("tx_size", self.tx_size),
        ] {
            if !size.is_power_of_two() || size < MIN_BATCH {
                return bad(format!(
                    "{name} is {size}, but must be a power of two of at least {MIN_BATCH}"
                ));
            }
        }
        if self.frame_count < 2 * MIN_BATCH {
            return bad(format!(
                "frame_count is {}, but must be at least {}",
                self.frame_count,
                2 * MIN_BATCH
            ));
        }
        if u64::from(self.frame_count) * u64::from(self.frame_size) > 1 << 32 {
            return bad(format!(
                "frame_count {} × frame_size {} exceeds the 4 GiB a UMEM may have",
                self.frame_count, self.frame_size
            ));
        }
        Ok(())
    }

    /// UMEM bytes.
    pub fn umem_len(&self) -> usize {
        self.frame_count as usize * self.frame_size as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        XskConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_sizes_are_named() {
        let c = XskConfig {
            rx_size: 1000,
            ..XskConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("rx_size is 1000"), "{e}");
        let c = XskConfig {
            frame_size: 1500,
            ..XskConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("frame_size"));
        let c = XskConfig {
            frame_count: 10,
            ..XskConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("frame_count")
        );
    }
}
