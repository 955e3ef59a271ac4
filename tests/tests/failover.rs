//! The fleet through a Redis failover: a primary, a replica and three
//! Sentinels on 127.0.0.1, started by the test; the primary killed with
//! SIGKILL while logins go on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_e2e::client;
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::redis::{unavailable, Sentinels};
use warden_proto::{AdminRequest, RequestBody, ResponseBody};

fn skip(test: &str) -> bool {
    if let Some(why) = unavailable() {
        println!("skipping {test}: {why}");
        return true;
    }
    false
}

/// An admin call over the host's root socket, as wardenctl makes it when
/// the bus is down; its JSON answer.
fn call(d: &Daemon, method: &str, args: &str) -> serde_json::Value {
    let root = warden_daemon::config::root_socket_for(&d.socket);
    match client::request(
        &root,
        RequestBody::Admin(AdminRequest::Call {
            method: method.into(),
            args: args.into(),
        }),
    ) {
        Ok(ResponseBody::Json(j)) => serde_json::from_str(&j).unwrap_or_default(),
        other => panic!("{method}: {other:?}"),
    }
}

fn healthy(d: &Daemon) -> bool {
    call(d, "FleetStatus", "[]")["healthy"] == true
}

fn host(s: &Sentinels, name: &str) -> Daemon {
    let d = Daemon::start(&format!(
        "{}{NO_FAMILIAR}{}",
        user_rule(1000, "15m", "15m"),
        s.fleet_block(name, "")
    ));
    assert!(d.wait_for_log("fleet-available", 10), "{}", d.log_text());
    d
}

fn lock_exists(port: u16, user: &str) -> bool {
    Sentinels::cli_on(port, &["EXISTS", &format!("w:s:admin user={user}")]).trim() == "1"
}

#[test]
fn a_failover_mid_flood_decides_every_login_and_loses_no_acknowledged_lock() {
    if skip("a_failover_mid_flood_decides_every_login_and_loses_no_acknowledged_lock") {
        return;
    }
    let mut s = Sentinels::start();
    let a = host(&s, "a");
    let b = host(&s, "b");
    // Ten admin locks, each acknowledged after a replica had it (WAIT).
    for i in 0..10 {
        let r = call(
            &a,
            "Lock",
            &format!(r#"["user","ivy{i}",3600,false,"before the kill"]"#),
        );
        assert!(r.is_string(), "lock {i}: {r}");
    }
    assert!(
        !a.log_text().contains("fleet-unreplicated"),
        "{}",
        a.log_text()
    );
    // A flood of failures through B, each timed.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(Duration, bool)>>> = Arc::default();
    let flood = {
        let (stop, seen, socket) = (stop.clone(), seen.clone(), b.socket.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = client::fail(&socket, &format!("flood{}", i % 200), Some("203.0.113.50"));
                let decided = matches!(r, Ok(ResponseBody::Recorded | ResponseBody::Notice { .. }));
                seen.lock().unwrap().push((t.elapsed(), decided));
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let old = s.primary.port;
    let killed = Instant::now();
    s.primary.kill();
    // Serving resumes through the new primary: B, under the flood, notices
    // at once; measured until it is healthy again on the promoted replica.
    let mut gap = None;
    let mut went_down = false;
    while killed.elapsed() < Duration::from_secs(15) {
        let up = healthy(&b);
        went_down |= !up;
        if went_down && up && s.primary_port() != old {
            gap = Some(killed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let _ = flood.join();
    let gap = gap.unwrap_or_else(|| {
        panic!(
            "B never served from a new primary (Sentinels name port {}, was {old}; B: {}):\n{}",
            s.primary_port(),
            call(&b, "FleetStatus", "[]"),
            b.log_text()
        )
    });
    let seen = seen.lock().unwrap();
    let undecided = seen.iter().filter(|(_, ok)| !ok).count();
    let slowest = seen.iter().map(|(d, _)| *d).max().unwrap_or_default();
    println!(
        "failover: served again after {gap:?}; {} logins during the flood, slowest {slowest:?}",
        seen.len()
    );
    for line in b.log_text().lines().filter(|l| l.contains("replayed=")) {
        println!("B: {line}");
    }
    assert_eq!(undecided, 0, "logins left undecided during the failover");
    assert!(
        slowest < Duration::from_secs(2),
        "a login waited {slowest:?}"
    );
    assert!(
        gap < Duration::from_secs(5),
        "serving resumed only after {gap:?}"
    );
    let new = s.primary_port();
    assert_eq!(new, s.replica.port, "the Sentinels promoted something else");
    for i in 0..10 {
        assert!(
            lock_exists(new, &format!("ivy{i}")),
            "lock {i} was lost in the failover"
        );
    }
    // And A, idle through it all, finds the new primary by itself.
    let start = Instant::now();
    while !healthy(&a) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = call(&a, "Lock", r#"["user","after",60,false,"after"]"#);
    assert!(r.is_string(), "{r}");
    assert!(lock_exists(new, "after"));
}

#[test]
fn a_lock_no_replica_had_is_asserted_again_after_the_failover() {
    if skip("a_lock_no_replica_had_is_asserted_again_after_the_failover") {
        return;
    }
    let mut s = Sentinels::start();
    let a = host(&s, "a");
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let replica = Pid::from_raw(s.replica.pid().unwrap() as i32);
    // The replication link paused: the replica stopped, and its link cut
    // from the primary's side (bytes already in its socket would otherwise
    // still reach it), so the lock reaches the primary alone.
    kill(replica, Signal::SIGSTOP).unwrap();
    let cut = s.primary.cli(&["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(cut.trim(), "1", "{cut}");
    let r = call(&a, "Lock", r#"["user","hal",3600,false,"unreplicated"]"#);
    assert!(r.is_string(), "{r}");
    assert!(a.wait_for_log("fleet-unreplicated", 5), "{}", a.log_text());
    // The primary dies before the replica ever had it; the replica resumes
    // and is promoted without the lock.
    s.primary.kill();
    let killed = Instant::now();
    kill(replica, Signal::SIGCONT).unwrap();
    let mut back = None;
    while killed.elapsed() < Duration::from_secs(20) {
        if s.primary_port() == s.replica.port && lock_exists(s.replica.port, "hal") {
            back = Some(killed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let back = back.unwrap_or_else(|| {
        panic!(
            "the lock never came back on the new primary:\n{}",
            a.log_text()
        )
    });
    println!("the lost lock held again {back:?} after the kill");
    assert!(
        a.log_text().contains("fleet-lock-reasserted"),
        "{}",
        a.log_text()
    );
    // From the promotion (about 1.5 s after the kill) within 5 s.
    assert!(back < Duration::from_secs(7), "it took {back:?}");
}
