//! Durable state behind a trait, so that a shared backend for fleets can be
//! added later without touching the engine.

mod redb_store;
mod writer;

pub use redb_store::{Opened, RedbStore, StoreReader, FILE_NAME};
pub use writer::{Done, Then, Writer, FLUSH_AFTER};

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
    /// Nothing newer than this.
    pub until: Option<Time>,
    pub service: Option<String>,
    pub limit: usize,
    /// Only these kinds; empty for all.
    pub kinds: Vec<crate::engine::EventKind>,
}

impl AuditQuery {
    /// Whether an event passes every filter but `limit`.
    pub fn admits(&self, e: &crate::engine::Event) -> bool {
        self.since.is_none_or(|s| e.time >= s)
            && self.until.is_none_or(|u| e.time <= u)
            && self
                .service
                .as_ref()
                .is_none_or(|s| e.service.as_ref() == Some(s))
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self
                .user
                .as_ref()
                .is_none_or(|u| e.user.as_ref() == Some(u))
            && self
                .rhost
                .as_ref()
                .is_none_or(|h| e.rhost.as_ref() == Some(h))
    }
}

/// The error under a store error, kept whole so that the log shows its chain.
/// Shared, since one failed commit answers every operation in its batch.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Debug, Error)]
pub enum StoreError {
    #[error("the state directory {dir} is unusable: {source}")]
    StateDir {
        dir: String,
        #[source]
        source: Cause,
    },
    #[error("another wardend has the store {0} open; stop it first (systemctl stop wardend)")]
    InUse(String),
    #[error("the store is full or the disk failed: {source}. Free space in the state directory; wardend recovers by itself")]
    Write {
        #[source]
        source: Cause,
    },
    #[error("cannot read the store: {source}")]
    Read {
        #[source]
        source: Cause,
    },
    #[error("the store writer has stopped; restart wardend")]
    WriterGone,
}

impl StoreError {
    pub fn write(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Write {
            source: std::sync::Arc::new(e),
        }
    }

    pub fn read(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Read {
            source: std::sync::Arc::new(e),
        }
    }

    /// A read error that has only words: a record that does not decode.
    pub fn read_msg(what: String) -> StoreError {
        StoreError::Read {
            source: std::sync::Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(what)),
        }
    }

    pub fn write_msg(what: String) -> StoreError {
        StoreError::Write {
            source: std::sync::Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(what)),
        }
    }
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
