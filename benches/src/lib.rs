//! Helpers shared by roamgate's benchmarks: medians, result files and a counting allocator.
#![warn(missing_docs, unreachable_pub)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The median of `values` (sorted in place); NaN-free input expected, empty gives NaN.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Writes a result table to `target/bench-results/<file>` and returns the path.
pub fn write_results(file: &str, text: &str) -> std::io::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A global allocator that counts what the process holds on the heap: every call goes to
/// [`System`] unchanged, and two atomics follow the live bytes and blocks. A benchmark
/// declares it `#[global_allocator]` and reads [`Counting::live`] before and after building
/// what it measures; the difference is what that holds, whatever the allocator reuses.
/// (Resident memory growth is not: inside a process that freed memory earlier it measures
/// the reuse, and can read 0.) Sizes are the requested ones; malloc adds its own header and
/// rounding to each block.
#[derive(Debug)]
pub struct Counting {
    bytes: AtomicUsize,
    blocks: AtomicUsize,
}

/// What is live on the heap of a process whose global allocator is [`Counting`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// Bytes requested and not yet freed.
    pub bytes: usize,
    /// Blocks allocated and not yet freed.
    pub blocks: usize,
}

impl Counting {
    /// Nothing live yet.
    pub const fn new() -> Counting {
        Counting {
            bytes: AtomicUsize::new(0),
            blocks: AtomicUsize::new(0),
        }
    }

    /// What is live now (the two counters are read one after the other, so a block
    /// allocated in between may be in one and not the other).
    pub fn live(&self) -> Live {
        Live {
            bytes: self.bytes.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
        }
    }

    fn added(&self, size: usize) {
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.blocks.fetch_add(1, Ordering::Relaxed);
    }

    fn removed(&self, size: usize) {
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        self.blocks.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Counting {
    fn default() -> Counting {
        Counting::new()
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, and its result returned
// unchanged; the counters are atomics, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator, with this layout.
        unsafe { System.dealloc(ptr, layout) };
        self.removed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's, per the contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // One block still, of the new size (on failure the old block stays as it was).
            self.bytes.fetch_add(new_size, Ordering::Relaxed);
            self.bytes.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counting_allocator_follows_live_bytes_and_blocks() {
        let heap = Counting::new();
        let layout = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: a non-zero-sized layout; each block is freed once, with its layout.
        unsafe {
            let a = heap.alloc(layout);
            let b = heap.alloc_zeroed(layout);
            assert!(!a.is_null() && !b.is_null());
            assert_eq!(
                heap.live(),
                Live {
                    bytes: 200,
                    blocks: 2
                }
            );
            let a = heap.realloc(a, layout, 300);
            assert!(!a.is_null());
            assert_eq!(
                heap.live(),
                Live {
                    bytes: 400,
                    blocks: 2
                }
            );
            heap.dealloc(a, Layout::from_size_align(300, 8).unwrap());
            heap.dealloc(b, layout);
        }
        assert_eq!(
            heap.live(),
            Live {
                bytes: 0,
                blocks: 0
            }
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
