//! The D-Bus proxy to wardend, and errors mapped to wardenctl's exit codes.

use std::fmt;
use warden_daemon::bus::api::{
    AuditEntry, LockEntry, Status, TotpEnrollment, TotpStatus, UserStatus, ERROR_BUSY,
    ERROR_NOT_AUTHORIZED,
};

#[zbus::proxy(
    interface = "org.warden.Warden1",
    default_service = "org.warden.Warden1",
    default_path = "/org/warden/Warden1"
)]
pub trait Warden1 {
    fn status(&self) -> zbus::Result<Status>;
    fn list_locks(&self) -> zbus::Result<Vec<LockEntry>>;
    fn list_failures(
        &self,
        user: &str,
        rhost: &str,
        since: i64,
        limit: u32,
    ) -> zbus::Result<Vec<AuditEntry>>;
    fn unlock(&self, what: &str, value: &str) -> zbus::Result<(u32, Vec<String>)>;
    fn lock(
        &self,
        what: &str,
        value: &str,
        seconds: u64,
        permanent: bool,
        reason: &str,
    ) -> zbus::Result<String>;
    fn get_user_status(&self, user: &str) -> zbus::Result<UserStatus>;
    fn reload_config(&self) -> zbus::Result<String>;
    fn totp_enroll(&self, user: &str) -> zbus::Result<TotpEnrollment>;
    fn totp_confirm(&self, user: &str, code: &str) -> zbus::Result<()>;
    fn totp_status(&self, user: &str) -> zbus::Result<TotpStatus>;
    fn totp_remove(&self, user: &str) -> zbus::Result<bool>;
    fn totp_recovery_codes(&self, user: &str, code: &str) -> zbus::Result<Vec<String>>;
    #[zbus(signal)]
    fn locked(&self, key: &str, rule: &str, until: i64) -> zbus::Result<()>;
    #[zbus(signal)]
    fn unlocked(&self, key: &str, rule: &str, by: &str) -> zbus::Result<()>;
}

/// What went wrong, and so which exit code.
#[derive(Debug)]
pub enum CtlError {
    /// 1
    Failed(String),
    /// 3
    NotAuthorized(String),
    /// 4
    Unreachable(String),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Failed(_) => 1,
            CtlError::NotAuthorized(_) => 3,
            CtlError::Unreachable(_) => 4,
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Failed(m) | CtlError::NotAuthorized(m) | CtlError::Unreachable(m) => {
                f.write_str(m)
            }
        }
    }
}

const NOT_RUNNING: &str =
    "wardend is not on the system bus: is it running? systemctl status wardend";

impl From<zbus::Error> for CtlError {
    fn from(e: zbus::Error) -> CtlError {
        let (name, message) = match &e {
            zbus::Error::MethodError(name, message, _) => (
                name.as_str().to_string(),
                message.clone().unwrap_or_default(),
            ),
            zbus::Error::FDO(fdo) => {
                let name = zbus::DBusError::name(fdo.as_ref()).as_str().to_string();
                (
                    name,
                    zbus::DBusError::description(fdo.as_ref())
                        .unwrap_or_default()
                        .to_string(),
                )
            }
            zbus::Error::InputOutput(_)
            | zbus::Error::Address(_)
            | zbus::Error::Handshake(_)
            | zbus::Error::Connection(..) => {
                return CtlError::Unreachable(format!(
                    "cannot reach the system bus ({e}): is dbus running?"
                ));
            }
            _ => return CtlError::Failed(e.to_string()),
        };
        match name.as_str() {
            ERROR_NOT_AUTHORIZED => CtlError::NotAuthorized(format!("not authorized: {message}")),
            ERROR_BUSY => CtlError::Failed(format!("wardend is limiting your calls: {message}")),
            "org.freedesktop.DBus.Error.AccessDenied" => CtlError::NotAuthorized(format!(
                "not authorized: the bus policy allows root and group warden-admin ({message})"
            )),
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
                CtlError::Unreachable(NOT_RUNNING.into())
            }
            _ => CtlError::Failed(if message.is_empty() { name } else { message }),
        }
    }
}

pub async fn connect() -> Result<Warden1Proxy<'static>, CtlError> {
    let conn = zbus::Connection::system().await?;
    Ok(Warden1Proxy::new(&conn).await?)
}
