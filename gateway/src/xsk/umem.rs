//! The UMEM: one mmapped area cut into equal frames, and the ledger of who owns each frame.

use std::ptr::NonNull;

use super::{XskConfig, XskError};

/// The UMEM mapping; unmapped on drop.
pub(crate) struct Umem {
    ptr: NonNull<u8>,
    len: usize,
    frame_size: u32,
    /// Whether huge pages back the mapping.
    pub(crate) hugepages: bool,
}

impl Umem {
    /// Maps `config.umem_len()` bytes, with huge pages if asked and available.
    pub(crate) fn new(config: &XskConfig) -> Result<Umem, XskError> {
        let len = config.umem_len();
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        let mut hugepages = false;
        let mut map = libc::MAP_FAILED;
        if config.hugepages {
            // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
            map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags | libc::MAP_HUGETLB,
                    -1,
                    0,
                )
            };
            hugepages = map != libc::MAP_FAILED;
            if !hugepages {
                tracing::info!("no huge pages for the UMEM ({len} bytes); using normal pages");
            }
        }
        if map == libc::MAP_FAILED {
            // SAFETY: as above.
            map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    -1,
                    0,
                )
            };
        }
        if map == libc::MAP_FAILED {
            return Err(XskError::last_os("mmap of the UMEM"));
        }
        Ok(Umem {
            ptr: NonNull::new(map.cast::<u8>()).ok_or_else(|| XskError::last_os("mmap"))?,
            len,
            frame_size: config.frame_size,
            hugepages,
        })
    }

    pub(crate) fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes at `addr..addr + len`, which must lie within one frame.
    pub(crate) fn bytes(&self, addr: u64, len: u32) -> Option<&[u8]> {
        self.check(addr, len)?;
        // SAFETY: the range lies inside one frame of the mapping (checked), and the caller
        // owns that frame (the ledger says it is not with the kernel).
        Some(unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().add(addr as usize), len as usize)
        })
    }

    /// The bytes at `addr..addr + len`, mutable.
    pub(crate) fn bytes_mut(&mut self, addr: u64, len: u32) -> Option<&mut [u8]> {
        self.check(addr, len)?;
        // SAFETY: as in `bytes`, and &mut self makes the borrow unique.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(addr as usize), len as usize)
        })
    }

    fn check(&self, addr: u64, len: u32) -> Option<()> {
        let fs = u64::from(self.frame_size);
        let end = addr.checked_add(u64::from(len))?;
        (end <= self.len as u64 && (addr / fs == (end.max(1) - 1) / fs || len == 0)).then_some(())
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the UMEM mapping; the socket, whose kernel side refers to it,
        // is closed before (field order in XskSocket).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Who holds a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Owner {
    /// On the free list, ready for a fill or a transmit.
    Free,
    /// In the fill ring or being received into by the kernel.
    Fill,
    /// Received and handed to the application.
    App,
    /// In the TX ring or in flight, until it comes back on the completion ring.
    Tx,
}

/// How many frames each owner holds; they always add up to the frame count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// On the free list.
    pub free: u32,
    /// With the kernel for receiving.
    pub fill: u32,
    /// With the application.
    pub app: u32,
    /// With the kernel for transmitting.
    pub tx: u32,
}

impl FrameCounts {
    /// All frames.
    pub fn total(&self) -> u32 {
        self.free + self.fill + self.app + self.tx
    }
}

/// The owner of every frame, and a free list. Every transition is checked: a frame the
/// kernel returns must be one we gave it, and a frame the application hands in must be one it
/// holds, so no frame is lost or used twice.
pub(crate) struct Ledger {
    owner: Vec<Owner>,
    free: Vec<u64>,
    counts: FrameCounts,
    frame_shift: u32,
}

impl Ledger {
    pub(crate) fn new(config: &XskConfig) -> Ledger {
        let fs = u64::from(config.frame_size);
        Ledger {
            owner: vec![Owner::Free; config.frame_count as usize],
            // Popped from the back: lowest addresses first.
            free: (0..u64::from(config.frame_count))
                .rev()
                .map(|i| i * fs)
                .collect(),
            counts: FrameCounts {
                free: config.frame_count,
                ..FrameCounts::default()
            },
            frame_shift: config.frame_size.trailing_zeros(),
        }
    }

    fn index(&self, addr: u64) -> usize {
        (addr >> self.frame_shift) as usize
    }

    /// The frame base of an address inside it.
    pub(crate) fn base(&self, addr: u64) -> u64 {
        (addr >> self.frame_shift) << self.frame_shift
    }

    /// Moves the frame at `addr` from `from` to `to`; `false` (and nothing changes) if it is
    /// not held by `from`.
    pub(crate) fn transfer(&mut self, addr: u64, from: Owner, to: Owner) -> bool {
        let i = self.index(addr);
        match self.owner.get_mut(i) {
            Some(o) if *o == from => {
                *o = to;
                *count(&mut self.counts, from) -= 1;
                *count(&mut self.counts, to) += 1;
                true
            }
            _ => false,
        }
    }

    /// Takes a free frame for `to`.
    pub(crate) fn take_free(&mut self, to: Owner) -> Option<u64> {
        let addr = self.free.pop()?;
        let moved = self.transfer(addr, Owner::Free, to);
        debug_assert!(moved, "free list holds frame {addr:#x} that is not free");
        Some(addr)
    }

    /// Returns the frame at `addr` (held by `from`) to the free list.
    pub(crate) fn put_free(&mut self, addr: u64, from: Owner) -> bool {
        let addr = self.base(addr);
        if self.transfer(addr, from, Owner::Free) {
            self.free.push(addr);
            true
        } else {
            false
        }
    }

    pub(crate) fn owner(&self, addr: u64) -> Option<Owner> {
        self.owner.get(self.index(addr)).copied()
    }

    pub(crate) fn counts(&self) -> FrameCounts {
        debug_assert_eq!(self.counts.free as usize, self.free.len());
        self.counts
    }
}

fn count(c: &mut FrameCounts, o: Owner) -> &mut u32 {
    match o {
        Owner::Free => &mut c.free,
        Owner::Fill => &mut c.fill,
        Owner::App => &mut c.app,
        Owner::Tx => &mut c.tx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_refuses_double_use() {
        let config = XskConfig {
            frame_count: 128,
            ..XskConfig::default()
        };
        let mut l = Ledger::new(&config);
        let a = l.take_free(Owner::Fill).unwrap();
        assert_eq!(a, 0);
        assert!(l.transfer(a, Owner::Fill, Owner::App));
        assert!(
            !l.transfer(a, Owner::Fill, Owner::App),
            "second receive of one frame"
        );
        assert!(l.put_free(a + 100, Owner::App));
        assert!(!l.put_free(a, Owner::App), "double free");
        assert_eq!(l.counts().free, 128);
        assert_eq!(l.counts().total(), 128);
    }
}
