//! The admin commands wardenctl can still carry out when the system bus is
//! down (the daemon is fine without it): the same D-Bus methods, asked of
//! wardend over its root-only socket, with the answers in the same types.

use crate::client::{connect, CtlError};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use warden_api::{
    AuditEntry, Explanation, LockEntry, RhostStatus, Status, UserStatus, Warden1Proxy,
};
/// Where wardend puts it by default.
pub const DEFAULT_ROOT_SOCKET: &str = "/run/warden/warden-root.sock";

use warden_proto::{
    decode_response, encode_request, read_frame_up_to, write_frame, AdminRequest, ErrorCode,
    RequestBody, ResponseBody, MAX_ADMIN_FRAME,
};

/// How wardend is reached.
pub enum Daemon {
    Bus(Warden1Proxy<'static>),
    /// The root socket, because the bus could not be used.
    Socket(PathBuf),
}

static ROOT_SOCKET: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
static CONFIG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// wardend's configuration (`--config`), which says where the store is.
pub fn set_config(path: PathBuf) {
    let _ = CONFIG.set(path);
}

/// With no wardend answering at all: the store itself, opened read-only by
/// `wardend --read-store` (as pam_faillock's tally needs no daemon). Root
/// only, since the store is root's; says on stderr that it did.
pub fn read_store<T: DeserializeOwned>(what: &str, why: CtlError) -> Result<T, CtlError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(why);
    }
    let mut cmd = std::process::Command::new(crate::commands::wardend_path());
    cmd.args(["--read-store", what]);
    if let Some(c) = CONFIG.get() {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.output().map_err(|e| {
        CtlError::Unreachable(format!(
            "{why}; and wardend could not be run to read the store ({e})"
        ))
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(CtlError::Unreachable(format!(
            "{why}; and the store could not be read: {}",
            err.trim().trim_start_matches("wardend: ")
        )));
    }
    eprintln!(
        "wardenctl: {why}; read the store directly instead (read-only; wardend is not running)"
    );
    serde_json::from_slice(&out.stdout)
        .map_err(|e| CtlError::Failed(format!("the store's answer: {e}")))
}

/// Where the root socket is (`--root-socket`).
pub fn set_root_socket(path: PathBuf) {
    let _ = ROOT_SOCKET.set(path);
}

/// The bus when wardend answers there; else, for root, the root socket,
/// saying so on stderr.
pub async fn open() -> Result<Daemon, CtlError> {
    let default = PathBuf::from(DEFAULT_ROOT_SOCKET);
    let root_socket = ROOT_SOCKET.get().unwrap_or(&default).as_path();
    let bus_error = match connect().await {
        Ok(p) => match p.status().await {
            Ok(_) => return Ok(Daemon::Bus(p)),
            Err(e) => CtlError::from(e),
        },
        Err(e) => e,
    };
    if !matches!(bus_error, CtlError::Unreachable(_)) || !nix::unistd::geteuid().is_root() {
        return Err(bus_error);
    }
    match call::<Status>(root_socket, "Status", json!([])) {
        Ok(_) => {
            eprintln!(
                "wardenctl: {bus_error}; asked wardend over its root socket {} instead",
                root_socket.display()
            );
            Ok(Daemon::Socket(root_socket.to_path_buf()))
        }
        Err(e) => Err(CtlError::Unreachable(format!(
            "{bus_error}; and its root socket {} did not answer either ({e})",
            root_socket.display()
        ))),
    }
}

impl Daemon {
    pub fn over_bus(&self) -> bool {
        matches!(self, Daemon::Bus(_))
    }

    pub async fn status(&self) -> Result<Status, CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p.status().await?),
            Daemon::Socket(s) => call(s, "Status", json!([])),
        }
    }

    pub async fn list_locks(&self) -> Result<Vec<LockEntry>, CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p.list_locks().await?),
            Daemon::Socket(s) => call(s, "ListLocks", json!([])),
        }
    }

    pub async fn get_user_status(&self, user: &str) -> Result<UserStatus, CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p.get_user_status(user).await?),
            Daemon::Socket(s) => call(s, "GetUserStatus", json!([user])),
        }
    }

    /// The fleet report, as JSON (its type is wardend's own).
    pub async fn fleet_status(&self) -> Result<serde_json::Value, CtlError> {
        match self {
            Daemon::Bus(p) => {
                let text = p.fleet_status().await?;
                serde_json::from_str(&text).map_err(|e| {
                    CtlError::Failed(format!(
                        "wardend sent a fleet status that does not parse: {e}"
                    ))
                })
            }
            Daemon::Socket(s) => call(s, "FleetStatus", json!([])),
        }
    }

    pub async fn get_rhost_status(&self, rhost: &str) -> Result<RhostStatus, CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p.get_rhost_status(rhost).await?),
            Daemon::Socket(s) => call(s, "GetRhostStatus", json!([rhost])),
        }
    }

    pub async fn explain(
        &self,
        user: &str,
        rhost: &str,
        service: &str,
        tty: &str,
    ) -> Result<Explanation, CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p.explain(user, rhost, service, tty).await?),
            Daemon::Socket(s) => call(s, "Explain", json!([user, rhost, service, tty])),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn list_events(
        &self,
        user: &str,
        rhost: &str,
        service: &str,
        kinds: &[&str],
        since: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p
                .list_events(user, rhost, service, kinds, since, until, limit)
                .await?),
            Daemon::Socket(s) => call(
                s,
                "ListEvents",
                json!([user, rhost, service, kinds, since, until, limit]),
            ),
        }
    }

    pub async fn lock(
        &self,
        what: &str,
        value: &str,
        seconds: u64,
        permanent: bool,
        reason: &str,
    ) -> Result<String, CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p.lock(what, value, seconds, permanent, reason).await?),
            Daemon::Socket(s) => call(s, "Lock", json!([what, value, seconds, permanent, reason])),
        }
    }

    pub async fn unlock(&self, what: &str, value: &str) -> Result<(u32, Vec<String>), CtlError> {
        match self {
            Daemon::Bus(p) => Ok(p.unlock(what, value).await?),
            Daemon::Socket(s) => call(s, "Unlock", json!([what, value])),
        }
    }
}

/// One admin call on the root socket, after checking that root serves it.
fn call<T: DeserializeOwned>(socket: &Path, method: &str, args: Value) -> Result<T, CtlError> {
    let unreachable = |e: String| CtlError::Unreachable(format!("{}: {e}", socket.display()));
    let mut stream = UnixStream::connect(socket).map_err(|e| unreachable(e.to_string()))?;
    let cred = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| unreachable(e.to_string()))?;
    if cred.uid() != 0 {
        return Err(unreachable(format!(
            "served by uid {}, not root; not asking it",
            cred.uid()
        )));
    }
    let deadline = Some(Duration::from_secs(30));
    let _ = stream.set_read_timeout(deadline);
    let _ = stream.set_write_timeout(deadline);
    let request = encode_request(RequestBody::Admin(AdminRequest::Call {
        method: method.to_string(),
        args: args.to_string(),
    }))
    .map_err(|e| CtlError::Failed(e.to_string()))?;
    write_frame(&mut stream, &request).map_err(|e| unreachable(e.to_string()))?;
    let answer =
        read_frame_up_to(&mut stream, MAX_ADMIN_FRAME).map_err(|e| unreachable(e.to_string()))?;
    match decode_response(&answer) {
        Ok(ResponseBody::Json(text)) => serde_json::from_str(&text)
            .map_err(|e| CtlError::Failed(format!("wardend's answer: {e}"))),
        Ok(ResponseBody::Error { code, message }) => Err(match code {
            ErrorCode::Forbidden => CtlError::NotAuthorized(format!("not authorized: {message}")),
            _ => CtlError::Failed(message),
        }),
        Ok(other) => Err(CtlError::Failed(format!(
            "unexpected answer from wardend: {other:?}"
        ))),
        Err((_, message)) => Err(CtlError::Failed(message)),
    }
}
