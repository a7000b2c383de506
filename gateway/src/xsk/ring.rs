//! The four mmapped rings and their single-producer / single-consumer protocol.
//!
//! Each ring is a power-of-two array of descriptors with a `producer` and a `consumer` index
//! (free-running `u32`s) shared with the kernel. The side that produces writes descriptors,
//! then stores `producer` with `Release`; the consumer loads `producer` with `Acquire` before
//! reading descriptors, and stores `consumer` with `Release` after it is done with them, so
//! the producer's `Acquire` load of `consumer` orders its reuse of those slots. Each side keeps
//! a cached copy of the other's index and reloads it only when the cache says the ring is
//! full (producer) or empty (consumer), as libxdp does.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::XskError;

/// `XDP_RING_NEED_WAKEUP` (linux/if_xdp.h): set in a ring's flags when the kernel needs a
/// syscall to make progress on it.
const XDP_RING_NEED_WAKEUP: u32 = 1;

/// One mmapped ring of `T` descriptors.
pub(crate) struct Ring<T> {
    map: NonNull<libc::c_void>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    mask: u32,
    size: u32,
    /// Our copy of our own index (producer for fill/TX, consumer for RX/completion).
    local: u32,
    /// Our cached copy of the kernel's index.
    cached: u32,
}

impl<T: Copy> Ring<T> {
    /// Maps the ring of `size` descriptors at page offset `pgoff` of socket `fd`.
    pub(crate) fn map(
        fd: libc::c_int,
        offsets: &libc::xdp_ring_offset,
        pgoff: libc::off_t,
        size: u32,
        producer_side: bool,
    ) -> Result<Self, XskError> {
        debug_assert!(size.is_power_of_two());
        let map_len = offsets.desc as usize + size as usize * size_of::<T>();
        // SAFETY: a fresh shared mapping of the socket's ring; the kernel checks that pgoff
        // names a ring this socket has and that map_len fits it.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(XskError::last_os("mmap of an AF_XDP ring"));
        }
        let map = NonNull::new(map).ok_or_else(|| XskError::last_os("mmap of an AF_XDP ring"))?;
        let base = map.cast::<u8>();
        // SAFETY: the kernel's offsets lie inside the mapping just made (it sized the ring
        // from them); the index words are u32s the kernel updates concurrently, hence
        // AtomicU32 (same size and alignment as u32); descriptors are aligned by the kernel.
        let (producer, consumer, flags, descs) = unsafe {
            (
                base.add(offsets.producer as usize).cast::<AtomicU32>(),
                base.add(offsets.consumer as usize).cast::<AtomicU32>(),
                base.add(offsets.flags as usize).cast::<AtomicU32>(),
                base.add(offsets.desc as usize).cast::<T>(),
            )
        };
        let mut ring = Ring {
            map,
            map_len,
            producer,
            consumer,
            flags,
            descs,
            mask: size - 1,
            size,
            local: 0,
            cached: 0,
        };
        if producer_side {
            ring.local = ring.producer().load(Ordering::Relaxed);
            // A producer sees `size` free slots to begin with.
            ring.cached = ring.consumer().load(Ordering::Acquire).wrapping_add(size);
        } else {
            ring.local = ring.consumer().load(Ordering::Relaxed);
            ring.cached = ring.producer().load(Ordering::Acquire);
        }
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, which lives as long as self.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, which lives as long as self.
        unsafe { self.consumer.as_ref() }
    }

    /// Whether the kernel set `XDP_RING_NEED_WAKEUP` on this ring.
    pub(crate) fn needs_wakeup(&self) -> bool {
        // SAFETY: points into the live mapping, which lives as long as self.
        let flags = unsafe { self.flags.as_ref() };
        flags.load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: the mask keeps the slot within the `size` descriptors of the mapping.
        unsafe { self.descs.as_ptr().add((index & self.mask) as usize) }
    }

    // ---- producer side (fill, TX) ----

    /// Free slots, reloading the kernel's consumer index only when the cache has fewer than
    /// `want`.
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.cached.wrapping_sub(self.local);
        if free >= want {
            return free;
        }
        self.cached = self
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.size);
        self.cached.wrapping_sub(self.local)
    }

    /// Writes `items` after the producer index and publishes them; the caller checked room
    /// with [`Ring::free`].
    pub(crate) fn produce(&mut self, items: impl ExactSizeIterator<Item = T>) {
        let n = items.len() as u32;
        assert!(n <= self.cached.wrapping_sub(self.local), "ring overrun");
        for (i, item) in items.enumerate() {
            // SAFETY: the slot lies between the producer index and the kernel's consumer
            // index plus size (checked above), so the kernel does not read it until the
            // Release store below publishes it.
            unsafe { self.slot(self.local.wrapping_add(i as u32)).write(item) };
        }
        self.local = self.local.wrapping_add(n);
        self.producer().store(self.local, Ordering::Release);
    }

    // ---- consumer side (RX, completion) ----

    /// Descriptors ready, reloading the kernel's producer index only when the cache has fewer
    /// than `want`.
    pub(crate) fn ready(&mut self, want: u32) -> u32 {
        let ready = self.cached.wrapping_sub(self.local);
        if ready >= want {
            return ready;
        }
        self.cached = self.producer().load(Ordering::Acquire);
        self.cached.wrapping_sub(self.local)
    }

    /// Copies up to `out.len()` ready descriptors out and releases their slots to the kernel.
    pub(crate) fn consume(&mut self, out: &mut [T]) -> usize {
        let n = self.ready(out.len() as u32).min(out.len() as u32);
        for (i, o) in out.iter_mut().take(n as usize).enumerate() {
            // SAFETY: the kernel published this slot (its producer index, loaded with
            // Acquire, is past it) and does not rewrite it until our consumer index passes it.
            *o = unsafe { self.slot(self.local.wrapping_add(i as u32)).read() };
        }
        if n > 0 {
            self.local = self.local.wrapping_add(n);
            self.consumer().store(self.local, Ordering::Release);
        }
        n as usize
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; nothing refers to it afterwards.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}
