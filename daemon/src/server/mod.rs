//! The Unix sockets that pam_warden talks to.
//!
//! Two of them: `socket`, which anyone may connect to (a screen locker runs as
//! its user), and `root_socket`, which only root can reach. sshd, sudo, su and
//! login run the module as root and use the second, served by a thread of its
//! own, so that a local user flooding the first cannot delay them.
//!
//! Neither ever waits on D-Bus. Each connection's peer is checked with
//! SO_PEERCRED; connections are capped per uid, every frame has a deadline and
//! so has every connection as a whole.

mod admin_call;
mod conn;
mod handler;
mod limits;
mod peer;

use crate::service::Warden;
use limits::Limits;
use nix::sys::stat::{lstat, Mode, SFlag};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixListener as StdListener;
use std::path::Path;
use std::sync::Arc;
use tokio::net::UnixListener;

/// The first fd systemd passes (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: RawFd = 3;

/// The two listening sockets, bound or taken from systemd.
pub struct Listeners {
    pub public: StdListener,
    pub root: StdListener,
    /// Which of the two systemd passed.
    pub activated: (bool, bool),
}

/// Which socket a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    Public,
    /// Only root can connect here; anyone else is refused on sight.
    Root,
}

/// Takes the sockets systemd passed (matched by path), and binds the others.
/// Call it before any other thread starts: the socket's mode comes from the
/// umask at bind time, never from a chmod that could follow a link.
pub fn listen(public: &Path, root: &Path) -> Result<Listeners, String> {
    let mut passed = from_systemd()?;
    let mut take = |want: &Path| -> Option<StdListener> {
        let i = passed.iter().position(|l| {
            l.local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                .as_deref()
                == Some(want)
        })?;
        Some(passed.swap_remove(i))
    };
    let (pub_passed, root_passed) = (take(public), take(root));
    let activated = (pub_passed.is_some(), root_passed.is_some());
    let public_l = match pub_passed {
        Some(l) => l,
        None => bind(public, 0o666)?,
    };
    let root_l = match root_passed {
        Some(l) => l,
        None => bind(root, 0o600)?,
    };
    Ok(Listeners {
        public: public_l,
        root: root_l,
        activated,
    })
}

/// Binds `path` with exactly `mode`, replacing a stale socket or link there
/// (the directory is root's alone, checked before). Anything else at the path
/// is refused rather than removed.
fn bind(path: &Path, mode: u32) -> Result<StdListener, String> {
    let at = path.display();
    match lstat(path) {
        Ok(st) => {
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if kind != SFlag::S_IFSOCK && kind != SFlag::S_IFLNK {
                return Err(format!(
                    "{at} exists and is not a socket; remove it or choose another path"
                ));
            }
            std::fs::remove_file(path).map_err(|e| format!("cannot remove the old {at}: {e}"))?;
        }
        Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(format!("{at}: {e}")),
    }
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o777 & !mode));
    let bound = StdListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("cannot listen on {at}: {e}"))?;
    // What is there now is the socket just made, with the mode asked for.
    let st = lstat(path).map_err(|e| format!("{at}: {e}"))?;
    if st.st_mode & 0o777 != mode || st.st_uid != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "{at} has mode {:04o} owned by uid {} after binding; something else is writing the directory",
            st.st_mode & 0o777,
            st.st_uid
        ));
    }
    Ok(listener)
}

fn from_systemd() -> Result<Vec<StdListener>, String> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !pid_ok || fds < 1 {
        return Ok(Vec::new());
    }
    Ok((0..fds.min(16))
        .map(|i| {
            // SAFETY: systemd hands us fds 3.. as listening sockets that nothing else owns.
            unsafe { StdListener::from_raw_fd(LISTEN_FDS_START + i) }
        })
        .collect())
}

/// Serves one listening socket until the process ends.
pub async fn serve(listener: StdListener, door: Door, warden: Arc<Warden>) {
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| UnixListener::from_std(listener))
    {
        Ok(l) => l,
        Err(e) => {
            warden.log().error(&format!(
                "listen-failed door={door:?} error={}",
                crate::logline::quote(&e.to_string())
            ));
            return;
        }
    };
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
        tokio::spawn(async move { conn::handle(stream, door, warden, limits).await });
    }
}

/// Serves the root socket on a thread and runtime of its own, so that work
/// queued on the main runtime by local users never delays it.
pub fn serve_root_apart(listener: StdListener, warden: Arc<Warden>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("root-socket".into())
        .spawn(move || rt.block_on(serve(listener, Door::Root, warden)))?;
    Ok(())
}
