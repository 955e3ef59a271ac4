//! The embedded store: one redb file in the state directory.

use super::{AuditQuery, Durability, Snapshot, Store, StoreError};
use crate::engine::{Effects, Event, KeyId, KeyState};
use crate::time::Time;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const FAMILIAR: TableDefinition<&str, u64> = TableDefinition::new("familiar");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// TOTP secrets: root-only like the rest of the file, never anywhere else.
const TOTP: TableDefinition<&str, &[u8]> = TableDefinition::new("totp");

/// Bumped whenever the layout of a record changes.
const FORMAT: u64 = 1;
pub const FILE_NAME: &str = "warden.redb";

pub struct RedbStore {
    /// `None` only between a failed commit and a successful reopen.
    db: RwLock<Option<Database>>,
    path: PathBuf,
    next_seq: std::sync::atomic::AtomicU64,
    /// Deferred commits since the last immediate one.
    deferred: std::sync::atomic::AtomicBool,
}

/// What opening found, for the daemon to log.
pub struct Opened {
    pub store: RedbStore,
    /// Where an unusable file was moved, and why.
    pub moved_aside: Option<(PathBuf, String)>,
}

impl RedbStore {
    /// Opens (or creates) the store in `state_dir`, making the directory 0700
    /// and the file 0600. A file that is corrupt or of an unknown format is
    /// moved aside and replaced, never reused silently.
    pub fn open(state_dir: &Path, now: Time) -> Result<Opened, StoreError> {
        prepare_dir(state_dir)?;
        let path = state_dir.join(FILE_NAME);
        match Self::open_file(&path) {
            Ok(store) => Ok(Opened {
                store,
                moved_aside: None,
            }),
            Err(OpenError::Fatal(e)) => Err(e),
            Err(OpenError::Unusable(why)) => {
                let aside = state_dir.join(format!("{FILE_NAME}.unusable-{}", now.0 / 1000));
                fs::rename(&path, &aside).map_err(|e| {
                    StoreError::StateDir(state_dir.display().to_string(), e.to_string())
                })?;
                let store = Self::open_file(&path).map_err(|e| match e {
                    OpenError::Fatal(e) => e,
                    OpenError::Unusable(why) => StoreError::Read(why),
                })?;
                Ok(Opened {
                    store,
                    moved_aside: Some((aside, why)),
                })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_file(path: &Path) -> Result<RedbStore, OpenError> {
        let db = match builder().create(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(OpenError::Fatal(StoreError::InUse(
                    path.display().to_string(),
                )))
            }
            Err(DatabaseError::Storage(redb::StorageError::Io(e))) if !is_format_io(&e) => {
                return Err(OpenError::Fatal(StoreError::Read(format!(
                    "{}: {e}",
                    path.display()
                ))))
            }
            Err(e) => return Err(OpenError::Unusable(e.to_string())),
        };
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
        let store = RedbStore {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            next_seq: std::sync::atomic::AtomicU64::new(0),
            deferred: std::sync::atomic::AtomicBool::new(false),
        };
        store.init().map_err(OpenError::Unusable)?;
        Ok(store)
    }

    fn read_txn(&self) -> Result<redb::ReadTransaction, StoreError> {
        match self.db()?.as_ref() {
            Some(db) => db.begin_read().map_err(r),
            None => Err(StoreError::WriterGone),
        }
    }

    fn write_txn(&self) -> Result<redb::WriteTransaction, StoreError> {
        match self.db()?.as_ref() {
            Some(db) => db.begin_write().map_err(w),
            None => Err(StoreError::WriterGone),
        }
    }

    fn db(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, StoreError> {
        let guard = self
            .db
            .read()
            .map_err(|_| StoreError::Read("store lock poisoned".into()))?;
        if guard.is_none() {
            return Err(StoreError::Write(
                "the store could not be reopened after a write error".into(),
            ));
        }
        Ok(guard)
    }

    /// redb refuses every write after an I/O error until it is reopened; a
    /// full disk must heal once space returns, so reopen after each failure.
    fn reopen(&self) {
        let Ok(mut slot) = self.db.write() else {
            return;
        };
        // The old handle holds the file lock: it must go before the new one.
        drop(slot.take());
        *slot = builder().create(&self.path).ok();
    }

    /// Creates the tables, checks the format and finds the next audit number.
    fn init(&self) -> Result<(), String> {
        let guard = self.db().map_err(|e| e.to_string())?;
        let Some(db) = guard.as_ref() else {
            return Err("no database".into());
        };
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        let next = {
            let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
            let format = meta
                .get("format")
                .map_err(|e| e.to_string())?
                .map(|v| v.value());
            match format {
                None => {
                    meta.insert("format", FORMAT).map_err(|e| e.to_string())?;
                }
                Some(FORMAT) => {}
                Some(other) => {
                    return Err(format!(
                        "store format {other} is not the format {FORMAT} this wardend reads"
                    ))
                }
            }
            txn.open_table(KEYS).map_err(|e| e.to_string())?;
            txn.open_table(FAMILIAR).map_err(|e| e.to_string())?;
            txn.open_table(TOTP).map_err(|e| e.to_string())?;
            let audit = txn.open_table(AUDIT).map_err(|e| e.to_string())?;
            let last = audit.last().map_err(|e| e.to_string())?;
            last.map_or(0, |(k, _)| k.value() + 1)
        };
        txn.commit().map_err(|e| e.to_string())?;
        self.next_seq
            .store(next, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

enum OpenError {
    /// Not the file's fault (permissions, lock): do not touch it.
    Fatal(StoreError),
    /// The file itself is bad.
    Unusable(String),
}

/// I/O errors that mean the file is not a redb file, as opposed to errors that
/// say nothing about it (permissions, a full disk).
fn is_format_io(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
    )
}

/// The engine keeps its own copy of every key in memory, so redb's page cache
/// only needs to cover a commit's working set; its default would grow to match
/// the file and double the daemon's memory.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_cache_size(CACHE_BYTES);
    b
}

fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let err = |e: std::io::Error| StoreError::StateDir(dir.display().to_string(), e.to_string());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    // State is root-only, whatever the directory was created with.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
}

fn w<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Write(e.to_string())
}

fn r<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Read(e.to_string())
}

fn familiar_key(user: &str, source: &str) -> String {
    format!("{user}\0{source}")
}

impl Store for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let txn = self.read_txn()?;
        let keys_table = txn.open_table(KEYS).map_err(r)?;
        let mut keys =
            Vec::with_capacity(usize::try_from(keys_table.len().map_err(r)?).unwrap_or(0));
        for item in keys_table.iter().map_err(r)? {
            let (k, v) = item.map_err(r)?;
            let state: KeyState = postcard::from_bytes(v.value())
                .map_err(|e| StoreError::Read(format!("key {:?}: {e}", k.value())))?;
            keys.push((KeyId::from_encoded(k.value()), state));
        }
        let mut familiar = Vec::new();
        for item in txn.open_table(FAMILIAR).map_err(r)?.iter().map_err(r)? {
            let (k, v) = item.map_err(r)?;
            if let Some((user, source)) = k.value().split_once('\0') {
                familiar.push(((user.to_string(), source.to_string()), Time(v.value())));
            }
        }
        let mut totp = Vec::new();
        for item in txn.open_table(TOTP).map_err(r)?.iter().map_err(r)? {
            let (k, v) = item.map_err(r)?;
            let record = postcard::from_bytes(v.value())
                .map_err(|e| StoreError::Read(format!("totp record of {:?}: {e}", k.value())))?;
            totp.push((k.value().to_string(), record));
        }
        Ok(Snapshot {
            keys,
            familiar,
            totp,
        })
    }

    fn commit(&self, batch: &Effects, durability: Durability) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let flush = durability == Durability::Immediate && self.deferred.load(SeqCst);
        if batch.is_empty() && !flush {
            return Ok(());
        }
        let result = self.commit_once(batch, durability);
        match result {
            Ok(()) => self
                .deferred
                .store(durability == Durability::Deferred, SeqCst),
            Err(_) => self.reopen(),
        }
        result
    }

    fn audit(&self, q: &AuditQuery) -> Result<Vec<Event>, StoreError> {
        let txn = self.read_txn()?;
        let table = txn.open_table(AUDIT).map_err(r)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(r)?.rev() {
            let (_, v) = item.map_err(r)?;
            let Ok(e) = postcard::from_bytes::<Event>(v.value()) else {
                continue;
            };
            if q.since.is_some_and(|s| e.time < s) {
                break;
            }
            if !q.kinds.is_empty() && !q.kinds.contains(&e.kind) {
                continue;
            }
            if q.user.as_ref().is_some_and(|u| e.user.as_ref() != Some(u)) {
                continue;
            }
            if q.rhost
                .as_ref()
                .is_some_and(|h| e.rhost.as_ref() != Some(h))
            {
                continue;
            }
            out.push(e);
            if q.limit > 0 && out.len() >= q.limit {
                break;
            }
        }
        Ok(out)
    }

    fn trim_audit(&self, max_events: u64, before: Time) -> Result<u64, StoreError> {
        let txn = self.write_txn()?;
        let removed = {
            let mut table = txn.open_table(AUDIT).map_err(w)?;
            let len = table.len().map_err(w)?;
            let over = len.saturating_sub(max_events);
            let mut removed = 0;
            loop {
                let Some((seq, bytes)) = table
                    .first()
                    .map_err(w)?
                    .map(|(k, v)| (k.value(), v.value().to_vec()))
                else {
                    break;
                };
                let old = postcard::from_bytes::<Event>(&bytes).map_or(true, |e| e.time < before);
                if removed >= over && !old {
                    break;
                }
                table.remove(seq).map_err(w)?;
                removed += 1;
            }
            removed
        };
        txn.commit().map_err(w)?;
        Ok(removed)
    }

    fn size_bytes(&self) -> u64 {
        fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }
}

impl RedbStore {
    fn commit_once(&self, batch: &Effects, durability: Durability) -> Result<(), StoreError> {
        let mut txn = self.write_txn()?;
        if durability == Durability::Deferred {
            txn.set_durability(redb::Durability::None).map_err(w)?;
        }
        let mut seq = self.next_seq.load(std::sync::atomic::Ordering::SeqCst);
        {
            let mut keys = txn.open_table(KEYS).map_err(w)?;
            for (k, st) in &batch.keys {
                match st {
                    Some(st) => {
                        let bytes = postcard::to_allocvec(st).map_err(w)?;
                        keys.insert(k.encoded(), bytes.as_slice()).map_err(w)?;
                    }
                    None => {
                        keys.remove(k.encoded()).map_err(w)?;
                    }
                }
            }
            let mut familiar = txn.open_table(FAMILIAR).map_err(w)?;
            for ((user, source), t) in &batch.familiar {
                let key = familiar_key(user, source);
                match t {
                    Some(t) => {
                        familiar.insert(key.as_str(), t.0).map_err(w)?;
                    }
                    None => {
                        familiar.remove(key.as_str()).map_err(w)?;
                    }
                }
            }
            let mut totp = txn.open_table(TOTP).map_err(w)?;
            for (user, record) in &batch.totp {
                match record {
                    Some(rec) => {
                        let bytes = zeroize::Zeroizing::new(postcard::to_allocvec(rec).map_err(w)?);
                        totp.insert(user.as_str(), bytes.as_slice()).map_err(w)?;
                    }
                    None => {
                        totp.remove(user.as_str()).map_err(w)?;
                    }
                }
            }
            let mut audit = txn.open_table(AUDIT).map_err(w)?;
            for e in &batch.events {
                let bytes = postcard::to_allocvec(e).map_err(w)?;
                audit.insert(seq, bytes.as_slice()).map_err(w)?;
                seq += 1;
            }
        }
        txn.commit().map_err(w)?;
        self.next_seq
            .store(seq, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}
