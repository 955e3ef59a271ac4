//! wardend's admin API on the system D-Bus, for wardenctl and any other client:
//! the names, the types, the error names, the proxy, and the canonical spelling
//! of a lock key. It depends on nothing of the daemon.
// The workspace [lints] table denies these too; said here as well, where a
// reader of the crate looks first.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
pub mod key;
mod proxy;
pub mod text;
mod types;

pub use error::*;
pub use proxy::*;
pub use types::{
    AuditEntry, Explanation, KeyCount, LockEntry, RhostStatus, Status, TotpEnrollment, TotpStatus,
    UserStatus,
};

pub const NAME: &str = "org.warden.Warden1";
pub const PATH: &str = "/org/warden/Warden1";
pub const INTERFACE: &str = "org.warden.Warden1";

/// The group whose members may use the admin methods, unless the config names another.
pub const DEFAULT_ADMIN_GROUP: &str = "warden-admin";
