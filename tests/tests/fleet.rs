//! A fleet of wardend processes sharing one lockout on a real redis-server
//! on 127.0.0.1, driven through real libpam.

use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::pam::PamDir;
use warden_e2e::redis::{fleet_block, unavailable, Redis};

fn skip(test: &str) -> bool {
    if let Some(why) = unavailable() {
        println!("skipping {test}: {why}");
        return true;
    }
    false
}

fn host(redis: &Redis, name: &str, rules: &str, extra_fleet: &str) -> Daemon {
    let d = Daemon::start(&format!(
        "{rules}{NO_FAMILIAR}{}",
        fleet_block(redis, name, extra_fleet)
    ));
    assert!(
        d.wait_for_log("fleet-available", 10),
        "{name} never reached the fleet:\n{}",
        d.log_text()
    );
    d
}

#[test]
fn thirty_two_attempts_over_four_hosts_get_exactly_the_limit() {
    if skip("thirty_two_attempts_over_four_hosts_get_exactly_the_limit") {
        return;
    }
    let redis = Redis::start();
    let rules = user_rule(5, "15m", "15m");
    let hosts: Vec<Daemon> = (0..4)
        .map(|i| host(&redis, &format!("h{i}"), &rules, ""))
        .collect();
    let dirs: Vec<Arc<PamDir>> = hosts
        .iter()
        .map(|h| Arc::new(PamDir::new(&h.socket, "0.3", "")))
        .collect();
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let dir = dirs[i % 4].clone();
            std::thread::spawn(move || dir.attempt("alice", "wrong", Some("198.51.100.7")))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let checks: usize = dirs.iter().map(|d| d.checks()).sum();
    assert_eq!(
        checks,
        5,
        "password checks across 4 hosts with limit 5: {:?}",
        dirs.iter().map(|d| d.checks()).collect::<Vec<_>>()
    );
    // The lock is the fleet's: every host refuses the right password now.
    for (i, d) in dirs.iter().enumerate() {
        let before = d.checks();
        let o = d.attempt("alice", "right", Some("198.51.100.7"));
        assert!(!o.ok(), "host {i} let a locked user in: {o:?}");
        assert_eq!(d.checks(), before, "host {i} ran a check for a locked user");
    }
}

#[test]
fn a_host_killed_holding_places_has_them_counted_at_their_deadline() {
    if skip("a_host_killed_holding_places_has_them_counted_at_their_deadline") {
        return;
    }
    let redis = Redis::start();
    let rules = format!("attempt_timeout = \"1s\"\n{}", user_rule(5, "15m", "15m"));
    let mut a = host(&redis, "a", &rules, "");
    let b = host(&redis, "b", &rules, "");
    // Four attempts begun on A and never ended: A dies holding their places.
    for _ in 0..4 {
        let out = a.request(&["begin", "carol", "--rhost", "203.0.113.9"]);
        assert!(out.contains("allowed: true"), "begin on A: {out}");
    }
    a.kill();
    // While the places are held, B may begin only one more.
    let out = b.request(&["begin", "carol", "--rhost", "203.0.113.9"]);
    assert!(out.contains("allowed: true"), "first begin on B: {out}");
    let out = b.request(&["begin", "carol", "--rhost", "203.0.113.9"]);
    assert!(
        !out.contains("allowed: true"),
        "B went past the limit: {out}"
    );
    // After the deadline (1 s + grace), A's four are abandoned failures:
    // with B's one failure, carol is locked.
    std::thread::sleep(Duration::from_secs(7));
    let dir = PamDir::new(&b.socket, "0", "");
    let o = dir.attempt("carol", "wrong", Some("203.0.113.9"));
    assert!(!o.ok(), "a wrong password logged in: {o:?}");
    let out = redis.cli(&["ZCARD", "w:f:user user=carol"]);
    let locked = redis.cli(&["EXISTS", "w:s:user user=carol"]);
    assert_eq!(
        (out.trim(), locked.trim()),
        ("5", "1"),
        "four abandoned leases and one failure should lock carol"
    );
}
