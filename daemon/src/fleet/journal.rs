//! What this host decided alone while Redis was away, to be told to the
//! fleet when it returns. Each entry is written and fsynced before the
//! login it records is answered, so a restart during an outage loses none.
//! Replays are idempotent: a failure carries its attempt's own id, which
//! Redis counts once however often it hears it.

use super::Spec;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const FILE_NAME: &str = "fleet-journal.jsonl";
/// Locks no replica had acknowledged when their reply went out.
pub const UNREPLICATED: &str = "fleet-unreplicated.jsonl";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Entry {
    Fail {
        id: String,
        at: u64,
        keys: Vec<Spec>,
        service: String,
        user: String,
        rhost: Option<String>,
    },
    Lock {
        k: String,
        len: i64,
        uid: u32,
        why: String,
    },
    /// An admin's unlock: who, and what (`user=NAME`, `rhost=ADDR`, `key=KEY`, `all`).
    Unlock { uid: u32, selector: String },
    /// Places of an attempt that ended while Redis was away, to be freed.
    Release { id: String, keys: Vec<String> },
    /// A lock no replica acknowledged: asserted again after a failover.
    Assert(super::wire::LockOut),
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        Journal::open_named(dir, FILE_NAME)
    }

    pub fn open_named(dir: &Path, name: &str) -> std::io::Result<Journal> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, e: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(e).map_err(std::io::Error::other)?;
        line.push('\n');
        let f = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        (&*f).write_all(line.as_bytes())?;
        f.sync_data()
    }

    /// Every entry, oldest first. A torn last line (a crash mid-write) is
    /// skipped: its login was never answered.
    pub fn entries(&self) -> std::io::Result<Vec<Entry>> {
        let f = File::open(&self.path)?;
        Ok(BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect())
    }

    pub fn len(&self) -> usize {
        self.entries().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the journal once its first `replayed` entries have been
    /// replayed, unless more came meanwhile: false then, and the caller
    /// replays again (which is harmless).
    pub fn clear(&self, replayed: usize) -> std::io::Result<bool> {
        let f = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        if self.entries()?.len() != replayed {
            return Ok(false);
        }
        f.set_len(0)?;
        f.sync_data()?;
        Ok(true)
    }
}
