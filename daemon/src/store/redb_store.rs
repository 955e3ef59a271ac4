//! The embedded store: one redb file in the state directory.

use super::{AuditQuery, Durability, Snapshot, Store, StoreError};
use crate::config::Audit;
use crate::engine::{Effects, Event, KeyId, KeyState};
use crate::time::Time;
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const FAMILIAR: TableDefinition<&str, u64> = TableDefinition::new("familiar");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// The audit log by owner (the event's user, or `@` and its rhost when it
/// names no user), so that one name's events are found, counted and trimmed
/// without reading anyone else's.
const AUDIT_BY: TableDefinition<(&str, u64), ()> = TableDefinition::new("audit_by");
/// How many events each owner has, so that a commit learns whether an owner is
/// over its share without reading the owner's events. Rebuilt from
/// `audit_by` at every start: a wardend of an older release leaves it behind.
const AUDIT_COUNT: TableDefinition<&str, u64> = TableDefinition::new("audit_count");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// TOTP secrets: root-only like the rest of the file, never anywhere else.
const TOTP: TableDefinition<&str, &[u8]> = TableDefinition::new("totp");

/// Bumped whenever the layout of a record changes.
const FORMAT: u64 = 1;
pub const FILE_NAME: &str = "warden.redb";

pub struct RedbStore {
    /// `None` only between a failed commit and a successful reopen.
    db: RwLock<Option<Database>>,
    retention: RwLock<Audit>,
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
                fs::rename(&path, &aside).map_err(|e| StoreError::StateDir {
                    dir: state_dir.display().to_string(),
                    source: std::sync::Arc::new(e),
                })?;
                let store = Self::open_file(&path).map_err(|e| match e {
                    OpenError::Fatal(e) => e,
                    OpenError::Unusable(why) => StoreError::read_msg(why),
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
                return Err(OpenError::Fatal(StoreError::read_msg(format!(
                    "{}: {e}",
                    path.display()
                ))))
            }
            Err(e) => return Err(OpenError::Unusable(e.to_string())),
        };
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
        let store = RedbStore {
            db: RwLock::new(Some(db)),
            retention: RwLock::new(Audit::default()),
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

    fn retention(&self) -> Result<Audit, StoreError> {
        self.retention
            .read()
            .map(|r| r.clone())
            .map_err(|_| StoreError::read_msg("retention lock poisoned".into()))
    }

    fn db(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, StoreError> {
        let guard = self
            .db
            .read()
            .map_err(|_| StoreError::read_msg("store lock poisoned".into()))?;
        if guard.is_none() {
            return Err(StoreError::write_msg(
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
            let mut by = txn.open_table(AUDIT_BY).map_err(|e| e.to_string())?;
            // A store from before the index: build it once.
            if by.is_empty().map_err(|e| e.to_string())? {
                for item in audit.iter().map_err(|e| e.to_string())? {
                    let (seq, bytes) = item.map_err(|e| e.to_string())?;
                    if let Ok(e) = postcard::from_bytes::<Event>(bytes.value()) {
                        by.insert((owner(&e).as_str(), seq.value()), ())
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
            recount(&txn, &by).map_err(|e| e.to_string())?;
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
    let err = |e: std::io::Error| StoreError::StateDir {
        dir: dir.display().to_string(),
        source: std::sync::Arc::new(e),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    // State is root-only, whatever the directory was created with.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
}

fn w<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::write(e)
}

fn r<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::read(e)
}

fn familiar_key(user: &str, source: &str) -> String {
    format!("{user}\0{source}")
}

/// Whose share of the audit log an event counts against.
fn owner(e: &Event) -> String {
    match (&e.user, &e.rhost) {
        (Some(u), _) => u.clone(),
        (None, Some(r)) => format!("@{r}"),
        (None, None) => String::new(),
    }
}

type AuditTable<'t> = redb::Table<'t, u64, &'static [u8]>;
type ByTable<'t> = redb::Table<'t, (&'static str, u64), ()>;
type CountTable<'t> = redb::Table<'t, &'static str, u64>;

/// Counts each owner's events afresh from the index, which is in owner order.
fn recount(txn: &redb::WriteTransaction, by: &ByTable<'_>) -> Result<(), StoreError> {
    txn.delete_table(AUDIT_COUNT).map_err(w)?;
    let mut counts = txn.open_table(AUDIT_COUNT).map_err(w)?;
    let mut run: Option<(String, u64)> = None;
    for item in by.iter().map_err(w)? {
        let (k, _) = item.map_err(w)?;
        let who = k.value().0;
        match &mut run {
            Some((current, n)) if current == who => *n += 1,
            _ => {
                if let Some((current, n)) = run.replace((who.to_string(), 1)) {
                    counts.insert(current.as_str(), n).map_err(w)?;
                }
            }
        }
    }
    if let Some((current, n)) = run {
        counts.insert(current.as_str(), n).map_err(w)?;
    }
    Ok(())
}

/// The audit log's three tables, which change only together: the events, the
/// index by owner and each owner's count.
struct AuditLog<'t> {
    audit: AuditTable<'t>,
    by: ByTable<'t>,
    counts: CountTable<'t>,
}

impl<'t> AuditLog<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<AuditLog<'t>, StoreError> {
        Ok(AuditLog {
            audit: txn.open_table(AUDIT).map_err(w)?,
            by: txn.open_table(AUDIT_BY).map_err(w)?,
            counts: txn.open_table(AUDIT_COUNT).map_err(w)?,
        })
    }

    fn count(&self, who: &str) -> Result<u64, StoreError> {
        Ok(self.counts.get(who).map_err(w)?.map_or(0, |v| v.value()))
    }

    fn set_count(&mut self, who: &str, n: u64) -> Result<(), StoreError> {
        if n == 0 {
            self.counts.remove(who).map_err(w)?;
        } else {
            self.counts.insert(who, n).map_err(w)?;
        }
        Ok(())
    }

    fn insert(&mut self, seq: u64, e: &Event) -> Result<String, StoreError> {
        let bytes = postcard::to_allocvec(e).map_err(w)?;
        self.audit.insert(seq, bytes.as_slice()).map_err(w)?;
        let who = owner(e);
        self.by.insert((who.as_str(), seq), ()).map_err(w)?;
        let n = self.count(&who)?;
        self.set_count(&who, n + 1)?;
        Ok(who)
    }

    fn remove(&mut self, who: &str, seq: u64) -> Result<(), StoreError> {
        self.audit.remove(seq).map_err(w)?;
        if self.by.remove((who, seq)).map_err(w)?.is_some() {
            let n = self.count(who)?;
            self.set_count(who, n.saturating_sub(1))?;
        }
        Ok(())
    }

    /// The sequence numbers of one owner's oldest events, at most `n`.
    fn oldest_of(&self, who: &str, n: usize) -> Result<Vec<u64>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .by
            .range((who, 0)..=(who, u64::MAX))
            .map_err(w)?
            .take(n)
        {
            let (k, _) = item.map_err(w)?;
            out.push(k.value().1);
        }
        Ok(out)
    }

    /// The oldest event and its number; `None` for an event that no longer
    /// decodes.
    fn oldest(&self) -> Result<Option<(u64, Option<Event>)>, StoreError> {
        Ok(self
            .audit
            .first()
            .map_err(w)?
            .map(|(k, v)| (k.value(), postcard::from_bytes::<Event>(v.value()).ok())))
    }

    fn len(&self) -> Result<u64, StoreError> {
        self.audit.len().map_err(w)
    }
}

impl AuditLog<'_> {
    /// Keeps one owner to `max` events: a flood against one name pushes out
    /// that name's own oldest events and no one else's.
    fn cap_owner(&mut self, who: &str, max: u64) -> Result<u64, StoreError> {
        let over = self.count(who)?.saturating_sub(max);
        if over == 0 {
            return Ok(0);
        }
        let seqs = self.oldest_of(who, usize::try_from(over).unwrap_or(usize::MAX))?;
        for seq in &seqs {
            self.remove(who, *seq)?;
        }
        Ok(seqs.len() as u64)
    }

    /// Brings the whole log down to `r.max_events`: first the oldest events of
    /// owners holding more than `r.min_events_per_user`, then, only if that is
    /// not enough, the oldest of all. Also drops events older than `before`.
    fn trim_global(&mut self, r: &Audit, before: Option<Time>) -> Result<u64, StoreError> {
        let mut removed = 0;
        if let Some(before) = before {
            while let Some((seq, e)) = self.oldest()? {
                if e.as_ref().is_some_and(|e| e.time >= before) {
                    break;
                }
                let who = e.as_ref().map(owner).unwrap_or_default();
                self.remove(&who, seq)?;
                removed += 1;
            }
        }
        let mut over = self.len()?.saturating_sub(r.max_events);
        if over == 0 {
            return Ok(removed);
        }
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut doomed: Vec<(u64, String)> = Vec::new();
        for item in self.audit.iter().map_err(w)? {
            if over == 0 {
                break;
            }
            let (seq, bytes) = item.map_err(w)?;
            let who = postcard::from_bytes::<Event>(bytes.value())
                .map(|e| owner(&e))
                .unwrap_or_default();
            let n = match counts.get_mut(&who) {
                Some(n) => n,
                None => {
                    let total = self.count(&who)?;
                    counts.entry(who.clone()).or_insert(total)
                }
            };
            if *n > r.min_events_per_user {
                *n -= 1;
                over -= 1;
                doomed.push((seq.value(), who));
            }
        }
        for (seq, who) in &doomed {
            self.remove(who, *seq)?;
        }
        removed += doomed.len() as u64;
        // Every owner is at its floor and the log is still too long: many
        // names each with a few events. The oldest go, whoever they belong to.
        while over > 0 {
            let Some((seq, e)) = self.oldest()? else {
                break;
            };
            let who = e.as_ref().map(owner).unwrap_or_default();
            self.remove(&who, seq)?;
            removed += 1;
            over -= 1;
        }
        Ok(removed)
    }
}

/// Every key, familiar source and TOTP record, from any read transaction.
fn load_from(txn: &redb::ReadTransaction) -> Result<Snapshot, StoreError> {
    let keys_table = txn.open_table(KEYS).map_err(r)?;
    let mut keys = Vec::with_capacity(usize::try_from(keys_table.len().map_err(r)?).unwrap_or(0));
    for item in keys_table.iter().map_err(r)? {
        let (k, v) = item.map_err(r)?;
        let state: KeyState = postcard::from_bytes(v.value())
            .map_err(|e| StoreError::read_msg(format!("key {:?}: {e}", k.value())))?;
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
            .map_err(|e| StoreError::read_msg(format!("totp record of {:?}: {e}", k.value())))?;
        totp.push((k.value().to_string(), record));
    }
    Ok(Snapshot {
        keys,
        familiar,
        totp,
    })
}

/// Events newest first, from any read transaction.
fn audit_from(txn: &redb::ReadTransaction, q: &AuditQuery) -> Result<Vec<Event>, StoreError> {
    let table = txn.open_table(AUDIT).map_err(r)?;
    let mut out = Vec::new();
    // One user's events come from the index: reading them costs as much
    // as that user has, whatever floods the rest of the log.
    let seqs: Box<dyn Iterator<Item = Result<u64, StoreError>>> = match &q.user {
        Some(u) => {
            let by = txn.open_table(AUDIT_BY).map_err(r)?;
            let mut seqs = Vec::new();
            for item in by
                .range((u.as_str(), 0)..=(u.as_str(), u64::MAX))
                .map_err(r)?
            {
                seqs.push(item.map_err(r)?.0.value().1);
            }
            Box::new(seqs.into_iter().rev().map(Ok))
        }
        None => Box::new(
            table
                .iter()
                .map_err(r)?
                .rev()
                .map(|item| item.map(|(k, _)| k.value()).map_err(r)),
        ),
    };
    for seq in seqs {
        let Some(v) = table.get(seq?).map_err(r)? else {
            continue;
        };
        let Ok(e) = postcard::from_bytes::<Event>(v.value()) else {
            continue;
        };
        if q.since.is_some_and(|s| e.time < s) {
            break;
        }
        if !q.admits(&e) {
            continue;
        }
        out.push(e);
        if q.limit > 0 && out.len() >= q.limit {
            break;
        }
    }
    Ok(out)
}

/// The store opened read-only, for reading it while wardend is stopped
/// (`wardend --read-store`): redb's read-only mode, which writes nothing.
pub struct StoreReader {
    db: ReaderDb,
}

enum ReaderDb {
    ReadOnly(redb::ReadOnlyDatabase),
    /// A file that needs redb's repair (wardend was killed) is read from a
    /// copy in the root-only state directory, repaired there: the store
    /// itself is never written.
    Copy(Database, PathBuf),
}

impl Drop for StoreReader {
    fn drop(&mut self) {
        if let ReaderDb::Copy(_, dir) = &self.db {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl StoreReader {
    pub fn open(state_dir: &Path) -> Result<StoreReader, StoreError> {
        let path = state_dir.join(FILE_NAME);
        match redb::ReadOnlyDatabase::open(&path) {
            Ok(db) => Ok(StoreReader {
                db: ReaderDb::ReadOnly(db),
            }),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                Err(StoreError::InUse(path.display().to_string()))
            }
            Err(redb::DatabaseError::RepairAborted) => Self::from_copy(&path),
            Err(other) => Err(StoreError::read(other)),
        }
    }

    fn from_copy(path: &Path) -> Result<StoreReader, StoreError> {
        // Beside the store, in the root-only state directory: the copy holds
        // TOTP secrets too, and must never land in a shared /tmp.
        let parent = path.parent().unwrap_or(Path::new("/"));
        let dir = parent.join(format!(".read-store-{}", std::process::id()));
        let err = |e: std::io::Error| StoreError::StateDir {
            dir: dir.display().to_string(),
            source: std::sync::Arc::new(e),
        };
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(err)?;
        let copy = dir.join(FILE_NAME);
        let opened = fs::copy(path, &copy)
            .map_err(err)
            .and_then(|_| builder().open(&copy).map_err(StoreError::read));
        match opened {
            Ok(db) => Ok(StoreReader {
                db: ReaderDb::Copy(db, dir),
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        use redb::ReadableDatabase;
        match &self.db {
            ReaderDb::ReadOnly(db) => db.begin_read().map_err(r),
            ReaderDb::Copy(db, _) => db.begin_read().map_err(r),
        }
    }

    pub fn load(&self) -> Result<Snapshot, StoreError> {
        load_from(&self.read()?)
    }

    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<Event>, StoreError> {
        audit_from(&self.read()?, q)
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        load_from(&self.read_txn()?)
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
        audit_from(&self.read_txn()?, q)
    }

    fn trim_audit(&self, before: Time) -> Result<u64, StoreError> {
        let retention = self.retention()?;
        let txn = self.write_txn()?;
        let removed = AuditLog::open(&txn)?.trim_global(&retention, Some(before))?;
        txn.commit().map_err(w)?;
        Ok(removed)
    }

    fn set_retention(&self, audit: &Audit) {
        if let Ok(mut r) = self.retention.write() {
            *r = audit.clone();
        }
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
            let mut log = AuditLog::open(&txn)?;
            let mut owners: Vec<String> = Vec::new();
            for e in &batch.events {
                let who = log.insert(seq, e)?;
                if !owners.contains(&who) {
                    owners.push(who);
                }
                seq += 1;
            }
            if !batch.events.is_empty() {
                let retention = self.retention()?;
                for who in &owners {
                    log.cap_owner(who, retention.max_events_per_user)?;
                }
                // Trimmed here, not only once a minute, so a flood cannot grow
                // the log past its bound in between; a percent of slack keeps
                // it from happening on every commit.
                let slack = retention.max_events / 100 + 1;
                if log.len()? > retention.max_events + slack {
                    log.trim_global(&retention, None)?;
                }
            }
        }
        txn.commit().map_err(w)?;
        self.next_seq
            .store(seq, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}
