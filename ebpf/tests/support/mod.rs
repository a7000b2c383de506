//! Shared test support: a classifier in a pin directory of its own, frame builders, an
//! AF_XDP receive-only socket, and bounded polling.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support code"
)]

pub mod frames;
pub mod net;
pub mod xsk;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use roamgate_ebpf::{Classifier, Counters};

/// Fails the test, loudly and with the reason, unless it runs as root: these tests load BPF
/// programs and make network namespaces, and a skipped test would prove nothing.
pub fn require_root() {
    if let Err(e) = roamgate_lab::require_root() {
        panic!("{e}");
    }
}

/// A pin directory of its own, removed (with its pinned maps) on drop.
pub struct PinDir {
    path: PathBuf,
}

impl PinDir {
    pub fn new(tag: &str) -> PinDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new("/sys/fs/bpf/roamgate-test")
            .join(format!("{}-{n}-{tag}", std::process::id()));
        PinDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = roamgate_ebpf::remove_pins(&self.path);
        // The shared parent goes when the last test process leaves it empty.
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Loads a classifier in a fresh pin directory; panics with the loader's sentence on error.
pub fn classifier(tag: &str) -> (Classifier, PinDir) {
    require_root();
    let dir = PinDir::new(tag);
    let classifier = Classifier::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (classifier, dir)
}

/// Polls `probe` until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Formats the non-zero counters of `c`, for assertion messages.
pub fn show(c: &Counters) -> String {
    c.iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| format!("{}={v}", k.name()))
        .collect::<Vec<_>>()
        .join(" ")
}
