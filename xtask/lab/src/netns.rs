//! Network namespaces with unique names that clean up after themselves.
//!
//! A name is `rg<pid>-<n><role>`: the pid of the process that made it (so `cargo xtask lab clean`
//! and [`clean_stale`] can tell a namespace left by a killed run from one in use) and a counter,
//! so tests in one process, and several processes, never collide. Dropping a [`Netns`] kills
//! whatever still runs inside it, deletes it and its `/etc/netns/<name>` folder — also when the
//! test that owns it panics.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{LabError, Result};

/// The prefix of every namespace the lab creates.
pub const PREFIX: &str = "rg";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Fails with a clear sentence unless the process runs as root.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// A network namespace owned by a test; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace whose name ends in `role` (keep it short: `rw`, `gw`, `isp1`).
    pub fn new(role: &str) -> Result<Netns> {
        require_root()?;
        cmd::require("ip")?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}{role}", std::process::id());
        cmd::run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        // No duplicate address detection on the lab's private segments: a tentative IPv6
        // address (link-local included) cannot send neighbour solicitations, which would
        // make the first seconds of every IPv6 test depend on DAD timing.
        for key in [
            "net.ipv6.conf.all.accept_dad",
            "net.ipv6.conf.default.accept_dad",
        ] {
            ns.exec("sysctl", &["-q", "-w", &format!("{key}=0")])?;
        }
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <name> args…` and returns its standard output.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        cmd::run_text("ip", &full)
    }

    /// Runs `program args…` inside the namespace (`ip netns exec`); a non-zero exit is an error.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        cmd::require(program)?;
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        cmd::run("ip", &full)
    }

    /// Like [`Netns::exec`], returning standard output as text.
    pub fn exec_text(&self, program: &str, args: &[&str]) -> Result<String> {
        self.exec(program, args)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// A `std::process::Command` that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// The per-namespace configuration folder `ip netns exec` binds over `/etc`.
    pub fn etc_dir(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.name)
    }

    /// Runs `f` on a thread that has entered the namespace, and returns its result.
    ///
    /// Sockets made inside `f` stay in the namespace and may be used from any thread later.
    /// `f` may borrow from the caller.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let path = Path::new("/run/netns").join(&self.name);
        let file = File::open(&path)
            .map_err(|e| LabError::io(format!("opening {}", path.display()), e))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns on a valid namespace fd only changes this thread's network
                // namespace; the thread ends when the scope does, so no other code runs in it.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(LabError::io(
                        format!("entering namespace {}", self.name),
                        std::io::Error::last_os_error(),
                    ));
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The MAC address of `ifname` inside the namespace.
    pub fn mac(&self, ifname: &str) -> Result<[u8; 6]> {
        let text = self.ip(&["link", "show", "dev", ifname])?;
        let bad = || LabError::Usage(format!("no MAC address for {ifname} in: {text}"));
        let hex = text
            .split("link/ether ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .ok_or_else(bad)?;
        let mut mac = [0u8; 6];
        let mut parts = hex.split(':');
        for m in &mut mac {
            *m = parts
                .next()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)?;
        }
        Ok(mac)
    }

    /// The interface index of `ifname` inside the namespace.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let text = self.ip(&["-o", "link", "show", "dev", ifname])?;
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| LabError::Usage(format!("no index for {ifname} in {}", self.name)))
    }

    /// The pids of the processes that run inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        pids_of(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

fn pids_of(name: &str) -> Vec<i32> {
    cmd::run_text("ip", &["netns", "pids", name])
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills what runs in namespace `name`, deletes it and its `/etc/netns` folder. Never fails:
/// it is called from `Drop`; what it cannot remove it logs.
pub fn remove(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut signal = libc::SIGTERM;
    loop {
        let pids = pids_of(name);
        if pids.is_empty() {
            break;
        }
        for pid in &pids {
            // SAFETY: kill only sends a signal; a stale pid yields ESRCH, which is harmless.
            unsafe { libc::kill(*pid, signal) };
        }
        if Instant::now() > deadline {
            if signal == libc::SIGKILL {
                tracing::warn!(netns = name, ?pids, "processes survive SIGKILL");
                break;
            }
            signal = libc::SIGKILL;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Err(e) = cmd::run("ip", &["netns", "del", name]) {
        tracing::warn!(netns = name, error = %e, "could not delete namespace");
    }
    let etc = Path::new("/etc/netns").join(name);
    if etc.exists()
        && let Err(e) = std::fs::remove_dir_all(&etc)
    {
        tracing::warn!(path = %etc.display(), error = %e, "could not remove");
    }
}

/// Every namespace the lab has made on this machine (by name prefix), with its owner's pid.
pub fn lab_namespaces() -> Vec<(String, Option<u32>)> {
    let Ok(text) = cmd::run_text("ip", &["netns", "list"]) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(|n| {
            let pid = n[PREFIX.len()..]
                .split('-')
                .next()
                .and_then(|p| p.parse().ok());
            (n.to_string(), pid)
        })
        .collect()
}

/// Removes the lab namespaces whose owning process is gone (left by a killed run); returns
/// their names. With `all`, removes every lab namespace, in use or not.
pub fn clean_stale(all: bool) -> Vec<String> {
    let mut removed = Vec::new();
    for (name, pid) in lab_namespaces() {
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if all || !alive {
            remove(&name);
            removed.push(name);
        }
    }
    removed
}

/// Creates a veth pair with one end in each namespace (`a_if` in `a`, `b_if` in `b`), both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    veth_with_queues(a, a_if, b, b_if, 1)
}

/// Like [`veth`], with `queues` TX and RX queues on each end (1 or less: the kernel's default).
///
/// A frame sent on TX queue `q` of one end arrives on RX queue `q` of the other: for an
/// AF_XDP socket in copy mode that is the socket's queue, for a host's own socket the queue
/// the kernel picks by flow hash.
pub fn veth_with_queues(a: &Netns, a_if: &str, b: &Netns, b_if: &str, queues: u16) -> Result<()> {
    let n = queues.to_string();
    // One queue: the kernel's defaults, exactly as before queues could be chosen.
    let counts: &[&str] = if queues > 1 {
        &["numtxqueues", &n, "numrxqueues", &n]
    } else {
        &[]
    };
    let mut args = vec!["link", "add", a_if];
    args.extend_from_slice(counts);
    args.extend_from_slice(&["type", "veth", "peer", "name", b_if]);
    args.extend_from_slice(counts);
    args.extend_from_slice(&["netns", b.name()]);
    a.ip(&args)?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}
