//! The Unix socket that pam_warden talks to.
//!
//! It never waits on D-Bus. Each connection's peer is checked with SO_PEERCRED;
//! connections are capped per uid (root apart, so local users cannot crowd out
//! sshd and sudo) and every frame has a read deadline.

mod conn;
mod handler;
mod limits;
mod peer;

use crate::service::Warden;
use limits::Limits;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::net::UnixListener;

/// The first fd systemd passes (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: RawFd = 3;

/// Takes the socket from systemd when it passed one, or binds `path`.
pub fn listen(path: &Path) -> std::io::Result<(UnixListener, bool)> {
    if let Some(listener) = from_systemd()? {
        return Ok((listener, true));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        // Unprivileged PAM callers (screen lockers) must reach the socket.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    // Anyone may connect; what a peer may do is decided by its credentials.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok((listener, false))
}

fn from_systemd() -> std::io::Result<Option<UnixListener>> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !pid_ok || fds < 1 {
        return Ok(None);
    }
    // SAFETY: systemd hands us fd 3 as a listening socket that nothing else owns.
    let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(LISTEN_FDS_START) };
    std_listener.set_nonblocking(true)?;
    UnixListener::from_std(std_listener).map(Some)
}

pub async fn serve(listener: UnixListener, warden: Arc<Warden>) {
    let limits = Arc::new(Limits::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and friends: back off rather than spin.
                warden.log().error(&format!(
                    "accept-failed error={}",
                    crate::logline::quote(&e.to_string())
                ));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let warden = warden.clone();
        let limits = limits.clone();
        tokio::spawn(async move { conn::handle(stream, warden, limits).await });
    }
}
