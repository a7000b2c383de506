//! A minimal receive-only AF_XDP socket in copy mode, made with libc directly: one UMEM of
//! [`FRAMES`] chunks, a fill ring, a completion ring (the kernel requires one) and an RX ring.
//!
//! Not a data plane: one socket, one queue, frames copied out one at a time, for tests only.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// UMEM chunks (and ring sizes; a power of two).
pub const FRAMES: u32 = 64;
/// Bytes per UMEM chunk.
pub const FRAME_SIZE: u32 = 2048;

/// One mmapped ring: producer and consumer indices and a descriptor array of `T`.
struct Ring<T> {
    map: NonNull<libc::c_void>,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    descs: *mut T,
}

impl<T> Ring<T> {
    /// Maps the ring at page offset `pgoff` of socket `fd`, laid out as `offsets` says.
    fn map(fd: RawFd, offsets: &libc::xdp_ring_offset, pgoff: libc::off_t) -> io::Result<Self> {
        let map_len = offsets.desc as usize + FRAMES as usize * size_of::<T>();
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
            return Err(io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        // SAFETY: the kernel's offsets lie inside the mapping just made; the producer and
        // consumer words are u32s the kernel updates concurrently, hence AtomicU32 (same size
        // and alignment as u32).
        let (producer, consumer, descs) = unsafe {
            (
                base.add(offsets.producer as usize).cast::<AtomicU32>(),
                base.add(offsets.consumer as usize).cast::<AtomicU32>(),
                base.add(offsets.desc as usize).cast::<T>(),
            )
        };
        Ok(Ring {
            map: NonNull::new(map).expect("mmap returned null"),
            map_len,
            producer,
            consumer,
            descs,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping (see `map`), which outlives &self.
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping (see `map`), which outlives &self.
        unsafe { &*self.consumer }
    }

    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: the mask keeps the slot within the FRAMES descriptors of the mapping.
        unsafe { self.descs.add((index & (FRAMES - 1)) as usize) }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; nothing refers to it afterwards.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}

/// A received frame.
#[derive(Debug)]
pub struct Frame {
    /// The frame's bytes, from the Ethernet header on.
    pub data: Vec<u8>,
}

/// A receive-only AF_XDP socket in copy mode, bound to one interface queue.
pub struct XskSocket {
    // Field order is drop order: the rings are unmapped, then the socket closes, then the UMEM
    // is unmapped.
    fill: Ring<u64>,
    _completion: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    fd: OwnedFd,
    umem: Umem,
}

// SAFETY: the socket owns its mappings; all access goes through &mut self or atomics.
unsafe impl Send for XskSocket {}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn setsockopt<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the size passed; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl XskSocket {
    /// Creates the socket and binds it, in copy mode, to queue `queue` of interface `ifindex`
    /// (resolved in the calling thread's network namespace).
    pub fn bind(ifindex: u32, queue: u32) -> io::Result<XskSocket> {
        let umem_len = (FRAMES * FRAME_SIZE) as usize;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // From here on the UMEM is unmapped when `umem` drops, on every error path too.
        let umem = Umem {
            ptr: NonNull::new(umem).expect("mmap returned null"),
            len: umem_len,
        };

        // SAFETY: socket has no memory preconditions; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();

        let reg = libc::xdp_umem_reg {
            addr: umem.ptr.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::XDP_UMEM_REG, &reg)?;
        for ring in [
            libc::XDP_UMEM_FILL_RING,
            libc::XDP_UMEM_COMPLETION_RING,
            libc::XDP_RX_RING,
        ] {
            setsockopt(raw, ring, &FRAMES)?;
        }

        // SAFETY: xdp_mmap_offsets is plain old data; all-zero bytes are a valid value.
        let mut offsets: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: offsets and len are valid and writable for the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                raw,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut offsets as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }

        let fill = Ring::<u64>::map(raw, &offsets.fr, libc::XDP_UMEM_PGOFF_FILL_RING as _)?;
        let completion =
            Ring::<u64>::map(raw, &offsets.cr, libc::XDP_UMEM_PGOFF_COMPLETION_RING as _)?;
        let rx = Ring::<libc::xdp_desc>::map(raw, &offsets.rx, libc::XDP_PGOFF_RX_RING)?;

        let socket = XskSocket {
            fill,
            _completion: completion,
            rx,
            fd,
            umem,
        };
        // Hand every chunk to the kernel.
        for i in 0..FRAMES {
            // SAFETY: slot i of the fill ring, which the kernel reads only after the producer
            // index moves past it.
            unsafe { socket.fill.slot(i).write(u64::from(i * FRAME_SIZE)) };
        }
        socket.fill.producer().store(FRAMES, Ordering::Release);

        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_COPY,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: addr is a valid sockaddr_xdp of the length passed; the kernel only reads it.
        let rc = unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_xdp).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    /// Waits up to `timeout` for a frame, copies it out and returns its chunk to the kernel.
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        loop {
            let consumer = self.rx.consumer().load(Ordering::Relaxed);
            let producer = self.rx.producer().load(Ordering::Acquire);
            if producer != consumer {
                // SAFETY: the kernel published this slot (producer moved past it, Acquire).
                let desc = unsafe { self.rx.slot(consumer).read() };
                let (addr, len) = (desc.addr as usize, desc.len as usize);
                if addr + len > self.umem.len {
                    return Err(io::Error::other(format!(
                        "descriptor {addr}+{len} outside UMEM"
                    )));
                }
                // SAFETY: the range lies inside the UMEM (checked above), and the kernel does
                // not write this chunk until we return it through the fill ring.
                let data = unsafe {
                    std::slice::from_raw_parts(self.umem.ptr.as_ptr().cast::<u8>().add(addr), len)
                }
                .to_vec();
                self.rx
                    .consumer()
                    .store(consumer.wrapping_add(1), Ordering::Release);
                // Give the chunk back.
                let fill = self.fill.producer().load(Ordering::Relaxed);
                let chunk = (addr as u64) & !u64::from(FRAME_SIZE - 1);
                // SAFETY: the ring has room: every chunk is either in the fill ring or was just
                // taken off the RX ring, so at most FRAMES are outstanding.
                unsafe { self.fill.slot(fill).write(chunk) };
                self.fill
                    .producer()
                    .store(fill.wrapping_add(1), Ordering::Release);
                return Ok(Some(Frame { data }));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, 1000) as libc::c_int;
            // SAFETY: pfd is one valid pollfd for the duration of the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    /// The socket's drop statistics (`XDP_STATISTICS`): (rx_dropped, rx_ring_full,
    /// rx_fill_ring_empty_descs).
    pub fn stats(&self) -> io::Result<(u64, u64, u64)> {
        // SAFETY: xdp_statistics is plain old data; all-zero bytes are a valid value.
        let mut stats: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::xdp_statistics>() as libc::socklen_t;
        // SAFETY: stats and len are valid and writable for the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                libc::XDP_STATISTICS,
                (&mut stats as *mut libc::xdp_statistics).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((
            stats.rx_dropped,
            stats.rx_ring_full,
            stats.rx_fill_ring_empty_descs,
        ))
    }
}

/// The UMEM mapping; unmapped on drop.
struct Umem {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the UMEM mapping; the socket and its rings, which refer to
        // it, were dropped before (field order in XskSocket).
        unsafe { libc::munmap(self.ptr.as_ptr(), self.len) };
    }
}
