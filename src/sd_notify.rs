//! systemd's readiness protocol (`sd_notify(3)`), for `Type=notify` units: a process started
//! by systemd finds the path of a Unix datagram socket in `NOTIFY_SOCKET` and sends it
//! newline-separated `KEY=value` assignments (`READY=1`, `STOPPING=1`, `STATUS=…`) in one
//! datagram. A path starting with `@` is in the abstract namespace (the `@` stands for the
//! leading NUL byte). Without `NOTIFY_SOCKET` nothing is sent.
//!
//! `roamgate gateway` sends `READY=1` once its readiness marker is pinned and `STOPPING=1`
//! when it begins to stop; `roamgate control` sends `READY=1` once its IKE sockets are bound
//! and the data plane's maps are open.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

/// The environment variable systemd sets to the notification socket's path.
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (e.g. `"READY=1\nSTATUS=forwarding"`) to systemd if the process runs under
/// a `Type=notify` unit; returns whether it was sent. A failure is logged as a warning and
/// changes nothing else: the service runs the same with or without systemd.
pub(crate) fn notify(state: &str) -> bool {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return false;
    };
    match notify_to(&socket, state) {
        Ok(()) => {
            tracing::debug!(state, "notified systemd");
            true
        }
        Err(e) => {
            tracing::warn!(
                socket = %socket.to_string_lossy(),
                error = %e,
                "could not notify systemd ({state:?})"
            );
            false
        }
    }
}

/// Sends `state` in one datagram to the notification socket `socket` (an absolute path, or
/// `@name` for an abstract socket).
pub(crate) fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let sender = UnixDatagram::unbound()?;
    let sent = match bytes.first() {
        Some(b'@') => {
            let addr = SocketAddr::from_abstract_name(&bytes[1..])?;
            sender.send_to_addr(state.as_bytes(), &addr)?
        }
        Some(b'/') => sender.send_to(state.as_bytes(), Path::new(socket))?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{NOTIFY_SOCKET}={:?} is neither an absolute path nor an abstract `@` name",
                    socket.to_string_lossy()
                ),
            ));
        }
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", state.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification datagram");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_notification_reaches_a_socket_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1\nSTATUS=forwarding").unwrap();
        assert_eq!(receive(&listener), "READY=1\nSTATUS=forwarding");
        notify_to(path.as_os_str(), "STOPPING=1").unwrap();
        assert_eq!(receive(&listener), "STOPPING=1");
    }

    #[test]
    fn an_at_sign_names_an_abstract_socket() {
        let name = format!("roamgate-sd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        assert_eq!(receive(&listener), "READY=1");
    }

    #[test]
    fn a_relative_or_empty_socket_is_refused_and_a_missing_one_fails() {
        for bad in ["", "relative/notify", "vsock:2:1234"] {
            let err = notify_to(OsStr::new(bad), "READY=1").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(notify_to(dir.path().join("absent").as_os_str(), "READY=1").is_err());
    }
}
