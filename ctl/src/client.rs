//! The D-Bus proxy to wardend, and errors mapped to wardenctl's exit codes.

use std::fmt;
pub use warden_api::Warden1Proxy;
use warden_api::{
    DEFAULT_ADMIN_GROUP, ERROR_BUSY, ERROR_INVALID_ARGUMENT, ERROR_NOT_AUTHORIZED, ERROR_NOT_FOUND,
    ERROR_UNAVAILABLE,
};

/// What went wrong, and so which exit code.
#[derive(Debug)]
pub enum CtlError {
    /// 1
    Failed(String),
    /// 3
    NotAuthorized(String),
    /// 4
    Unreachable(String),
    /// 2: the command line cannot be carried out as given.
    Usage(String),
    /// Already told on stderr (by wardend); exits with this code.
    Reported(u8),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Failed(_) => 1,
            CtlError::NotAuthorized(_) => 3,
            CtlError::Unreachable(_) => 4,
            CtlError::Usage(_) => 2,
            CtlError::Reported(code) => *code,
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Failed(m)
            | CtlError::NotAuthorized(m)
            | CtlError::Unreachable(m)
            | CtlError::Usage(m) => f.write_str(m),
            CtlError::Reported(_) => Ok(()),
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
            ERROR_INVALID_ARGUMENT | ERROR_NOT_FOUND => CtlError::Failed(message),
            ERROR_UNAVAILABLE => CtlError::Failed(format!(
                "wardend cannot do this now: {message}; see journalctl -u wardend"
            )),
            "org.freedesktop.DBus.Error.AccessDenied" => CtlError::NotAuthorized(format!(
                "not authorized: the bus policy allows root and group {DEFAULT_ADMIN_GROUP} ({message})"
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
