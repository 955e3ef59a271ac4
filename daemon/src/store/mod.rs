//! Durable state behind a trait, so that a shared backend for fleets can be
//! added later without touching the engine.

mod redb_store;
mod writer;

pub use redb_store::{Opened, RedbStore, FILE_NAME};
pub use writer::{Writer, FLUSH_AFTER};

use crate::engine::{Effects, Event, KeyId, KeyState};
use crate::time::Time;
use thiserror::Error;

/// Everything the engine and the TOTP book need back after a restart.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub keys: Vec<(KeyId, KeyState)>,
    pub familiar: Vec<((String, String), Time)>,
    pub totp: Vec<(String, crate::totp::TotpRecord)>,
}

/// A filter on the audit log; newest events first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub rhost: Option<String>,
    pub since: Option<Time>,
    pub limit: usize,
    /// Only these kinds; empty for all.
    pub kinds: Vec<crate::engine::EventKind>,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("the state directory {0} is unusable: {1}")]
    StateDir(String, String),
    #[error("another wardend has the store {0} open; stop it first (systemctl stop wardend)")]
    InUse(String),
    #[error("the store is full or the disk failed: {0}. Free space in the state directory; wardend recovers by itself")]
    Write(String),
    #[error("cannot read the store: {0}")]
    Read(String),
    #[error("the store writer has stopped; restart wardend")]
    WriterGone,
}

/// How soon a commit must reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Survives kill -9 and power loss once `commit` returns.
    Immediate,
    /// Written now, made durable by the next immediate commit. Only for
    /// effects whose loss leaves the state stricter, never looser: a success
    /// that cleared failures, a source remembered as familiar.
    Deferred,
}

pub trait Store: Send + Sync {
    /// Reads back every key and familiar source.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Writes the effects of many operations in one transaction. With
    /// `Immediate`, when it returns `Ok` they and every deferred commit before
    /// them survive kill -9 and power loss; an empty immediate batch only
    /// makes earlier deferred commits durable.
    fn commit(&self, batch: &Effects, durability: Durability) -> Result<(), StoreError>;
    fn audit(&self, query: &AuditQuery) -> Result<Vec<Event>, StoreError>;
    /// Applies retention: nothing older than `before`, and the counts of
    /// [`set_retention`](Store::set_retention). Commits apply the counts too.
    fn trim_audit(&self, before: Time) -> Result<u64, StoreError>;
    /// The audit log's bounds: in all, per user, and each user's floor.
    fn set_retention(&self, audit: &crate::config::Audit);
    fn size_bytes(&self) -> u64;
}
