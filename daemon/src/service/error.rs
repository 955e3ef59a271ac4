//! What can go wrong in the service, kept typed up to the transports, which
//! turn each kind into a D-Bus error name or a socket error code.

use crate::engine::AttemptError;
use crate::store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Attempt(#[from] AttemptError),
    #[error("internal error: the engine lock is poisoned; restart wardend")]
    Poisoned,
    #[error(transparent)]
    Totp(#[from] TotpError),
    /// The caller may not do this; the message says who may.
    #[error("{0}")]
    NotAuthorized(String),
    /// An argument the caller gave is malformed; the message says how to write it.
    #[error("{0}")]
    Invalid(String),
    /// The fleet's Redis cannot be reached for something only it knows.
    #[error("the fleet's Redis cannot be reached ({0}); check it, and see wardenctl fleet status")]
    Unavailable(String),
    /// A blocking task did not come back.
    #[error("internal error: {0}; see the log, and restart wardend if it repeats")]
    Task(String),
}

#[derive(Debug, Error)]
pub enum TotpError {
    #[error("no randomness for a secret ({0}); check the kernel's random source, then try again")]
    NoRandomness(#[source] getrandom::Error),
    #[error("{0} is not enrolled; run wardenctl totp enroll {0} first")]
    NotEnrolled(String),
    #[error("{0} already has a confirmed code; remove it first (wardenctl totp remove {0})")]
    AlreadyConfirmed(String),
    #[error("{0}'s code is already confirmed")]
    AlreadyActive(String),
    #[error("that code does not match; check the authenticator's clock and try the next code")]
    WrongCode,
    #[error("cannot build the TOTP record: {0}; this is a bug, please report it")]
    Record(String),
}
