//! Supervised processes: each writes to its own log file in the test's folder and is stopped
//! when dropped (SIGTERM, then SIGKILL).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// A child process owned by a test.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Supervised {
    /// Starts `command` with standard output and error appended to `<logs>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, logs: &Path) -> Result<Supervised> {
        let log = logs.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| LabError::io(format!("opening {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("duplicating a log handle", e))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::io(format!("starting {name}: {command:?}"), e))?;
        tracing::debug!(name, pid = child.id(), log = %log.display(), "started");
        Ok(Supervised {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Fails with the tail of its log if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(LabError::Command {
                command: self.name.clone(),
                status: status.to_string(),
                stderr: tail(&self.log, 20),
            }),
            Err(e) => Err(LabError::io(format!("polling {}", self.name), e)),
        }
    }

    /// Stops the process (SIGTERM, SIGKILL after `grace`) and reaps it.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill only sends a signal to our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// The last `lines` lines of a file, for error messages. A backtrace an error report ends
/// with (anyhow prints one when `RUST_BACKTRACE` is set, as under `cargo test`) is left
/// out: the error's own lines come before it.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Stack backtrace:"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    logs: &Path,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            return Err(LabError::Timeout {
                what: what.to_string(),
                seconds: timeout.as_secs_f64(),
                logs: logs.to_path_buf(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pins thread `tid` (0: the calling thread; a process id pins its main thread) to CPU `cpu`,
/// so that a benchmark or test knows which core does the work.
pub fn pin_to_cpu(tid: i32, cpu: usize) -> Result<()> {
    if cpu >= 8 * size_of::<libc::cpu_set_t>() {
        return Err(LabError::Usage(format!("CPU {cpu} is beyond the CPU set")));
    }
    // SAFETY: cpu_set_t is plain old data; zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside the set; cpu is below its size (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: set is a valid cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(LabError::io(
            format!("pinning thread {tid} to CPU {cpu}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Pins every thread of process `pid` to CPU `cpu`.
pub fn pin_all_threads(pid: u32, cpu: usize) -> Result<()> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| LabError::io(format!("reading {dir}"), e))?;
    for task in tasks.flatten() {
        if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
            pin_to_cpu(tid, cpu)?;
        }
    }
    Ok(())
}
