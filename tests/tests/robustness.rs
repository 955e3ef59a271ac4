//! Faults and hostile load against a real wardend: kill -9 mid-flood, a corrupt
//! store, a full disk, a store frozen mid-write, idle and rapid connections, a
//! stopped daemon.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_e2e::client::{fail, locked_keys};
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::disk::{loop_ext4, tmpfs, Frozen};
use warden_e2e::pam::{PamDir, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS, WRONG_PASSWORD};
use warden_e2e::root_or_skip;
use warden_proto::{ErrorCode, ResponseBody};

/// Every failure locks its user at once, so each acknowledgement is a lock.
fn one_strike() -> String {
    format!("{NO_FAMILIAR}{}", user_rule(1, "1h", "1h"))
}

#[test]
fn kill_9_mid_flood_loses_no_acknowledged_failure_or_lock() {
    let mut d = Daemon::start(&one_strike());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (socket, acked, stop) = (d.socket.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let user = format!("flood-{t}-{i}");
                    match fail(&socket, &user, Some("198.51.100.7")) {
                        Ok(ResponseBody::Recorded) => acked.lock().unwrap().push(user),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    d.kill();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the flood was too small to mean much: {}",
        acked.len()
    );

    d.restart();
    let lost: Vec<&String> = acked.iter().filter(|u| !is_locked(&d, u)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged locks lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    println!(
        "kill -9 after {} acknowledged failures: every one is locked after the restart",
        acked.len()
    );
}

/// Reports a failure of `user` every 100 ms until one is recorded, for 5 s at
/// most: how a test sees the store writing again after a fault.
fn recorded_within_5s(d: &Daemon, user: &str) -> bool {
    (0..50).any(|_| {
        let ok = matches!(fail(&d.socket, user, None), Ok(ResponseBody::Recorded));
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    })
}

/// Asks the daemon, as the account phase does, whether the user is locked.
fn is_locked(d: &Daemon, user: &str) -> bool {
    match warden_e2e::client::request(
        &d.socket,
        warden_proto::RequestBody::Account(warden_e2e::client::fields(user, None)),
    ) {
        Ok(ResponseBody::Account { locked, .. }) => locked,
        other => panic!("account {user}: {other:?}"),
    }
}

#[test]
fn a_clean_stop_keeps_the_successes_that_had_no_fsync_yet() {
    // Three failures lock; a success clears the count. Its commit is deferred
    // (no fsync of its own); a clean stop must still leave it on disk.
    let mut d = Daemon::start(&format!("{NO_FAMILIAR}{}", user_rule(3, "1h", "1h")));
    for _ in 0..2 {
        assert!(matches!(
            fail(&d.socket, "carol", None),
            Ok(ResponseBody::Recorded)
        ));
    }
    let success = warden_proto::RequestBody::Succeed {
        attempt: None,
        fields: warden_e2e::client::fields("carol", None),
    };
    assert!(matches!(
        warden_e2e::client::request(&d.socket, success),
        Ok(ResponseBody::Recorded)
    ));
    d.restart();
    // Had the success been lost, this third failure would lock carol.
    assert!(matches!(
        fail(&d.socket, "carol", None),
        Ok(ResponseBody::Recorded)
    ));
    assert!(!is_locked(&d, "carol"), "{}", d.log_text());
}

#[test]
fn a_corrupt_store_is_moved_aside_and_the_daemon_starts_clean() {
    let mut d = Daemon::start(&one_strike());
    assert!(matches!(
        fail(&d.socket, "before", None),
        Ok(ResponseBody::Recorded)
    ));
    d.stop();
    let file = d.state.join("warden.redb");
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &garbage).unwrap();
    d.restart();
    let log = d.log_text();
    assert!(log.contains("store-unusable moved_to="), "{log}");
    let aside: Vec<_> = std::fs::read_dir(&d.state)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("warden.redb.unusable-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), garbage);
    assert!(locked_keys(&d.socket).is_empty(), "started clean");
    assert!(matches!(
        fail(&d.socket, "after", None),
        Ok(ResponseBody::Recorded)
    ));
}

#[test]
fn a_stopped_daemon_cannot_hang_a_login() {
    let d = Daemon::start("");
    let pam = PamDir::new(&d.socket, "0", "timeout_ms=300 on_unavailable=deny");
    d.signal(nix::sys::signal::Signal::SIGSTOP);
    let start = Instant::now();
    let o = pam.attempt("alice", "right", None);
    let took = start.elapsed();
    d.signal(nix::sys::signal::Signal::SIGCONT);
    assert_eq!(o.auth, PAM_AUTHINFO_UNAVAIL, "{o:?}");
    assert!(took < Duration::from_millis(300 + 1500), "took {took:?}");
    // Once it runs again, it serves.
    let pam = PamDir::new(&d.socket, "0", "timeout_ms=2000");
    assert_eq!(pam.attempt("alice", "right", None).auth, PAM_SUCCESS);
}

#[test]
fn idle_and_rapid_connections_do_not_starve_logins() {
    let d = Daemon::start("");
    let pam = PamDir::new(&d.socket, "0", "timeout_ms=1000 on_unavailable=deny");
    // Hundreds of idle connections (root's, which have the larger pool)...
    let idle: Vec<_> = (0..300)
        .map(|_| std::os::unix::net::UnixStream::connect(&d.socket).unwrap())
        .collect();
    assert_eq!(pam.attempt("alice", "wrong", None).auth, WRONG_PASSWORD);
    assert_eq!(pam.attempt("alice", "right", None).auth, PAM_SUCCESS);
    drop(idle);
    // ...and 10,000 connections opened and closed as fast as possible.
    let start = Instant::now();
    for _ in 0..10_000 {
        drop(std::os::unix::net::UnixStream::connect(&d.socket).unwrap());
    }
    println!("10,000 connect/close in {:?}", start.elapsed());
    assert_eq!(pam.attempt("bob", "right", None).auth, PAM_SUCCESS);
}

#[test]
fn a_full_disk_gets_errors_and_recovers_when_space_returns() {
    if !root_or_skip("a_full_disk_gets_errors_and_recovers_when_space_returns") {
        return;
    }
    let mut d = Daemon::start(&one_strike());
    d.stop();
    let _mounted = tmpfs(&d.state, "8m").expect("mount tmpfs");
    d.restart();
    assert!(matches!(
        fail(&d.socket, "early", None),
        Ok(ResponseBody::Recorded)
    ));
    // Fill what is left.
    let filler = d.state.join("filler");
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", filler.display()),
            "bs=64k",
        ])
        .output();
    let mut store_errors = 0;
    let mut recorded_while_full = 0;
    for i in 0..3000 {
        match fail(&d.socket, &format!("full-{i}"), None) {
            Ok(ResponseBody::Error {
                code: ErrorCode::Store,
                ..
            }) => store_errors += 1,
            Ok(ResponseBody::Recorded) => recorded_while_full += 1,
            other => panic!("unexpected answer on a full disk: {other:?}"),
        }
        if store_errors >= 3 {
            break;
        }
    }
    assert!(
        store_errors >= 3,
        "a full disk must give errors ({recorded_while_full} recorded first)"
    );
    assert!(
        d.log_text().contains("store-error") || d.log_text().contains("request-failed"),
        "{}",
        d.log_text()
    );
    // The module follows on_unavailable: deny refuses instead of pretending.
    let pam = PamDir::new(&d.socket, "0", "on_unavailable=deny");
    let o = pam.attempt("someone", "wrong", None);
    assert_ne!(o.auth, PAM_SUCCESS);

    std::fs::remove_file(&filler).unwrap();
    assert!(
        recorded_within_5s(&d, "after-space"),
        "the daemon recovers once space returns:\n{}",
        d.log_text()
    );
    // Not corrupted: a restart opens the same store with what was acknowledged.
    d.restart();
    assert!(!d.log_text().contains("store-unusable"), "{}", d.log_text());
    assert!(
        is_locked(&d, "early") && is_locked(&d, "after-space"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_store_stalled_in_the_kernel_cannot_hang_a_login() {
    let test = "a_store_stalled_in_the_kernel_cannot_hang_a_login";
    if !root_or_skip(test) {
        return;
    }
    // The state directory on its own ext4 in a loop file, so that FIFREEZE can
    // stall every write and fsync of the store, as a dying disk or a hung
    // network block device would, while the rest of the system runs on.
    let mut d = Daemon::start(&one_strike());
    d.stop();
    let image = d.state.with_file_name("state.img");
    let Some(_mounted) = loop_ext4(&image, &d.state, "32M") else {
        println!("SKIP {test}: this machine cannot mount a loop device");
        return;
    };
    d.restart();
    assert!(matches!(
        fail(&d.socket, "before", None),
        Ok(ResponseBody::Recorded)
    ));

    let frozen = Frozen::freeze(&d.state).expect("fsfreeze -f");
    let pam = PamDir::new(&d.socket, "0", "timeout_ms=300 on_unavailable=deny");
    // A failure waits for its fsync, which cannot come: the module gives up at
    // its deadline and refuses, as on_unavailable=deny says.
    let start = Instant::now();
    let o = pam.attempt("stalled", "wrong", None);
    let took = start.elapsed();
    assert_ne!(o.auth, PAM_SUCCESS, "{o:?}");
    assert!(took < Duration::from_millis(300 + 1500), "took {took:?}");
    // Decisions come from memory and successes do not wait for the disk, so
    // a user with a clean record still gets in while the store is stalled.
    let start = Instant::now();
    let o = pam.attempt("innocent", "right", None);
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");
    println!(
        "store frozen: failure refused after {took:?}, clean login in {:?}",
        start.elapsed()
    );

    drop(frozen);
    // Thawed, the queued commit lands: the failure reported during the stall
    // was counted and is durable across a restart.
    assert!(
        recorded_within_5s(&d, "after"),
        "the daemon writes again once thawed:\n{}",
        d.log_text()
    );
    d.restart();
    for user in ["before", "stalled", "after"] {
        assert!(is_locked(&d, user), "{user} lost:\n{}", d.log_text());
    }
}
