//! Log lines and lock signals leave only after the commit they describe: a
//! store that holds its commits back, then one that fails them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warden_daemon::config::Config;
use warden_daemon::engine::{Attempt, Effects, Engine, EventKind, Origin};
use warden_daemon::log::Log;
use warden_daemon::service::Warden;
use warden_daemon::store::{AuditQuery, Durability, Snapshot, Store, StoreError, Writer};
use warden_daemon::time::Time;

/// A store whose commits wait for a go-ahead and then succeed or fail as told.
struct GatedStore {
    gate: Mutex<mpsc::Receiver<bool>>,
}

impl Store for GatedStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }
    fn commit(&self, _: &Effects, _: Durability) -> Result<(), StoreError> {
        let ok = self.gate.lock().unwrap().recv().unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(StoreError::write(std::io::Error::from_raw_os_error(28)))
        }
    }
    fn audit(&self, _: &AuditQuery) -> Result<Vec<warden_daemon::engine::Event>, StoreError> {
        Ok(Vec::new())
    }
    fn trim_audit(&self, _: Time) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn set_retention(&self, _: &warden_daemon::config::Audit) {}
    fn size_bytes(&self) -> u64 {
        0
    }
}

fn attempt(user: &str) -> Attempt {
    Attempt {
        service: "sshd".into(),
        user: user.into(),
        rhost: Some("203.0.113.7".into()),
        tty: None,
        ruser: None,
    }
}

fn warden() -> (Arc<Warden>, mpsc::Sender<bool>) {
    let config = Config::parse(
        "[[rule]]\nname = \"user\"\ntrack = [\"user\"]\nlimit = 1\nwindow = \"1h\"\nlockout = \"1h\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    let (go, gate) = mpsc::channel();
    let store: Arc<dyn Store> = Arc::new(GatedStore {
        gate: Mutex::new(gate),
    });
    let engine = Engine::new(config.policy.clone(), 1);
    let writer = Writer::spawn(store.clone()).unwrap();
    let log = Arc::new(Log::stderr());
    let w = Warden::local(config, engine, Vec::new(), store, writer, log, Time::now()).unwrap();
    (Arc::new(w), go)
}

async fn next_lock(
    rx: &mut tokio::sync::broadcast::Receiver<warden_daemon::engine::Event>,
    within: Duration,
) -> Option<warden_daemon::engine::Event> {
    loop {
        match tokio::time::timeout(within, rx.recv()).await {
            Ok(Ok(e)) if e.kind == EventKind::Locked => return Some(e),
            Ok(Ok(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_signalled_only_once_committed() {
    let (w, go) = warden();
    let mut signals = w.subscribe();
    let a = attempt("alice");
    let failing = {
        let w = w.clone();
        tokio::spawn(async move { w.fail(None, &a, Origin::Root, None, Time::now()).await })
    };
    // The engine has decided (the key is locked in memory), the commit waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        next_lock(&mut signals, Duration::from_millis(300))
            .await
            .is_none(),
        "signalled before its commit"
    );
    assert!(!failing.is_finished(), "answered before its commit");
    go.send(true).unwrap();
    let e = next_lock(&mut signals, Duration::from_secs(5))
        .await
        .expect("no signal after the commit");
    assert_eq!(e.user.as_deref(), Some("alice"));
    failing.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_commit_fails_is_never_signalled() {
    let (w, go) = warden();
    let mut signals = w.subscribe();
    go.send(false).unwrap();
    let failed = w
        .fail(None, &attempt("bob"), Origin::Root, None, Time::now())
        .await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(
        next_lock(&mut signals, Duration::from_millis(500))
            .await
            .is_none(),
        "a lock the store refused was signalled"
    );
    // The next lock that does reach the disk is announced as usual.
    go.send(true).unwrap();
    w.fail(None, &attempt("carol"), Origin::Root, None, Time::now())
        .await
        .unwrap();
    let e = next_lock(&mut signals, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e.user.as_deref(), Some("carol"));
}
