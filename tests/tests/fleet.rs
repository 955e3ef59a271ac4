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

/// A host with a bus of its own, so each wardend owns the well-known name
/// on its bus as it does on its machine.
struct BusHost {
    bus: warden_e2e::bus::Bus,
    daemon: Daemon,
    watch: std::process::Child,
    watch_out: std::path::PathBuf,
}

fn bus_host(redis: &Redis, name: &str, rules: &str, fleet_extra: &str) -> BusHost {
    let bus = warden_e2e::bus::Bus::start();
    let daemon = Daemon::start_with_env(
        &format!(
            "{rules}{NO_FAMILIAR}{}",
            fleet_block(redis, name, fleet_extra)
        ),
        &bus.env(),
    );
    assert!(
        daemon.wait_for_log("fleet-available", 10),
        "{}",
        daemon.log_text()
    );
    assert!(warden_e2e::bus::wait_for_daemon(&bus.address));
    let watch_out = daemon.dir.path().join("watch.out");
    let out = std::fs::File::create(&watch_out).unwrap_or_else(|e| panic!("{e}"));
    let watch = std::process::Command::new(warden_e2e::paths::wardenctl())
        .args(["--json", "watch"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("wardenctl watch: {e}"));
    BusHost {
        bus,
        daemon,
        watch,
        watch_out,
    }
}

impl BusHost {
    fn ctl(&self, args: &[&str]) -> warden_e2e::bus::Ctl {
        warden_e2e::bus::wardenctl(&self.bus.address, None, args)
    }

    fn watched(&self) -> String {
        std::fs::read_to_string(&self.watch_out).unwrap_or_default()
    }

    /// Waits up to `secs` for the watch to have printed `needle`.
    fn saw(&self, needle: &str, secs: u64) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if self.watched().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for BusHost {
    fn drop(&mut self) {
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}

#[test]
fn a_lock_through_one_host_holds_on_all_and_an_unlock_through_another_lifts_it() {
    if skip("a_lock_through_one_host_holds_on_all_and_an_unlock_through_another_lifts_it") {
        return;
    }
    let redis = Redis::start();
    let rules = user_rule(5, "15m", "15m");
    let hosts: Vec<BusHost> = ["a", "b", "c"]
        .iter()
        .map(|n| bus_host(&redis, n, &rules, ""))
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // the watches subscribe
    let pam: Vec<PamDir> = hosts
        .iter()
        .map(|h| PamDir::new(&h.daemon.socket, "0", ""))
        .collect();
    let lock = hosts[0].ctl(&["lock", "dave", "--for", "1h", "--reason", "on-call test"]);
    assert_eq!(lock.code, 0, "lock through A: {lock:?}");
    // Enforced on B at its next attempt: no password check runs there.
    let o = pam[1].attempt("dave", "right", Some("192.0.2.44"));
    assert!(!o.ok(), "B let in a user locked through A: {o:?}");
    assert_eq!(
        pam[1].checks(),
        0,
        "B ran a password check for a locked user"
    );
    for (h, name) in hosts.iter().zip(["a", "b", "c"]) {
        assert!(
            h.saw("\"locked\"", 5),
            "watch on {name} never saw the lock: {}",
            h.watched()
        );
    }
    // Every host is seen, with the same rules.
    let start = Instant::now();
    let mut report = serde_json::Value::Null;
    while start.elapsed() < Duration::from_secs(6) {
        let st = hosts[0].ctl(&["--json", "fleet", "status"]);
        assert_eq!(st.code, 0, "fleet status: {st:?}");
        report = serde_json::from_str(&st.stdout).unwrap_or(serde_json::Value::Null);
        if report["hosts"].as_array().map_or(0, Vec::len) == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(
        report["hosts"].as_array().map_or(0, Vec::len),
        3,
        "{report}"
    );
    let text = hosts[1].ctl(&["fleet", "status"]);
    assert!(
        text.stdout.contains("healthy") && !text.stdout.contains("different policies"),
        "{text:?}"
    );
    // C, which saw nothing of dave, explains the refusal from the fleet.
    let why = hosts[2].ctl(&["--json", "explain", "dave", "--rhost", "192.0.2.44"]);
    assert_eq!(why.code, 0, "explain on C: {why:?}");
    assert!(
        why.stdout.contains("on-call test") && why.stdout.contains("admin user=dave"),
        "C's explain does not show A's lock: {}",
        why.stdout
    );
    // A range lock the fleet could not enforce is refused, not taken.
    let range = hosts[0].ctl(&["lock", "--rhost", "192.0.2.0/24", "--for", "1h"]);
    assert_ne!(range.code, 0, "a range lock was taken: {range:?}");
    assert!(range.stderr.contains("range"), "{range:?}");
    // B's and C's lists show the fleet's lock.
    let locks = hosts[2].ctl(&["--json", "locks"]);
    assert!(locks.stdout.contains("dave"), "locks on C: {locks:?}");
    let unlock = hosts[2].ctl(&["unlock", "dave"]);
    assert_eq!(unlock.code, 0, "unlock through C: {unlock:?}");
    for (h, name) in hosts.iter().zip(["a", "b", "c"]) {
        assert!(
            h.saw("\"unlocked\"", 5),
            "watch on {name} never saw the unlock: {}",
            h.watched()
        );
    }
    let o = pam[0].attempt("dave", "right", Some("192.0.2.44"));
    assert!(o.ok(), "A still refuses after the unlock through C: {o:?}");
    let o = pam[1].attempt("dave", "right", Some("192.0.2.44"));
    assert!(o.ok(), "B still refuses after the unlock through C: {o:?}");
    // C saw none of dave's attempts, yet its history has the fleet's: B's
    // refusal, A's and B's successes, the lock and the unlock.
    let start = Instant::now();
    let mut kinds = Vec::new();
    while start.elapsed() < Duration::from_secs(5) {
        let h = hosts[2].ctl(&["--json", "history", "--user", "dave"]);
        assert_eq!(h.code, 0, "history on C: {h:?}");
        let v: serde_json::Value = serde_json::from_str(&h.stdout).unwrap_or_default();
        kinds = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["kind"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let has = |k: &str| kinds.iter().any(|x| x == k);
        if has("refused")
            && has("locked")
            && has("unlocked")
            && kinds.iter().filter(|k| *k == "success").count() >= 2
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for k in ["refused", "locked", "unlocked", "success"] {
        assert!(
            kinds.iter().any(|x| x == k),
            "C's history lacks {k}: {kinds:?}"
        );
    }
    // A lock that runs out ends once on every host: the fleet's sweep and a
    // host's own clock do not both announce it.
    let lock = hosts[0].ctl(&["lock", "eve", "--for", "2s"]);
    assert_eq!(lock.code, 0, "{lock:?}");
    let ended = |h: &BusHost| {
        h.watched()
            .lines()
            .filter(|l| l.contains("\"unlocked\"") && l.contains("user=eve"))
            .count()
    };
    let start = Instant::now();
    while hosts.iter().any(|h| ended(h) == 0) && start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Both clocks have had their chance to announce it.
    std::thread::sleep(Duration::from_secs(2));
    for (h, name) in hosts.iter().zip(["a", "b", "c"]) {
        let ends = ended(h);
        assert_eq!(
            ends,
            1,
            "{name} announced eve's lock ending {ends} times: {}",
            h.watched()
        );
    }
    // Every host timed the lock's way to its signal.
    let st = hosts[1].ctl(&["--json", "fleet", "status"]);
    let report: serde_json::Value = serde_json::from_str(&st.stdout).unwrap_or_default();
    assert!(report["signals"].as_u64().unwrap_or(0) >= 2, "{report}");
}

#[test]
fn with_redis_gone_hosts_decide_alone_then_replay_what_they_saw() {
    if skip("with_redis_gone_hosts_decide_alone_then_replay_what_they_saw") {
        return;
    }
    let mut redis = Redis::start();
    let rules = user_rule(3, "15m", "15m");
    let a = host(&redis, "a", &rules, "");
    let b = host(&redis, "b", &rules, "");
    let pam_a = PamDir::new(&a.socket, "0", "timeout_ms=2000");
    let pam_b = PamDir::new(&b.socket, "0", "timeout_ms=2000");
    redis.kill();
    // Every login is still decided, within the module's timeout, by A's own
    // engine: three failures lock erin there.
    for i in 0..4 {
        let start = Instant::now();
        let o = pam_a.attempt("erin", "wrong", Some("198.51.100.20"));
        assert!(!o.ok());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "attempt {i} took {:?} with Redis down",
            start.elapsed()
        );
    }
    assert_eq!(pam_a.checks(), 3, "A alone still holds erin to the limit");
    assert!(a.wait_for_log("fleet-unavailable", 5), "{}", a.log_text());
    // Redis returns, empty: A replays its three failures, which lock erin
    // in the fleet, and B refuses her too.
    redis.start_again();
    assert!(
        a.wait_for_log("replayed=3", 10),
        "A did not replay: {}",
        a.log_text()
    );
    assert!(b.wait_for_log("fleet-available", 10));
    for line in a.log_text().lines().filter(|l| l.contains("replayed=")) {
        println!("A: {line}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut refused = false;
    while Instant::now() < deadline && !refused {
        let o = pam_b.attempt("erin", "right", Some("198.51.100.20"));
        refused = !o.ok();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(refused, "B lets erin in after A's failures were replayed");
    let lock = redis.cli(&["EXISTS", "w:s:user user=erin"]);
    assert_eq!(lock.trim(), "1", "the fleet holds erin's lock");
}

#[test]
fn over_tls_the_fleet_works_and_a_server_from_another_ca_is_refused() {
    if skip("over_tls_the_fleet_works_and_a_server_from_another_ca_is_refused") {
        return;
    }
    let redis = Redis::start_tls();
    let rules = user_rule(3, "15m", "15m");
    let ca = format!("tls_ca = \"{}\"\n", redis.ca().display());
    let a = host(&redis, "a", &rules, &ca);
    let b = host(&redis, "b", &rules, &ca);
    let pam_a = PamDir::new(&a.socket, "0", "");
    let pam_b = PamDir::new(&b.socket, "0", "");
    for _ in 0..3 {
        assert!(!pam_a.attempt("fay", "wrong", Some("198.51.100.30")).ok());
    }
    let o = pam_b.attempt("fay", "right", Some("198.51.100.30"));
    assert!(!o.ok(), "B let in a user locked through A over TLS: {o:?}");
    assert_eq!(pam_b.checks(), 0);
    // A host that trusts another CA never talks to this server: it says so,
    // and decides alone.
    let other = format!(
        "tls_ca = \"{}\"\n",
        redis.dir.path().join("other-ca.pem").display()
    );
    let c = Daemon::start(&format!(
        "{rules}{NO_FAMILIAR}{}",
        fleet_block(&redis, "c", &other)
    ));
    assert!(c.wait_for_log("fleet-unavailable", 10), "{}", c.log_text());
    assert!(
        !c.log_text().contains("fleet-available"),
        "{}",
        c.log_text()
    );
    let pam_c = PamDir::new(&c.socket, "0", "");
    let o = pam_c.attempt("fay", "right", Some("198.51.100.30"));
    assert!(o.ok(), "C, deciding alone, knows no lock on fay: {o:?}");
}

#[test]
fn a_redis_that_may_evict_keys_is_refused_at_start() {
    if skip("a_redis_that_may_evict_keys_is_refused_at_start") {
        return;
    }
    let redis = Redis::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(
        &config,
        format!(
            "socket = \"{}\"\nstate_dir = \"{}\"\n{}",
            dir.path().join("run/w.sock").display(),
            dir.path().join("state").display(),
            fleet_block(&redis, "a", "")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(warden_e2e::paths::wardend())
        .arg("--config")
        .arg(&config)
        .arg("--log-stderr")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "wardend served from an evicting Redis: {err}"
    );
    assert!(
        err.contains("allkeys-lru") && err.contains("noeviction"),
        "the refusal does not say why and what to do: {err}"
    );
}

#[test]
fn a_host_with_the_shipped_acl_reaches_its_prefix_and_nothing_else() {
    if skip("a_host_with_the_shipped_acl_reaches_its_prefix_and_nothing_else") {
        return;
    }
    let redis = Redis::start();
    let acl = std::fs::read_to_string(warden_e2e::paths::repo_file(
        "packaging/redis/warden-acl.conf",
    ))
    .unwrap();
    let line = acl.lines().find(|l| l.starts_with("user ")).unwrap();
    let pw = "s3cret-for-host-a-7f1c";
    let mut args = vec!["ACL".to_string(), "SETUSER".to_string()];
    args.extend(
        line.split_whitespace()
            .skip(1)
            .map(|t| t.replace("HOST", "a").replace("PASSWORD", pw)),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        redis.cli(&argv).trim(),
        "OK",
        "the shipped ACL line does not load"
    );
    // The admin loads the library once; the host may not.
    let load = redis.cli(&["FUNCTION", "LOAD", "REPLACE", warden_daemon::fleet::LIBRARY]);
    assert_eq!(load.trim(), "warden", "{load}");
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("redis-password");
    std::fs::write(&pw_file, format!("{pw}\n")).unwrap();
    std::fs::set_permissions(
        &pw_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let creds = format!(
        "username = \"warden-a\"\npassword_file = \"{}\"\n",
        pw_file.display()
    );
    let rules = user_rule(3, "15m", "15m");
    let a = host(&redis, "a", &rules, &creds);
    let pam = PamDir::new(&a.socket, "0", "");
    for _ in 0..3 {
        assert!(!pam.attempt("gus", "wrong", Some("198.51.100.40")).ok());
    }
    assert_eq!(redis.cli(&["EXISTS", "w:s:user user=gus"]).trim(), "1");
    // The same credential reaches nothing outside the prefix.
    let as_host = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &redis.port.to_string(),
                "--user",
                "warden-a",
                "--pass",
                pw,
                "--no-auth-warning",
            ])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // What warden itself sends is allowed, on its own keys.
    for cmd in [
        vec!["HGET", "w:totp", "nobody"],
        vec!["HDEL", "w:totp", "nobody"],
        vec!["WAIT", "0", "0"],
        vec!["ROLE"],
        vec!["TIME"],
        vec!["XTRIM", "w:audit", "MAXLEN", "10"],
    ] {
        let out = as_host(&cmd);
        assert!(
            !out.contains("NOPERM"),
            "{cmd:?} is refused to warden-a: {out}"
        );
    }
    for cmd in [
        vec!["GET", "other:key"],
        vec!["FLUSHALL"],
        vec!["CONFIG", "GET", "*"],
        vec!["FUNCTION", "DELETE", "warden"],
    ] {
        let out = as_host(&cmd);
        assert!(
            out.contains("NOPERM"),
            "{cmd:?} was allowed to warden-a: {out}"
        );
    }
    // A library of another version: the host refuses to run it.
    let other = format!("{}\n-- another build\n", warden_daemon::fleet::LIBRARY);
    assert_eq!(
        redis.cli(&["FUNCTION", "LOAD", "REPLACE", &other]).trim(),
        "warden"
    );
    let b = Daemon::start(&format!(
        "{rules}{NO_FAMILIAR}{}",
        fleet_block(&redis, "b", &creds)
    ));
    assert!(b.wait_for_log("another version", 10), "{}", b.log_text());
    assert!(
        !b.log_text().contains("fleet-available"),
        "{}",
        b.log_text()
    );
}

#[test]
fn totp_enrolled_on_one_host_works_on_another_and_a_code_is_used_once_fleet_wide() {
    if skip("totp_enrolled_on_one_host_works_on_another_and_a_code_is_used_once_fleet_wide") {
        return;
    }
    use warden_e2e::totp::{code_at, enroll, fresh_step, now};
    let redis = Redis::start();
    let keydir = tempfile::tempdir().unwrap();
    let key = keydir.path().join("fleet-totp.key");
    std::fs::write(
        &key,
        "7c1e0f5a9b3d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e\n",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let extra = format!("totp_key_file = \"{}\"\n", key.display());
    let rules = user_rule(5, "15m", "15m");
    let a = bus_host(&redis, "a", &rules, &extra);
    let b = bus_host(&redis, "b", &rules, &extra);
    let e = enroll(&a.bus.address, "hana", true);
    // Redis holds the record sealed: neither the secret nor the record's
    // fields in the clear.
    let stored = redis.cli(&["HGET", "w:totp", "hana"]);
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    assert!(
        stored.trim().len() > 100 && stored.trim().chars().all(|c| c.is_ascii_hexdigit()),
        "{stored}"
    );
    assert!(
        !stored.contains(&hex("confirmed")) && !stored.contains(&hex("secret")),
        "{stored}"
    );
    // B, where hana never enrolled, asks for her code and takes it.
    let drive = |h: &BusHost, code: &str| {
        let pam = PamDir::new(&h.daemon.socket, "0", "");
        warden_e2e::pam::drive(
            pam.dir.path(),
            &pam.service,
            "hana",
            Some("203.0.113.60"),
            &["right", code],
            false,
        )
    };
    fresh_step(10);
    let t = now();
    let o = drive(&b, &code_at(&e.secret, t));
    assert_eq!(
        o.auth,
        warden_e2e::pam::PAM_SUCCESS,
        "B refused hana's code: {o:?}"
    );
    assert_eq!(o.prompts, ["Password:", "Verification code:"]);
    // The next step's code, used on A, is refused on B: one step, once, fleet-wide.
    let next = code_at(&e.secret, t + 30);
    let o = drive(&a, &next);
    assert_eq!(
        o.auth,
        warden_e2e::pam::PAM_SUCCESS,
        "A refused a fresh code: {o:?}"
    );
    let o = drive(&b, &next);
    assert_eq!(
        o.auth,
        warden_e2e::pam::PAM_AUTH_ERR,
        "B took a code A had used: {o:?}"
    );
    // Removal is the fleet's too: B no longer asks.
    let rm = b.ctl(&["totp", "remove", "hana"]);
    assert_eq!(rm.code, 0, "{rm:?}");
    let st = a.ctl(&["--json", "totp", "status", "hana"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap_or_default();
    assert_eq!(v["enrolled"], false, "A still sees an enrollment: {st:?}");
    let o = drive(&b, "");
    assert_eq!(o.prompts, ["Password:"], "B still asks for a code: {o:?}");
}

#[test]
fn a_shell_cannot_crowd_a_fleet_host_with_attempts_in_flight() {
    if skip("a_shell_cannot_crowd_a_fleet_host_with_attempts_in_flight") {
        return;
    }
    if !warden_e2e::root_or_skip("a_shell_cannot_crowd_a_fleet_host_with_attempts_in_flight") {
        return;
    }
    use warden_e2e::client::{count, raw_as};
    let me = warden_e2e::users::TestUser::create(&warden_e2e::unique("wfcrowd"), "pw-unused-7");
    let redis = Redis::start();
    let rules = format!(
        "max_attempts_in_flight = 100\n{}[allow]\nusers = [\"{}\", \"x\"]\n",
        user_rule(5, "1h", "1h"),
        me.name
    );
    let d = Daemon::start(&format!("{rules}{}", fleet_block(&redis, "a", "")));
    assert!(d.wait_for_log("fleet-available", 10), "{}", d.log_text());
    // An unprivileged peer begins and never ends: the fleet host holds it
    // to the same bounds as a host alone, 16 per uid and 100 in all.
    let (out, tally) = raw_as(
        Some(me.uid),
        &d.socket,
        &["begin", &me.name, "--repeat", "25"],
    );
    assert_eq!(count(&tally, "allowed"), 16, "per uid: {out}");
    assert_eq!(count(&tally, "refused:crowded"), 9, "{out}");
    let (out, tally) = raw_as(None, &d.socket, &["begin", "x", "--repeat", "300"]);
    assert_eq!(count(&tally, "allowed"), 100 - 16, "in all: {out}");
    assert!(
        d.log_text().contains("attempts-crowded "),
        "{}",
        d.log_text()
    );
    let st = call_fleet_status_healthy(&d);
    assert!(st, "the host fell back to its own engine: {}", d.log_text());
}

fn call_fleet_status_healthy(d: &Daemon) -> bool {
    let root = warden_daemon::config::root_socket_for(&d.socket);
    match warden_e2e::client::request(
        &root,
        warden_proto::RequestBody::Admin(warden_proto::AdminRequest::Call {
            method: "FleetStatus".into(),
            args: "[]".into(),
        }),
    ) {
        Ok(warden_proto::ResponseBody::Json(j)) => {
            serde_json::from_str::<serde_json::Value>(&j).unwrap_or_default()["healthy"] == true
        }
        _ => false,
    }
}

#[test]
fn a_fleet_lock_gets_its_jitter_in_redis_and_the_message_rounds_up() {
    if skip("a_fleet_lock_gets_its_jitter_in_redis_and_the_message_rounds_up") {
        return;
    }
    use warden_e2e::client::{assert_jittered, jitter_rule, lock_ends};
    let redis = Redis::start();
    let a = host(&redis, "ja", &jitter_rule(), "");
    let b = host(&redis, "jb", &jitter_rule(), "");
    let (pa, pb) = (
        PamDir::new(&a.socket, "0", ""),
        PamDir::new(&b.socket, "0", ""),
    );
    for i in 0..6 {
        assert!(!pa.attempt(&format!("j{i}"), "wrong", None).ok());
    }
    // Host B lists the fleet's locks, as Redis holds them.
    assert_jittered(&lock_ends(&b.socket.with_file_name("warden-root.sock")));
    let o = pb.attempt("j0", "right", None);
    let m = o.messages.join(" ");
    assert!(
        m.ends_with("Try again in 15 minutes.") || m.ends_with("Try again in 10 minutes."),
        "{m}"
    );
}

/// The same wrong password counts once in a fleet too, each host with its
/// own key: a stale phone on one host frees its place in Redis every time
/// and never locks its owner; new guesses through two hosts still lock.
#[test]
fn a_repeated_wrong_password_frees_its_fleet_place_and_counts_once() {
    if skip("a_repeated_wrong_password_frees_its_fleet_place_and_counts_once") {
        return;
    }
    let redis = Redis::start();
    let rules = user_rule(3, "15m", "15m");
    let (a, b) = (
        host(&redis, "r1", &rules, ""),
        host(&redis, "r2", &rules, ""),
    );
    let (pa, pb) = (
        PamDir::new(&a.socket, "0", ""),
        PamDir::new(&b.socket, "0", ""),
    );
    for _ in 0..8 {
        pa.attempt("alice", "stale-password", None);
    }
    assert_eq!(
        pa.checks(),
        8,
        "a repeat was refused: its place was not freed"
    );
    let o = pb.attempt("alice", "right", None);
    assert!(o.ok(), "a stale password locked its owner: {o:?}");
    assert_eq!(
        a.log_text()
            .matches("user=alice tty=ssh reason=repeat")
            .count(),
        7,
        "{}",
        a.log_text()
    );
    for d in [&pa, &pb, &pa] {
        d.attempt("bob", "wrong", None);
    }
    let o = pb.attempt("bob", "right", None);
    assert!(!o.ok(), "three guesses over two hosts did not lock: {o:?}");
}
