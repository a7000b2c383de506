//! [`Classifier`]: loads the XDP program with its pinned maps, attaches it, and writes the maps.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap, MapData, MapError, MapInfo, PerCpuArray, XskMap};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

use crate::abi::{self, AddrKey, Counter, Iface as IfaceRecord, LocalAddr, SpiKey, SpiValue};
use crate::bpffs;
use crate::counters::Counters;
use crate::error::{EbpfError, Result, chain, is_permission_denied, map_error};
use crate::ready::{ReadyMarker, ready_path};

/// The compiled XDP object, built from `bpf/xdp_classify.c` by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_classify.o"));

/// The program's name in the object (its C function name).
pub const PROGRAM_NAME: &str = "xdp_classify";

/// An interface, by name (resolved in the calling thread's network namespace) or by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Iface<'a> {
    /// An interface name, such as `eth0`.
    Name(&'a str),
    /// An interface index.
    Index(u32),
}

impl<'a> From<&'a str> for Iface<'a> {
    fn from(name: &'a str) -> Self {
        Iface::Name(name)
    }
}

impl From<u32> for Iface<'_> {
    fn from(index: u32) -> Self {
        Iface::Index(index)
    }
}

impl fmt::Display for Iface<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Iface::Name(name) => f.write_str(name),
            Iface::Index(index) => write!(f, "ifindex {index}"),
        }
    }
}

impl Iface<'_> {
    /// The interface index, looked up in the calling thread's network namespace.
    pub fn index(self) -> Result<u32> {
        match self {
            Iface::Index(index) => Ok(index),
            Iface::Name(name) => {
                let unknown = || EbpfError::UnknownInterface {
                    name: name.to_string(),
                };
                let c_name = CString::new(name).map_err(|_| unknown())?;
                // SAFETY: c_name is a valid NUL-terminated string that outlives the call;
                // if_nametoindex only reads it.
                let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
                if index == 0 {
                    Err(unknown())
                } else {
                    Ok(index)
                }
            }
        }
    }
}

/// How the program runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// Native XDP, in the driver. [`Classifier::attach`] falls back to [`AttachMode::Generic`]
    /// (with a warning) when the driver has no native XDP.
    Driver,
    /// Generic XDP (the kernel's `skb` mode): works everywhere, slower; AF_XDP copy mode only.
    Generic,
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            AttachMode::Driver => XdpMode::Driver,
            AttachMode::Generic => XdpMode::Skb,
        }
    }
}

/// An XDP verdict, as returned by [`Classifier::test_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpAction {
    /// `XDP_ABORTED`.
    Aborted,
    /// `XDP_DROP`.
    Drop,
    /// `XDP_PASS`.
    Pass,
    /// `XDP_TX`.
    Tx,
    /// `XDP_REDIRECT`.
    Redirect,
    /// A value outside the kernel's `enum xdp_action`.
    Unknown(u32),
}

impl From<u32> for XdpAction {
    fn from(value: u32) -> Self {
        match value {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            other => XdpAction::Unknown(other),
        }
    }
}

struct Attachment {
    link: XdpLinkId,
    mode: AttachMode,
}

/// The loaded XDP classifier and its maps.
///
/// The maps are pinned by name in the pin directory given to [`Classifier::load`]
/// (`<pin_dir>/local_addrs`, `spi_index`, `xsk_map`, `counters`); a second load with the same
/// directory, in this process or another, opens the same maps. The program stays attached to
/// an interface while this value lives (or until [`Classifier::detach`]); the maps outlive it
/// in bpffs until [`remove_pins`] or a reboot.
pub struct Classifier {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    local_addrs: LocalAddrs,
    spi_index: HashMap<MapData, SpiKey, SpiValue>,
    xsk_map: XskMap<MapData>,
    counters: PerCpuArray<MapData, u64>,
    ifaces: HashMap<MapData, u32, IfaceRecord>,
    attached: BTreeMap<u32, Attachment>,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("pin_dir", &self.pin_dir)
            .field(
                "attached",
                &self
                    .attached
                    .iter()
                    .map(|(index, a)| (*index, a.mode))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The gateway's addresses in the pinned `local_addrs` map: the program steers ESP sent to
/// one of them. [`Classifier`] holds one; [`LocalAddrs::open`] gives another process or
/// thread its own handle on the same map.
pub struct LocalAddrs {
    map: HashMap<MapData, AddrKey, LocalAddr>,
}

impl fmt::Debug for LocalAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalAddrs").finish_non_exhaustive()
    }
}

impl LocalAddrs {
    /// Opens the map pinned in `pin_dir` (the classifier must have been loaded there).
    pub fn open(pin_dir: &Path) -> Result<LocalAddrs> {
        Ok(LocalAddrs {
            map: crate::tables::pinned(pin_dir, abi::maps::LOCAL_ADDRS, HashMap::try_from)?,
        })
    }

    /// Adds `addr` (a second add changes nothing).
    pub fn add(&mut self, addr: IpAddr) -> Result<()> {
        self.map
            .insert(AddrKey::new(addr), LocalAddr::default(), 0)
            .map_err(|e| map_error("insert", abi::maps::LOCAL_ADDRS, &e))
    }

    /// Removes `addr`; returns whether it was there.
    pub fn remove(&mut self, addr: IpAddr) -> Result<bool> {
        match self.map.remove(&AddrKey::new(addr)) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(map_error("remove", abi::maps::LOCAL_ADDRS, &e)),
        }
    }

    /// The addresses, in no particular order.
    pub fn list(&self) -> Result<Vec<IpAddr>> {
        let mut out = Vec::new();
        for key in self.map.keys() {
            let key = key.map_err(|e| map_error("read", abi::maps::LOCAL_ADDRS, &e))?;
            let v6 = std::net::Ipv6Addr::from(key.addr);
            out.push(match (key.family, v6.to_ipv4_mapped()) {
                (abi::FAMILY_IPV4, Some(v4)) => IpAddr::V4(v4),
                _ => IpAddr::V6(v6),
            });
        }
        Ok(out)
    }
}

impl Classifier {
    /// Loads the program and opens its maps under `pin_dir` (e.g.
    /// `/sys/fs/bpf/roamgate/<instance>`), creating the directory and the maps if needed and
    /// reusing maps already pinned there.
    ///
    /// # Errors
    ///
    /// A clear sentence if bpffs is not mounted, the process lacks privileges, a pinned map
    /// has another layout than this build, or the kernel refuses the program.
    pub fn load(pin_dir: &Path) -> Result<Classifier> {
        bpffs::check_pin_dir(pin_dir)?;
        bpffs::check_privileges()?;
        std::fs::create_dir_all(pin_dir).map_err(|source| {
            if source.kind() == std::io::ErrorKind::PermissionDenied {
                EbpfError::NotRoot {
                    detail: format!("creating {}: {source}", pin_dir.display()),
                }
            } else {
                EbpfError::PinDir {
                    path: pin_dir.to_path_buf(),
                    source,
                }
            }
        })?;
        check_pinned_maps(pin_dir)?;

        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(pin_dir)
            .load(OBJECT)
            .map_err(|e| load_error(&e))?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| EbpfError::Load {
                detail: format!("the object has no program {PROGRAM_NAME}"),
            })?
            .try_into()
            .map_err(|e: ProgramError| load_error(&e))?;
        program.load().map_err(|e| load_error(&e))?;

        let local_addrs = LocalAddrs {
            map: HashMap::try_from(take_map(&mut ebpf, abi::maps::LOCAL_ADDRS)?)
                .map_err(|e| map_error("open", abi::maps::LOCAL_ADDRS, &e))?,
        };
        let spi_index = HashMap::try_from(take_map(&mut ebpf, abi::maps::SPI_INDEX)?)
            .map_err(|e| map_error("open", abi::maps::SPI_INDEX, &e))?;
        let xsk_map = XskMap::try_from(take_map(&mut ebpf, abi::maps::XSK_MAP)?)
            .map_err(|e| map_error("open", abi::maps::XSK_MAP, &e))?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, abi::maps::COUNTERS)?)
            .map_err(|e| map_error("open", abi::maps::COUNTERS, &e))?;
        let ifaces = HashMap::try_from(take_map(&mut ebpf, abi::maps::IFACES)?)
            .map_err(|e| map_error("open", abi::maps::IFACES, &e))?;
        // The maps now exist (made or reused): check them as the kernel sees them.
        check_pinned_maps(pin_dir)?;

        Ok(Classifier {
            ebpf,
            pin_dir: pin_dir.to_path_buf(),
            local_addrs,
            spi_index,
            xsk_map,
            counters,
            ifaces,
            attached: BTreeMap::new(),
        })
    }

    /// The pin directory the maps live in.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Takes the instance's readiness marker (map `gateway_ready`, loaded unpinned) out of the
    /// classifier: the gateway pins it with [`ReadyMarker::publish`] once it runs. Only once
    /// per load.
    pub fn ready_marker(&mut self) -> Result<ReadyMarker> {
        let map = self
            .ebpf
            .take_map(abi::maps::GATEWAY_READY)
            .ok_or_else(|| EbpfError::Ready {
                path: ready_path(&self.pin_dir),
                detail: "this classifier's marker was taken already".to_string(),
            })?;
        Ok(ReadyMarker::new(map, &self.pin_dir))
    }

    fn program_mut(&mut self) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| EbpfError::Load {
                detail: format!("program {PROGRAM_NAME} is missing"),
            })
    }

    /// Attaches the program to `iface` (a name is resolved in the calling thread's network
    /// namespace) and returns the mode it runs in. [`AttachMode::Driver`] falls back to
    /// [`AttachMode::Generic`], with a warning, when native XDP is refused.
    pub fn attach<'a>(
        &mut self,
        iface: impl Into<Iface<'a>>,
        mode: AttachMode,
    ) -> Result<AttachMode> {
        let iface = iface.into();
        let index = iface.index()?;
        if self.attached.contains_key(&index) {
            return Err(EbpfError::AlreadyAttached {
                iface: iface.to_string(),
            });
        }
        let program = self.program_mut()?;
        let (link, mode) = match program.attach_to_if_index(index, mode.xdp_mode()) {
            Ok(link) => (link, mode),
            Err(native) if mode == AttachMode::Driver => {
                tracing::warn!(
                    %iface,
                    error = %chain(&native),
                    "native XDP refused; falling back to generic XDP (slower, AF_XDP copy mode only)"
                );
                let link = program
                    .attach_to_if_index(index, XdpMode::Skb)
                    .map_err(|generic| attach_error(iface, &generic))?;
                (link, AttachMode::Generic)
            }
            Err(e) => return Err(attach_error(iface, &e)),
        };
        tracing::info!(%iface, ifindex = index, ?mode, "XDP classifier attached");
        self.attached.insert(index, Attachment { link, mode });
        Ok(mode)
    }

    /// Detaches the program from `iface`.
    pub fn detach<'a>(&mut self, iface: impl Into<Iface<'a>>) -> Result<()> {
        let iface = iface.into();
        let index = iface.index()?;
        let attachment = self
            .attached
            .remove(&index)
            .ok_or_else(|| EbpfError::NotAttached {
                iface: iface.to_string(),
            })?;
        self.program_mut()?
            .detach(attachment.link)
            .map_err(|e| attach_error(iface, &e))?;
        tracing::info!(%iface, ifindex = index, "XDP classifier detached");
        Ok(())
    }

    /// The interfaces (by index) this classifier is attached to, with their modes.
    pub fn attachments(&self) -> Vec<(u32, AttachMode)> {
        self.attached.iter().map(|(i, a)| (*i, a.mode)).collect()
    }

    /// Marks `addr` as one of the gateway's addresses: ESP to it is steered.
    pub fn add_local_addr(&mut self, addr: IpAddr) -> Result<()> {
        self.local_addrs.add(addr)
    }

    /// Removes `addr` from the local addresses; returns whether it was there.
    pub fn remove_local_addr(&mut self, addr: IpAddr) -> Result<bool> {
        self.local_addrs.remove(addr)
    }

    /// The local addresses, in no particular order.
    pub fn local_addrs(&self) -> Result<Vec<IpAddr>> {
        self.local_addrs.list()
    }

    /// Maps the inbound SPI `spi` (its numeric value) to `value`; replaces an earlier entry.
    pub fn insert_spi(&mut self, spi: u32, value: SpiValue) -> Result<()> {
        self.spi_index
            .insert(SpiKey::new(spi), value, 0)
            .map_err(|e| map_error("insert", abi::maps::SPI_INDEX, &e))
    }

    /// Removes the inbound SPI `spi`; returns whether it was there.
    pub fn remove_spi(&mut self, spi: u32) -> Result<bool> {
        match self.spi_index.remove(&SpiKey::new(spi)) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(map_error("remove", abi::maps::SPI_INDEX, &e)),
        }
    }

    /// The entry of inbound SPI `spi`, if any.
    pub fn spi(&self, spi: u32) -> Result<Option<SpiValue>> {
        match self.spi_index.get(&SpiKey::new(spi), 0) {
            Ok(value) => Ok(Some(value)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(map_error("read", abi::maps::SPI_INDEX, &e)),
        }
    }

    /// Gives interface `ifindex` a role ([`abi::IFACE_ROLE_WAN`] or [`abi::IFACE_ROLE_LAN`])
    /// and the `xsk_map` slot of its RX queue 0. An interface without an entry is a WAN
    /// interface with base 0.
    pub fn set_iface(&mut self, ifindex: u32, role: u32, xsk_base: u32) -> Result<()> {
        self.check_queue(xsk_base)?;
        self.ifaces
            .insert(ifindex, IfaceRecord { role, xsk_base }, 0)
            .map_err(|e| map_error("insert", abi::maps::IFACES, &e))
    }

    /// Removes the role of interface `ifindex`; returns whether it had one.
    pub fn remove_iface(&mut self, ifindex: u32) -> Result<bool> {
        match self.ifaces.remove(&ifindex) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(map_error("remove", abi::maps::IFACES, &e)),
        }
    }

    /// Puts the AF_XDP socket `fd` in `xsk_map` slot `queue`: what the program steers on that
    /// slot goes to it. The slot of RX queue `q` of an interface is its `xsk_base + q` (just
    /// `q` for an interface without a role entry). The socket must be bound to the same
    /// interface and queue, or the kernel drops what is redirected to it.
    pub fn register_xsk(&mut self, queue: u32, fd: impl AsRawFd) -> Result<()> {
        self.check_queue(queue)?;
        self.xsk_map
            .set(queue, fd, 0)
            .map_err(|e| map_error("insert", abi::maps::XSK_MAP, &e))
    }

    /// Empties RX queue `queue`'s slot (a closed socket leaves its slot by itself).
    pub fn unregister_xsk(&mut self, queue: u32) -> Result<()> {
        self.check_queue(queue)?;
        match self.xsk_map.unset(queue) {
            Err(e) if !is_not_found(&e) => Err(map_error("remove", abi::maps::XSK_MAP, &e)),
            _ => Ok(()),
        }
    }

    fn check_queue(&self, queue: u32) -> Result<()> {
        if queue >= abi::XSK_MAP_MAX {
            return Err(EbpfError::QueueOutOfRange {
                queue,
                max: abi::XSK_MAP_MAX,
            });
        }
        Ok(())
    }

    /// The counters, summed over all CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let mut counters = Counters::default();
        for counter in Counter::ALL {
            let values = self
                .counters
                .get(&counter.index(), 0)
                .map_err(|e| map_error("read", abi::maps::COUNTERS, &e))?;
            counters.set(counter, values.iter().fold(0u64, |a, v| a.wrapping_add(*v)));
        }
        Ok(counters)
    }

    /// Runs the program once over `frame` with `BPF_PROG_TEST_RUN` (RX queue 0, no
    /// interface) and returns its verdict. The maps and counters are the live ones.
    ///
    /// The kernel refuses frames shorter than an Ethernet header (14 bytes).
    pub fn test_run(&self, frame: &[u8]) -> Result<XdpAction> {
        self.test_run_on(frame, None)
    }

    /// Like [`Classifier::test_run`], but as if `frame` arrived on `(ifindex, rx_queue)` of
    /// the calling thread's network namespace (the kernel checks that both exist).
    pub fn test_run_on(&self, frame: &[u8], ingress: Option<(u32, u32)>) -> Result<XdpAction> {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex.
        let mut ctx = [0u32; 6];
        if let Some((ifindex, queue)) = ingress {
            ctx[1] = frame.len() as u32;
            ctx[3] = ifindex;
            ctx[4] = queue;
        }
        // SAFETY: ctx is six initialised u32s; viewing them as 24 bytes is always valid.
        let ctx_bytes: &[u8] = unsafe { std::slice::from_raw_parts(ctx.as_ptr().cast(), 24) };
        let program: &Xdp = self
            .ebpf
            .program(PROGRAM_NAME)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| EbpfError::TestRun {
                detail: format!("program {PROGRAM_NAME} is missing"),
            })?;
        let options = TestRunOptions {
            data_in: Some(frame),
            ctx_in: ingress.is_some().then_some(ctx_bytes),
            ..TestRunOptions::default()
        };
        let result = program
            .test_run(options)
            .map_err(|e| EbpfError::TestRun { detail: chain(&e) })?;
        Ok(XdpAction::from(result.return_value))
    }
}

/// Removes the maps pinned in `pin_dir` — the readiness marker first — and the directory
/// itself if it is then empty. Stop every process that uses them first; the kernel frees a
/// map once nothing refers to it.
pub fn remove_pins(pin_dir: &Path) -> std::io::Result<()> {
    for map in std::iter::once(&abi::READY_MAP).chain(abi::MAPS.iter()) {
        match std::fs::remove_file(pin_dir.join(map.name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match std::fs::remove_dir(pin_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map> {
    ebpf.take_map(name).ok_or_else(|| EbpfError::Load {
        detail: format!("the object has no map {name}"),
    })
}

/// Checks every map already pinned in `pin_dir` against this build's map ABI (aya reuses a
/// pinned map without comparing it with the object's definition).
fn check_pinned_maps(pin_dir: &Path) -> Result<()> {
    for spec in abi::MAPS {
        let path = pin_dir.join(spec.name);
        if !path.exists() {
            continue;
        }
        let incompatible = |detail: String| EbpfError::IncompatiblePinnedMap {
            path: path.clone(),
            dir: pin_dir.to_path_buf(),
            detail,
        };
        let info = MapInfo::from_pin(&path).map_err(|e| {
            if is_permission_denied(&e) {
                EbpfError::NotRoot {
                    detail: format!("opening {}: {}", path.display(), chain(&e)),
                }
            } else {
                incompatible(format!("it cannot be opened as a map: {}", chain(&e)))
            }
        })?;
        let map_type = info.map_type().ok();
        let mut differences = Vec::new();
        if map_type != Some(spec.map_type) {
            differences.push(format!("type {map_type:?}, expected {:?}", spec.map_type));
        }
        if info.key_size() as usize != spec.key.1 {
            differences.push(format!(
                "key size {}, expected {}",
                info.key_size(),
                spec.key.1
            ));
        }
        if info.value_size() as usize != spec.value.1 {
            differences.push(format!(
                "value size {}, expected {}",
                info.value_size(),
                spec.value.1
            ));
        }
        if info.max_entries() != spec.max_entries {
            differences.push(format!(
                "max_entries {}, expected {}",
                info.max_entries(),
                spec.max_entries
            ));
        }
        if !differences.is_empty() {
            return Err(incompatible(differences.join(", ")));
        }
    }
    Ok(())
}

fn load_error(error: &(dyn std::error::Error + 'static)) -> EbpfError {
    if is_permission_denied(error) {
        EbpfError::NotRoot {
            detail: chain(error),
        }
    } else {
        EbpfError::Load {
            detail: chain(error),
        }
    }
}

fn attach_error(iface: Iface<'_>, error: &(dyn std::error::Error + 'static)) -> EbpfError {
    if is_permission_denied(error) {
        EbpfError::NotRoot {
            detail: format!("attaching to {iface}: {}", chain(error)),
        }
    } else {
        EbpfError::Attach {
            iface: iface.to_string(),
            detail: chain(error),
        }
    }
}

fn is_not_found(error: &MapError) -> bool {
    if matches!(error, MapError::KeyNotFound | MapError::ElementNotFound) {
        return true;
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.raw_os_error() == Some(libc::ENOENT)
        {
            return true;
        }
        current = e.source();
    }
    false
}
