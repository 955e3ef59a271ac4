//! The redb store against real files: reopening, corruption, modes, retention,
//! and a writer SIGKILLed right after its acknowledgements.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use warden_daemon::engine::{Effects, Event, EventKind, KeyId, KeyState, Lock, LockedBy};
use warden_daemon::store::{AuditQuery, Durability, RedbStore, Store, Writer, FLUSH_AFTER};
use warden_daemon::time::Time;

fn state(n: u64) -> KeyState {
    let failures = [Time(n), Time(n + 1), Time(n + 2)].into_iter().collect();
    let mut st = KeyState::new(failures, Time(n + 1));
    st.set_lock(Some(Lock {
        since: Time(n),
        until: Some(Time(n + 60_000)),
        length_ms: Some(60_000),
        by: LockedBy::Rule,
    }));
    st.push_lockout(Time(n));
    st
}

fn key(i: u64) -> KeyId {
    KeyId::new("user", [("user", format!("user{i}").as_str())])
}

fn event(i: u64, user: &str) -> Event {
    let mut e = Event::new(Time(1_000_000 + i), EventKind::Failure);
    e.user = Some(user.into());
    e.rhost = Some("203.0.113.7".into());
    e
}

#[test]
fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
        let mut fx = Effects::default();
        fx.keys.push((key(1), Some(state(10))));
        fx.keys.push((key(2), Some(state(20))));
        fx.familiar
            .push((("alice".into(), "192.0.2.1".into()), Some(Time(5))));
        fx.events.push(event(1, "alice"));
        store.commit(&fx, Durability::Immediate).unwrap();
        let mut fx = Effects::default();
        fx.keys.push((key(2), None));
        store.commit(&fx, Durability::Immediate).unwrap();
    }
    let opened = RedbStore::open(dir.path(), Time(0)).unwrap();
    assert!(opened.moved_aside.is_none());
    let snap = opened.store.load().unwrap();
    assert_eq!(snap.keys, vec![(key(1), state(10))]);
    assert_eq!(
        snap.familiar,
        vec![(("alice".into(), "192.0.2.1".into()), Time(5))]
    );
    let audit = opened.store.audit(&AuditQuery::default()).unwrap();
    assert_eq!(audit, vec![event(1, "alice")]);
}

#[test]
fn state_is_root_only() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let opened = RedbStore::open(&dir, Time(0)).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "an open directory is closed down");
    assert_eq!(mode(opened.store.path()), 0o600);
}

#[test]
fn a_corrupt_store_is_moved_aside_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.redb");
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();
    let opened = RedbStore::open(dir.path(), Time(1_700_000_000_000)).unwrap();
    let (aside, why) = opened
        .moved_aside
        .expect("the garbage file must be moved aside");
    assert!(!why.is_empty());
    assert_eq!(aside, dir.path().join("warden.redb.unusable-1700000000"));
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        garbage,
        "the evidence is kept intact"
    );
    assert!(opened.store.load().unwrap().keys.is_empty());
    // The fresh store works.
    let mut fx = Effects::default();
    fx.keys.push((key(1), Some(state(1))));
    opened.store.commit(&fx, Durability::Immediate).unwrap();
}

#[test]
fn a_store_of_an_unknown_format_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join("warden.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("format", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let opened = RedbStore::open(dir.path(), Time(0)).unwrap();
    let (_, why) = opened.moved_aside.expect("format 99 must be moved aside");
    assert!(why.contains("format 99"), "{why}");
}

#[test]
fn audit_queries_filter_and_retention_trims() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
    let mut fx = Effects::default();
    for i in 0..100 {
        fx.events
            .push(event(i, if i % 2 == 0 { "alice" } else { "bob" }));
    }
    store.commit(&fx, Durability::Immediate).unwrap();
    let q = AuditQuery {
        user: Some("alice".into()),
        limit: 3,
        ..Default::default()
    };
    let got = store.audit(&q).unwrap();
    assert_eq!(
        got.iter().map(|e| e.time.0).collect::<Vec<_>>(),
        [1_000_098, 1_000_096, 1_000_094]
    );
    let since = AuditQuery {
        since: Some(Time(1_000_090)),
        ..Default::default()
    };
    assert_eq!(store.audit(&since).unwrap().len(), 10);
    // Keep at most 50, and nothing older than event 60.
    store.set_retention(&retention(50, 1000, 10));
    assert_eq!(store.trim_audit(Time(1_000_060)).unwrap(), 60);
    let left = store.audit(&AuditQuery::default()).unwrap();
    assert_eq!(left.len(), 40);
    assert_eq!(left.last().unwrap().time, Time(1_000_060));
}

fn retention(max: u64, per_user: u64, floor: u64) -> warden_daemon::config::Audit {
    warden_daemon::config::Audit {
        max_events: max,
        max_age: std::time::Duration::from_secs(86_400),
        max_events_per_user: per_user,
        min_events_per_user: floor,
    }
}

fn user_events(store: &RedbStore, user: &str) -> usize {
    let q = AuditQuery {
        user: Some(user.into()),
        ..Default::default()
    };
    store.audit(&q).unwrap().len()
}

#[test]
fn a_flood_for_one_name_never_erases_another_names_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
    store.set_retention(&retention(1000, 200, 20));
    let mut fx = Effects::default();
    for i in 0..30 {
        fx.events.push(event(i, "victim"));
    }
    store.commit(&fx, Durability::Immediate).unwrap();
    // One name floods, in many commits as a real flood arrives.
    for batch in 0..50 {
        let mut fx = Effects::default();
        for i in 0..100 {
            fx.events.push(event(100 + batch * 100 + i, "mallory"));
        }
        store.commit(&fx, Durability::Immediate).unwrap();
    }
    assert_eq!(
        user_events(&store, "victim"),
        30,
        "every one of the victim's events"
    );
    assert_eq!(
        user_events(&store, "mallory"),
        200,
        "the flooder keeps its own newest 200"
    );
    // Many names, each within its cap, past the whole log's bound: the busier
    // names give way first, and no name drops below its floor.
    for batch in 0..20 {
        let mut fx = Effects::default();
        for i in 0..100 {
            fx.events
                .push(event(10_000 + batch * 100 + i, &format!("n{}", i % 10)));
        }
        store.commit(&fx, Durability::Immediate).unwrap();
    }
    store.trim_audit(Time(0)).unwrap();
    let total = store.audit(&AuditQuery::default()).unwrap().len();
    assert!(total <= 1000, "{total}");
    // Oldest first among names above their floor: the victim's oldest ten
    // went, its newest twenty stay whatever else is written.
    assert_eq!(user_events(&store, "victim"), 20);
    for name in ["mallory", "n0", "n9"] {
        assert!(user_events(&store, name) >= 20, "{name}");
    }
}

#[test]
fn the_owner_index_is_built_for_an_older_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
        let mut fx = Effects::default();
        for i in 0..10 {
            fx.events
                .push(event(i, if i < 3 { "alice" } else { "bob" }));
        }
        store.commit(&fx, Durability::Immediate).unwrap();
    }
    // Drop the index as a store written before it existed would lack it.
    {
        let db = redb::Database::open(dir.path().join("warden.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let def: redb::TableDefinition<(&str, u64), ()> = redb::TableDefinition::new("audit_by");
        txn.delete_table(def).unwrap();
        txn.commit().unwrap();
    }
    let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
    assert_eq!(user_events(&store, "alice"), 3);
    assert_eq!(user_events(&store, "bob"), 7);
}

#[test]
fn per_owner_counts_left_stale_by_an_older_release_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let write = |store: &RedbStore, from: u64, n: u64| {
        let mut fx = Effects::default();
        for i in from..from + n {
            fx.events.push(event(i, "mallory"));
        }
        store.commit(&fx, Durability::Immediate).unwrap();
    };
    {
        let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
        store.set_retention(&retention(10_000, 50, 5));
        write(&store, 0, 40);
    }
    // A release without the counts writes 40 more events and no count, as a
    // downgrade and upgrade would leave the file.
    {
        let db = redb::Database::open(dir.path().join("warden.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let by: redb::TableDefinition<(&str, u64), ()> = redb::TableDefinition::new("audit_by");
            let audit: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("audit");
            let mut by = txn.open_table(by).unwrap();
            let mut audit = txn.open_table(audit).unwrap();
            for i in 40..80u64 {
                let bytes = postcard::to_allocvec(&event(i, "mallory")).unwrap();
                audit.insert(i, bytes.as_slice()).unwrap();
                by.insert(("mallory", i), ()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    // Counted afresh at open: the next commit finds mallory over the cap of
    // 50 and trims to it, where a stale count of 40 would have let it grow.
    let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
    store.set_retention(&retention(10_000, 50, 5));
    write(&store, 80, 1);
    assert_eq!(user_events(&store, "mallory"), 50);
    write(&store, 81, 30);
    assert_eq!(user_events(&store, "mallory"), 50);
}

const CHILD_ENV: &str = "WARDEN_STORE_CRASH_CHILD";

/// Not a test on its own: the child half of `acknowledged_writes_survive_sigkill`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.as_ref(), Time(0)).unwrap().store);
    let writer = Writer::spawn(store).unwrap();
    // Eight threads commit concurrently, so acknowledgements come from grouped commits.
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let n = i * 8 + t;
                    let mut fx = Effects::default();
                    fx.keys.push((key(n), Some(state(n))));
                    fx.events.push(event(n, "crash"));
                    writer.commit_blocking(fx).unwrap();
                    println!("ack {n}");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

const DEFERRED_CHILD_ENV: &str = "WARDEN_STORE_DEFERRED_CHILD";

/// Not a test on its own: the child half of `deferred_commits_are_flushed_within_a_second`.
#[test]
fn deferred_child() {
    let Ok(dir) = std::env::var(DEFERRED_CHILD_ENV) else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.as_ref(), Time(0)).unwrap().store);
    let writer = Writer::spawn(store).unwrap();
    let mut fx = Effects::default();
    fx.keys.push((key(1), Some(state(1))));
    writer
        .submit(fx, Durability::Deferred)
        .blocking_recv()
        .unwrap()
        .unwrap();
    println!("deferred");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// A child run of one of this binary's tests against a fresh store directory,
/// to be SIGKILLed in the middle of its work.
struct CrashChild {
    dir: tempfile::TempDir,
    child: std::process::Child,
    /// Its stdout; libtest prints "test name ... " before the test's first line.
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl CrashChild {
    /// Runs `test` with `env` naming the store directory.
    fn spawn(test: &str, env: &str) -> CrashChild {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(env, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        CrashChild { dir, child, lines }
    }

    /// SIGKILL: no destructor, no flush, no chance to finish a commit.
    fn kill(mut self) -> (tempfile::TempDir, std::process::ExitStatus) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        (self.dir, status)
    }
}

#[test]
fn deferred_commits_are_flushed_within_a_second() {
    // A deferred commit has no fsync of its own: killed at once, redb goes back
    // to the last durable commit. The writer flushes within FLUSH_AFTER, so a
    // kill after that finds it.
    let mut child = CrashChild::spawn("deferred_child", DEFERRED_CHILD_ENV);
    let seen = child
        .lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.ends_with("deferred"));
    assert!(seen, "the child never committed");
    std::thread::sleep(FLUSH_AFTER + std::time::Duration::from_millis(700));
    let (dir, _) = child.kill();
    let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
    let snap = store.load().unwrap();
    assert!(
        snap.keys.iter().any(|(k, _)| *k == key(1)),
        "a deferred commit was not made durable within {FLUSH_AFTER:?}"
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut child = CrashChild::spawn("crash_child", CHILD_ENV);
    let mut acked = Vec::new();
    for line in child.lines.by_ref() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked.push(n.parse::<u64>().unwrap());
            if acked.len() == 400 {
                break;
            }
        }
    }
    let (dir, status) = child.kill();
    assert!(!status.success());
    assert_eq!(acked.len(), 400, "the child stopped acknowledging early");

    let store = RedbStore::open(dir.path(), Time(0)).unwrap().store;
    let snap = store.load().unwrap();
    let have: std::collections::HashSet<KeyId> = snap.keys.into_iter().map(|(k, _)| k).collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|n| !have.contains(&key(*n)))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let events = store.audit(&AuditQuery::default()).unwrap();
    assert!(events.len() >= acked.len());
}
