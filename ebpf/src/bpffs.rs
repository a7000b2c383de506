//! Checks made before loading: is the pin directory on a bpffs, may this process load BPF.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use crate::error::{EbpfError, Result};

/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: u64 = 0xcafe_4a11;

/// Where bpffs is mounted by convention.
pub(crate) const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// Whether `path` (which must exist) lies on a bpffs.
pub(crate) fn is_bpffs(path: &Path) -> std::io::Result<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statfs is plain old data; all-zero bytes are a valid value.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is NUL-terminated and outlives the call; stat is a valid, writable statfs.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // f_type's integer type differs between targets; the magic fits in 32 bits.
    #[allow(
        clippy::unnecessary_cast,
        reason = "f_type is i64 on some targets, u32 on others"
    )]
    let f_type = stat.f_type as u64 & 0xffff_ffff;
    Ok(f_type == BPF_FS_MAGIC)
}

/// Fails unless `pin_dir`, or its nearest existing ancestor, is on a bpffs.
pub(crate) fn check_pin_dir(pin_dir: &Path) -> Result<()> {
    let mut existing = pin_dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    let on_bpffs = is_bpffs(existing).unwrap_or(false);
    if on_bpffs {
        return Ok(());
    }
    if pin_dir.starts_with(BPFFS_ROOT) {
        Err(EbpfError::BpffsNotMounted)
    } else {
        Err(EbpfError::NotOnBpffs {
            path: pin_dir.to_path_buf(),
        })
    }
}

/// Fails unless the process is root or holds the capabilities loading needs
/// (`CAP_BPF` or `CAP_SYS_ADMIN`, and `CAP_NET_ADMIN`).
pub(crate) fn check_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    let effective = std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if (has(CAP_BPF) || has(CAP_SYS_ADMIN)) && has(CAP_NET_ADMIN) {
        return Ok(());
    }
    Err(EbpfError::NotRoot {
        detail: "the process is not root and lacks CAP_BPF and CAP_NET_ADMIN".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_dir_outside_bpffs_is_refused_with_a_clear_sentence() {
        let err = check_pin_dir(Path::new("/tmp/roamgate-not-bpffs/instance")).unwrap_err();
        assert!(matches!(err, EbpfError::NotOnBpffs { .. }), "{err}");
        assert!(err.to_string().contains("is not on a bpffs"), "{err}");
    }

    #[test]
    fn the_unmounted_message_says_how_to_mount() {
        let text = EbpfError::BpffsNotMounted.to_string();
        assert_eq!(
            text,
            "bpffs is not mounted at /sys/fs/bpf: run `mount -t bpf bpf /sys/fs/bpf` (or `cargo xtask test`, which mounts it)"
        );
    }
}
