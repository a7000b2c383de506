//! One AF_XDP socket bound to one queue of one interface, with its own UMEM.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::ring::Ring;
use super::umem::{Ledger, Owner, Umem};
use super::{BindMode, FrameCounts, XskConfig, XskError};

// linux/if_xdp.h bind flags that libc does not name.
const XDP_ZEROCOPY: u16 = 1 << 2;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;

/// One packet descriptor: where the packet lies in the UMEM. Same layout as `struct xdp_desc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Desc {
    /// Offset of the packet's first byte in the UMEM.
    pub addr: u64,
    /// Packet length.
    pub len: u32,
    /// `XDP_PKT_CONTD` and friends; zero for single-buffer packets.
    pub options: u32,
}

const _: () = assert!(size_of::<Desc>() == size_of::<libc::xdp_desc>());
const _: () = assert!(std::mem::offset_of!(Desc, len) == std::mem::offset_of!(libc::xdp_desc, len));

/// The socket's kernel statistics (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Dropped for other reasons (e.g. frame too small).
    pub rx_dropped: u64,
    /// Dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Dropped because the fill ring was empty.
    pub rx_fill_ring_empty: u64,
    /// Invalid TX descriptors.
    pub tx_invalid: u64,
    /// TX ring empty when the kernel looked.
    pub tx_ring_empty: u64,
}

/// An AF_XDP socket with its UMEM, four rings and the ledger of frame owners.
///
/// Frames move Free → Fill (refill) → App (`rx_batch`) → Tx (`tx_batch`) → Free (`complete`),
/// or App → Free (`release`), or Free → App (`alloc`). Each move is checked against the ledger.
pub struct XskSocket {
    // Field order is drop order: rings unmapped, socket closed, then UMEM unmapped.
    fill: Ring<u64>,
    completion: Ring<u64>,
    rx: Ring<Desc>,
    tx: Ring<Desc>,
    fd: OwnedFd,
    umem: Umem,
    ledger: Ledger,
    need_wakeup: bool,
    busy_poll: bool,
    zero_copy: bool,
    scratch: Vec<u64>,
}

// SAFETY: the socket owns its mappings; the kernel is the only other party, through atomics.
unsafe impl Send for XskSocket {}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the size passed; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
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

fn getsockopt<T>(fd: RawFd, name: libc::c_int) -> io::Result<T> {
    // SAFETY: T is one of the kernel's plain-old-data XDP records; zero bytes are valid.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: value and len are valid and writable for the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// `struct ethtool_channels` (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// `struct ifreq` with the `ifr_data` member, padded to the kernel's 40 bytes.
#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// RX queues of `ifname` (ethtool `GCHANNELS`), or `None` if the driver does not say.
pub fn rx_queues(ifname: &str) -> Option<u32> {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    let mut req = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: (&mut ch as *mut EthtoolChannels).cast(),
        _pad: [0; 16],
    };
    let n = ifname.len().min(libc::IFNAMSIZ - 1);
    req.name[..n].copy_from_slice(&ifname.as_bytes()[..n]);
    // SAFETY: no memory preconditions; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: raw is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: req is a valid ifreq whose data points to a live ethtool_channels for the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
    if rc != 0 {
        return None;
    }
    Some(ch.rx_count.max(ch.combined_count).max(1))
}

impl XskSocket {
    /// Opens a socket on queue `queue` of interface `ifname` (in the calling thread's
    /// network namespace), with a UMEM and rings sized by `config`. The fill ring is primed
    /// with up to half the frames; the rest stay free for transmitting.
    pub fn open(ifname: &str, queue: u32, config: &XskConfig) -> Result<XskSocket, XskError> {
        config.validate()?;
        let c_name =
            CString::new(ifname).map_err(|_| XskError::InterfaceNotFound(ifname.to_owned()))?;
        // SAFETY: c_name is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(XskError::InterfaceNotFound(ifname.to_owned()));
        }
        if let Some(queues) = rx_queues(ifname)
            && queue >= queues
        {
            return Err(XskError::QueueOutOfRange {
                ifname: ifname.to_owned(),
                queue,
                queues,
            });
        }
        match config.mode {
            BindMode::Copy => Self::open_with(ifname, ifindex, queue, config, false),
            BindMode::ZeroCopy => Self::open_with(ifname, ifindex, queue, config, true),
            BindMode::Auto => match Self::open_with(ifname, ifindex, queue, config, true) {
                Err(XskError::ZeroCopyUnsupported { source, .. }) => {
                    tracing::info!(
                        "{ifname} queue {queue}: no zero-copy ({source}); binding in copy mode"
                    );
                    Self::open_with(ifname, ifindex, queue, config, false)
                }
                other => other,
            },
        }
    }

    fn open_with(
        ifname: &str,
        ifindex: u32,
        queue: u32,
        config: &XskConfig,
        zero_copy: bool,
    ) -> Result<XskSocket, XskError> {
        let umem = Umem::new(config)?;
        // SAFETY: socket has no memory preconditions; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(XskError::last_os("creating the AF_XDP socket"));
        }
        // SAFETY: raw is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();

        let reg = libc::xdp_umem_reg {
            addr: umem.addr(),
            len: umem.len() as u64,
            chunk_size: config.frame_size,
            headroom: config.frame_headroom,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(raw, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg).map_err(|source| match source
            .raw_os_error()
        {
            Some(libc::EPERM) => XskError::from_io("UMEM registration", source),
            _ => XskError::UmemRegistration {
                len: umem.len(),
                frame_size: config.frame_size,
                source,
            },
        })?;
        for (opt, size) in [
            (libc::XDP_UMEM_FILL_RING, config.fill_size),
            (libc::XDP_UMEM_COMPLETION_RING, config.completion_size),
            (libc::XDP_RX_RING, config.rx_size),
            (libc::XDP_TX_RING, config.tx_size),
        ] {
            setsockopt(raw, libc::SOL_XDP, opt, &size)
                .map_err(|e| XskError::from_io("sizing an AF_XDP ring", e))?;
        }
        if let Some(bp) = config.busy_poll {
            let one: libc::c_int = 1;
            let usecs = bp.usecs as libc::c_int;
            let budget = libc::c_int::from(bp.budget);
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_PREFER_BUSY_POLL, &one)
                .map_err(|e| XskError::from_io("SO_PREFER_BUSY_POLL", e))?;
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_BUSY_POLL, &usecs)
                .map_err(|e| XskError::from_io("SO_BUSY_POLL", e))?;
            setsockopt(raw, libc::SOL_SOCKET, libc::SO_BUSY_POLL_BUDGET, &budget)
                .map_err(|e| XskError::from_io("SO_BUSY_POLL_BUDGET", e))?;
        }

        let off: libc::xdp_mmap_offsets = getsockopt(raw, libc::XDP_MMAP_OFFSETS)
            .map_err(|e| XskError::from_io("reading the ring offsets", e))?;
        let fill = Ring::map(
            raw,
            &off.fr,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
            config.fill_size,
            true,
        )?;
        let completion = Ring::map(
            raw,
            &off.cr,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
            config.completion_size,
            false,
        )?;
        let rx = Ring::map(raw, &off.rx, libc::XDP_PGOFF_RX_RING, config.rx_size, false)?;
        let tx = Ring::map(raw, &off.tx, libc::XDP_PGOFF_TX_RING, config.tx_size, true)?;

        let mut socket = XskSocket {
            fill,
            completion,
            rx,
            tx,
            fd,
            umem,
            ledger: Ledger::new(config),
            need_wakeup: config.need_wakeup,
            busy_poll: config.busy_poll.is_some(),
            zero_copy,
            scratch: Vec::with_capacity(config.fill_size.max(config.completion_size) as usize),
        };
        socket.prime(config.fill_size.min(config.frame_count / 2));

        let mut flags = if zero_copy {
            XDP_ZEROCOPY
        } else {
            libc::XDP_COPY
        };
        if config.need_wakeup {
            flags |= XDP_USE_NEED_WAKEUP;
        }
        let addr = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
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
            let source = io::Error::last_os_error();
            return Err(match source.raw_os_error() {
                Some(libc::EPERM) => XskError::from_io("binding the AF_XDP socket", source),
                Some(libc::EINVAL) if queue > 0 => XskError::QueueOutOfRange {
                    ifname: ifname.to_owned(),
                    queue,
                    queues: rx_queues(ifname).unwrap_or(0),
                },
                _ if zero_copy => XskError::ZeroCopyUnsupported {
                    ifname: ifname.to_owned(),
                    queue,
                    source,
                },
                _ => XskError::from_io("binding the AF_XDP socket", source),
            });
        }
        Ok(socket)
    }

    /// Puts up to `n` free frames in the fill ring (before bind: no wakeup).
    fn prime(&mut self, n: u32) -> usize {
        let room = self.fill.free(n).min(n) as usize;
        self.scratch.clear();
        while self.scratch.len() < room {
            match self.ledger.take_free(Owner::Fill) {
                Some(addr) => self.scratch.push(addr),
                None => break,
            }
        }
        let n = self.scratch.len();
        self.fill.produce(self.scratch.iter().copied());
        n
    }

    /// Whether huge pages back the UMEM.
    pub fn uses_hugepages(&self) -> bool {
        self.umem.hugepages
    }

    /// Whether the socket is bound in zero-copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Receives up to `out.len()` packets; their frames now belong to the caller, who must
    /// hand each back through [`XskSocket::tx_batch`] or [`XskSocket::release`].
    pub fn rx_batch(&mut self, out: &mut [Desc]) -> usize {
        let n = self.rx.consume(out);
        for d in &out[..n] {
            let base = self.ledger.base(d.addr);
            let ok = self.ledger.transfer(base, Owner::Fill, Owner::App);
            debug_assert!(ok, "kernel returned frame {base:#x} it did not own");
        }
        n
    }

    /// The bytes of a packet the caller holds.
    pub fn frame(&self, d: &Desc) -> Option<&[u8]> {
        (self.ledger.owner(d.addr) == Some(Owner::App)).then_some(())?;
        self.umem.bytes(d.addr, d.len)
    }

    /// The bytes of a frame the caller holds, mutable (`len` bytes from `addr`).
    pub fn frame_mut(&mut self, d: &Desc) -> Option<&mut [u8]> {
        (self.ledger.owner(d.addr) == Some(Owner::App)).then_some(())?;
        self.umem.bytes_mut(d.addr, d.len)
    }

    /// Takes a free frame for a packet the caller builds; returns its address.
    pub fn alloc(&mut self) -> Option<u64> {
        self.ledger.take_free(Owner::App)
    }

    /// Gives frames the caller holds back to the free list.
    ///
    /// # Panics
    ///
    /// If a frame is not the caller's (a double free), in debug builds.
    pub fn release(&mut self, descs: &[Desc]) {
        for d in descs {
            let ok = self.ledger.put_free(d.addr, Owner::App);
            debug_assert!(
                ok,
                "release of frame {:#x} the caller does not hold",
                d.addr
            );
        }
    }

    /// Moves free frames into the fill ring (as many as fit) and wakes the kernel if it asked.
    pub fn refill(&mut self) -> usize {
        let want = self.fill.free(1);
        let n = self.prime(want);
        if n > 0 && (self.busy_poll || (self.need_wakeup && self.fill.needs_wakeup())) {
            self.wake_rx();
        }
        n
    }

    /// Queues packets the caller holds for transmission and kicks the kernel if it needs it;
    /// returns how many were queued (the rest still belong to the caller).
    pub fn tx_batch(&mut self, descs: &[Desc]) -> usize {
        let n = (self.tx.free(descs.len() as u32) as usize).min(descs.len());
        for d in &descs[..n] {
            let ok = self
                .ledger
                .transfer(self.ledger.base(d.addr), Owner::App, Owner::Tx);
            debug_assert!(
                ok,
                "transmit of frame {:#x} the caller does not hold",
                d.addr
            );
        }
        self.tx.produce(descs[..n].iter().copied());
        if n > 0 && (!self.need_wakeup || self.busy_poll || self.tx.needs_wakeup()) {
            self.wake_tx();
        }
        n
    }

    /// Takes transmitted frames off the completion ring and frees them; returns how many.
    /// Also kicks the kernel again if frames are still waiting in the TX ring.
    pub fn complete(&mut self) -> usize {
        let mut buf = [0u64; 64];
        let mut total = 0;
        loop {
            let n = self.completion.consume(&mut buf);
            for &addr in &buf[..n] {
                let ok = self.ledger.put_free(addr, Owner::Tx);
                debug_assert!(ok, "completion of frame {addr:#x} that was not sent");
            }
            total += n;
            if n < buf.len() {
                break;
            }
        }
        if self.ledger.counts().tx as usize > 0 && (!self.need_wakeup || self.tx.needs_wakeup()) {
            self.wake_tx();
        }
        total
    }

    /// `sendto` with no data: tells the kernel (copy mode: makes it) transmit the TX ring.
    fn wake_tx(&self) {
        // SAFETY: a zero-length send with no buffer and no address; the kernel reads nothing.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            // EAGAIN/EBUSY/ENOBUFS: the kernel is busy and will be kicked again (libxdp
            // ignores these too); ENETDOWN: the link is down, the frames stay queued.
            tracing::trace!("AF_XDP TX wakeup: {}", io::Error::last_os_error());
        }
    }

    /// `recvfrom` with no buffer: lets the kernel take the fill ring (busy poll, need_wakeup).
    fn wake_rx(&self) {
        // SAFETY: a zero-length receive with no buffer and no address; the kernel writes
        // nothing.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// Waits up to `timeout_ms` for received packets; `true` if some are ready.
    pub fn poll(&mut self, timeout_ms: i32) -> Result<bool, XskError> {
        if self.rx.ready(1) > 0 {
            return Ok(true);
        }
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(XskError::from_io("poll on the AF_XDP socket", e));
            }
        }
        Ok(self.rx.ready(1) > 0)
    }

    /// Who holds how many frames; the sum is always the frame count.
    pub fn frame_counts(&self) -> FrameCounts {
        self.ledger.counts()
    }

    /// The kernel's drop counters for this socket.
    pub fn stats(&self) -> Result<XskStats, XskError> {
        let s: libc::xdp_statistics = getsockopt(self.fd.as_raw_fd(), libc::XDP_STATISTICS)
            .map_err(|e| XskError::from_io("reading XDP_STATISTICS", e))?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty: s.rx_fill_ring_empty_descs,
            tx_invalid: s.tx_invalid_descs,
            tx_ring_empty: s.tx_ring_empty_descs,
        })
    }
}
