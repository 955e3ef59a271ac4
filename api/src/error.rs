//! Errors wardend returns over D-Bus. Each carries a D-Bus name, so that a
//! client can tell them apart without reading the message, and a message
//! that tells the admin what to do next.

/// The prefix of every error name.
pub const ERROR_PREFIX: &str = "org.warden.Warden1.Error";
pub const ERROR_NOT_AUTHORIZED: &str = "org.warden.Warden1.Error.NotAuthorized";
pub const ERROR_INVALID_ARGUMENT: &str = "org.warden.Warden1.Error.InvalidArgument";
pub const ERROR_NOT_FOUND: &str = "org.warden.Warden1.Error.NotFound";
pub const ERROR_UNAVAILABLE: &str = "org.warden.Warden1.Error.Unavailable";
pub const ERROR_BUSY: &str = "org.warden.Warden1.Error.Busy";
pub const ERROR_FAILED: &str = "org.warden.Warden1.Error.Failed";

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.warden.Warden1.Error")]
pub enum BusError {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller's uid may not do this.
    NotAuthorized(String),
    /// An argument is malformed or out of range; the message names it.
    InvalidArgument(String),
    /// What the call names does not exist (a user with no enrollment).
    NotFound(String),
    /// wardend cannot do it now (the store failed, no randomness); trying
    /// again later may work.
    Unavailable(String),
    /// The caller made too many calls; slow down.
    Busy(String),
    /// Anything else: a bug or an internal failure, described.
    Failed(String),
}
