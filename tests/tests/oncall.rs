//! The on-call admin's questions, against a real wardend on a private system
//! bus: why was this login refused (`explain`, checked against the refusal the
//! PAM call actually hit), what happened (`history`), and what stands against
//! a user or an address (`user-status`, `rhost-status`).

use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus, Ctl};
use warden_e2e::daemon::{deny_user_rhost, Daemon};
use warden_e2e::pam::{PamDir, PAM_AUTH_ERR, PAM_SUCCESS, WRONG_PASSWORD};

fn setup() -> (Bus, Daemon, PamDir) {
    let bus = Bus::start();
    let d = Daemon::start_with_env(&deny_user_rhost(), &bus.env());
    assert!(
        wait_for_daemon(&bus.address),
        "wardend never came on the bus:\n{}",
        d.log_text()
    );
    let pam = PamDir::new(&d.socket, "0", "");
    (bus, d, pam)
}

fn ok(c: Ctl) -> Ctl {
    assert_eq!(c.code, 0, "{c:?}");
    c
}

fn json(c: Ctl) -> serde_json::Value {
    let c = ok(c);
    serde_json::from_str(&c.stdout).unwrap_or_else(|e| panic!("{e}: {}", c.stdout))
}

/// The key of the newest refusal of `user` in the audit log.
fn refused_key(bus: &Bus, user: &str) -> (String, String) {
    let h = json(wardenctl(
        &bus.address,
        None,
        &["history", "--user", user, "--kind", "refused", "--json"],
    ));
    let e = &h[0];
    (
        e["key"].as_str().unwrap_or_default().to_string(),
        e["reason"].as_str().unwrap_or_default().to_string(),
    )
}

fn explain(bus: &Bus, user: &str, rhost: &str) -> serde_json::Value {
    json(wardenctl(
        &bus.address,
        None,
        &[
            "explain",
            user,
            "--rhost",
            rhost,
            "--service",
            "warden-test",
            "--json",
        ],
    ))
}

/// For each kind of lock, the PAM call is refused, and explain names the very
/// key the refusal recorded, with the words the user was shown.
#[test]
fn explain_names_the_lock_each_refusal_hit() {
    let (bus, d, pam) = setup();
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);

    // 1. A rule lock on the user (from an unfamiliar place).
    for _ in 0..3 {
        pam.attempt("alice", "wrong", Some("203.0.113.7"));
    }
    // 2. A rule lock on an address, tipped by four different users.
    for u in ["b1", "b2", "b3", "b4"] {
        pam.attempt(u, "wrong", Some("203.0.113.50"));
    }
    // 3. An admin's lock on a user, with a reason.
    ok(ctl(&[
        "lock",
        "dave",
        "--for",
        "1h",
        "--reason",
        "left the company",
    ]));
    // 4. An admin's lock on a range.
    ok(ctl(&[
        "lock",
        "--rhost",
        "192.0.2.0/24",
        "--for",
        "1h",
        "--reason",
        "scanner",
    ]));

    let cases = [
        ("alice", "203.0.113.7", "user user=alice from=unfamiliar"),
        ("carol", "203.0.113.50", "rhost rhost=203.0.113.50"),
        ("dave", "203.0.113.8", "admin user=dave"),
        ("erin", "192.0.2.9", "admin rhost=192.0.2.0/24"),
    ];
    for (user, rhost, key) in cases {
        let before = explain(&bus, user, rhost);
        let o = pam.attempt(user, "right", Some(rhost));
        assert_eq!(o.auth, PAM_AUTH_ERR, "{user} from {rhost}: {o:?}");
        d.wait_for_log(
            &format!("refused rule={}", key.split(' ').next().unwrap()),
            5,
        );
        let (hit, reason) = refused_key(&bus, user);
        assert_eq!(reason, "locked", "{user}");
        assert_eq!(hit, key, "{user}: the refusal hit {hit}");
        assert_eq!(before["allowed"], false, "{before}");
        assert_eq!(before["reason"], "locked", "{before}");
        assert_eq!(
            before["refused_by"], hit,
            "{user}: explain named {}",
            before["refused_by"]
        );
        // What the user was told is what explain says they are told.
        let told = before["message"].as_str().unwrap();
        assert!(
            o.messages.iter().any(|m| m == told),
            "{user}: told {:?}, explain says {told}",
            o.messages
        );
    }
    // The words say which kind of lock it is.
    let words = |user: &str, rhost: &str| {
        explain(&bus, user, rhost)["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        words("alice", "203.0.113.7"),
        "Too many failed attempts. Try again in 15 minutes."
    );
    assert_eq!(
        words("carol", "203.0.113.50"),
        "Too many failed attempts from your address. Try again in 60 minutes."
    );
    assert_eq!(
        words("dave", "203.0.113.8"),
        "This account is locked by an administrator (left the company). Try again in 60 minutes."
    );
    assert_eq!(
        words("erin", "192.0.2.9"),
        "Logins from your address are blocked by an administrator (scanner). Try again in 60 minutes."
    );
    // The admin's reason is shown beside the lock.
    let dave = explain(&bus, "dave", "203.0.113.8");
    let covering = dave["covering"].as_array().unwrap();
    assert!(
        covering.iter().any(|k| k["key"] == "admin user=dave"
            && k["reason"] == "left the company"
            && k["by"] == "uid=0"),
        "{dave}"
    );
    let text = ok(ctl(&[
        "explain",
        "dave",
        "--rhost",
        "203.0.113.8",
        "--service",
        "warden-test",
    ]))
    .stdout;
    assert!(
        text.contains("REFUSED: locked by admin user=dave") && text.contains("left the company"),
        "{text}"
    );

    // 5. A deny entry: refused with reason denied, and explain says why.
    let o = pam.attempt("frank", "right", Some("198.51.100.66"));
    assert_eq!(o.auth, PAM_AUTH_ERR);
    d.wait_for_log("reason=denied", 5);
    let (_, reason) = refused_key(&bus, "frank");
    assert_eq!(reason, "denied");
    let e = explain(&bus, "frank", "198.51.100.66");
    assert_eq!(e["reason"], "denied", "{e}");
    assert_eq!(e["message"], "Access denied.", "{e}");

    // A clear attempt: allowed, and every key with its count against its limit.
    let e = explain(&bus, "gina", "203.0.113.99");
    assert_eq!(e["allowed"], true, "{e}");
    let keys: Vec<(String, u64, u64)> = e["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap().to_string(),
                k["failures"].as_u64().unwrap(),
                k["limit"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("user user=gina from=unfamiliar".to_string(), 0, 3),
            ("rhost rhost=203.0.113.99".to_string(), 0, 4)
        ]
    );
    assert_eq!(e["code"], "nothing", "{e}");
}

/// explain changes nothing: no reservation, no expiry, no line in the log.
#[test]
fn explain_changes_nothing() {
    let (bus, d, pam) = setup();
    for _ in 0..2 {
        pam.attempt("henry", "wrong", Some("203.0.113.20"));
    }
    let log_before = d.log_text();
    for _ in 0..10 {
        let e = explain(&bus, "henry", "203.0.113.20");
        assert_eq!(e["allowed"], true, "{e}");
        assert_eq!(e["keys"][0]["failures"], 2, "{e}");
        assert_eq!(e["keys"][0]["in_flight"], 0, "{e}");
    }
    assert_eq!(d.log_text(), log_before, "explain wrote to the log");
    // Ten explains held no place: the third wrong password is the one that locks.
    let o = pam.attempt("henry", "wrong", Some("203.0.113.20"));
    assert_eq!(o.auth, WRONG_PASSWORD);
    assert_eq!(pam.checks(), 3, "every attempt reached the password check");
    let e = explain(&bus, "henry", "203.0.113.20");
    assert_eq!(e["reason"], "locked", "{e}");
}

/// user-status tells apart a lock on the user everywhere, one on unfamiliar
/// sources only, and an address lock that refused them; rhost-status shows
/// what stands against an address.
#[test]
fn status_says_where_a_lock_holds() {
    let (bus, d, pam) = setup();
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);

    // ivy logs in from home, then someone guesses from elsewhere.
    let o = pam.attempt("ivy", "right", Some("198.51.100.10"));
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");
    for _ in 0..3 {
        pam.attempt("ivy", "wrong", Some("203.0.113.30"));
    }
    let s = json(ctl(&["user-status", "ivy", "--json"]));
    assert_eq!(s["locked"], true, "{s}");
    assert_eq!(s["scope"], "unfamiliar", "{s}");
    let text = ok(ctl(&["user-status", "ivy"])).stdout;
    assert!(text.contains("from unfamiliar sources only"), "{text}");
    // And indeed: from home she still gets in, from elsewhere she does not.
    let e = explain(&bus, "ivy", "198.51.100.10");
    assert_eq!(e["allowed"], true, "{e}");
    assert_eq!(e["familiar"], true, "{e}");
    assert_eq!(e["familiar_sources"][0][0], "198.51.100.10", "{e}");
    assert_eq!(
        pam.attempt("ivy", "right", Some("198.51.100.10")).auth,
        PAM_SUCCESS
    );
    assert_eq!(
        pam.attempt("ivy", "right", Some("203.0.113.31")).auth,
        PAM_AUTH_ERR
    );

    // An admin's lock holds everywhere.
    ok(ctl(&["lock", "jack", "--for", "1h"]));
    let s = json(ctl(&["user-status", "jack", "--json"]));
    assert_eq!(s["scope"], "everywhere", "{s}");

    // kim has no lock of her own, but an address lock refused her.
    for u in ["c1", "c2", "c3", "c4"] {
        pam.attempt(u, "wrong", Some("203.0.113.60"));
    }
    assert_eq!(
        pam.attempt("kim", "right", Some("203.0.113.60")).auth,
        PAM_AUTH_ERR
    );
    d.wait_for_log("refused rule=rhost", 5);
    let s = json(ctl(&["user-status", "kim", "--json"]));
    assert_eq!(s["locked"], false, "{s}");
    assert_eq!(
        s["address_locks"][0]["key"], "rhost rhost=203.0.113.60",
        "{s}"
    );
    let text = ok(ctl(&["user-status", "kim"])).stdout;
    assert!(
        text.contains("kim is not locked") && text.contains("rhost rhost=203.0.113.60"),
        "{text}"
    );

    let r = json(ctl(&["rhost-status", "203.0.113.60", "--json"]));
    assert_eq!(r["refused"], true, "{r}");
    assert_eq!(r["keys"][0]["key"], "rhost rhost=203.0.113.60", "{r}");
    assert_eq!(r["keys"][0]["failures"], 4, "{r}");
    ok(ctl(&[
        "lock",
        "--rhost",
        "192.0.2.0/24",
        "--for",
        "1h",
        "--reason",
        "scanner",
    ]));
    let r = json(ctl(&["rhost-status", "192.0.2.9", "--json"]));
    assert_eq!(r["refused"], true, "{r}");
    assert_eq!(r["covering"][0]["key"], "admin rhost=192.0.2.0/24", "{r}");
    assert_eq!(r["covering"][0]["reason"], "scanner", "{r}");
    let r = json(ctl(&["rhost-status", "192.0.2.200", "--json"]));
    assert_eq!(r["refused"], true, "{r}");
    let r = json(ctl(&["rhost-status", "198.51.100.77", "--json"]));
    assert_eq!(r["refused"], false, "{r}");
    let bad = ctl(&["rhost-status", "not-an-address"]);
    assert_eq!(bad.code, 1, "{bad:?}");
}

/// history lists every kind of event, newest first, with its filters.
#[test]
fn history_shows_every_kind_with_filters() {
    let (bus, _d, pam) = setup();
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);
    assert_eq!(
        pam.attempt("lena", "right", Some("198.51.100.20")).auth,
        PAM_SUCCESS
    );
    for _ in 0..3 {
        pam.attempt("lena", "wrong", Some("203.0.113.40"));
    }
    pam.attempt("lena", "right", Some("203.0.113.41"));
    ok(ctl(&["unlock", "lena"]));
    let h = json(ctl(&["history", "--user", "lena", "--json"]));
    let kinds: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["unlocked", "refused", "locked", "failure", "failure", "failure", "success"],
        "{h}"
    );
    assert_eq!(h[0]["by"], "uid=0", "{h}");
    assert_eq!(h[2]["key"], "user user=lena from=unfamiliar", "{h}");
    let only = json(ctl(&[
        "history",
        "--user",
        "lena",
        "--kind",
        "success,locked",
        "--json",
    ]));
    let kinds: Vec<&str> = only
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["locked", "success"], "{only}");
    let by_host = json(ctl(&["history", "--rhost", "198.51.100.20", "--json"]));
    assert_eq!(by_host.as_array().unwrap().len(), 1, "{by_host}");
    let none = json(ctl(&[
        "history", "--user", "lena", "--until", "1h", "--json",
    ]));
    assert_eq!(none.as_array().unwrap().len(), 0, "{none}");
    let bad = ctl(&["history", "--kind", "nonsense"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("is not a kind of event"), "{bad:?}");
    let text = ok(ctl(&["history", "--user", "lena"])).stdout;
    assert!(
        text.starts_with("WHEN") && text.contains("by uid=0"),
        "{text}"
    );
}

/// Metrics in the Prometheus text format, from a real daemon; and a file the
/// textfile collector can read, even when wardend is down.
#[test]
fn metrics_for_the_textfile_collector() {
    let (bus, _d, pam) = setup();
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);
    for _ in 0..3 {
        pam.attempt("mia", "wrong", Some("203.0.113.70"));
    }
    let text = ok(ctl(&["metrics"])).stdout;
    for line in [
        "warden_up 1",
        "warden_locks{rule=\"user\"} 1",
        "warden_events_total{kind=\"failure\"} 3",
        "warden_events_total{kind=\"locked\"} 1",
        "# TYPE warden_events_total counter",
        "warden_store_errors_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.prom");
    ok(ctl(&["metrics", "--output", file.to_str().unwrap()]));
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("warden_up 1"));
    let down = wardenctl(
        "unix:path=/nonexistent",
        None,
        &["metrics", "--output", file.to_str().unwrap()],
    );
    assert_eq!(down.code, 4, "{down:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().last(),
        Some("warden_up 0")
    );
}

/// With the bus down, root's wardenctl asks wardend over its root socket,
/// says so, and every admin command still works.
#[test]
fn with_the_bus_down_root_uses_the_root_socket() {
    let (bus, mut d, pam) = setup();
    for _ in 0..3 {
        pam.attempt("noah", "wrong", Some("203.0.113.80"));
    }
    let root_socket = d.socket.with_file_name("warden-root.sock");
    let root = root_socket.to_str().unwrap();
    drop(bus);
    let ctl = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--root-socket", root]);
        wardenctl("unix:path=/nonexistent", None, &all)
    };
    let s = ok(ctl(&["status", "--json"]));
    assert!(
        s.stderr.contains("asked wardend over its root socket"),
        "{s:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
    assert_eq!(v["locks"], 1, "{v}");
    let locks = json(ctl(&["locks", "--json"]));
    assert_eq!(locks[0]["key"], "user user=noah from=unfamiliar", "{locks}");
    let e = json(ctl(&[
        "explain",
        "noah",
        "--rhost",
        "203.0.113.80",
        "--service",
        "warden-test",
        "--json",
    ]));
    assert_eq!(e["refused_by"], "user user=noah from=unfamiliar", "{e}");
    let h = json(ctl(&[
        "history", "--user", "noah", "--kind", "locked", "--json",
    ]));
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
    let u = json(ctl(&["user-status", "noah", "--json"]));
    assert_eq!(u["locked"], true, "{u}");
    ok(ctl(&[
        "lock",
        "--rhost",
        "192.0.2.0/24",
        "--for",
        "1h",
        "--reason",
        "no bus",
    ]));
    let r = json(ctl(&["rhost-status", "192.0.2.5", "--json"]));
    assert_eq!(r["covering"][0]["reason"], "no bus", "{r}");
    let u = ok(ctl(&["unlock", "noah"]));
    assert!(
        u.stdout.contains("lifted: user user=noah from=unfamiliar"),
        "{u:?}"
    );
    // The unlock is audited as on the bus.
    assert!(
        d.log_text()
            .contains("admin-unlock by=uid=0 target=\"user noah\" cleared=1"),
        "{}",
        d.log_text()
    );
    let m = ok(ctl(&["metrics"])).stdout;
    assert!(
        m.contains("warden_up 1") && m.contains("warden_bus_up 0"),
        "{m}"
    );
    // With wardend stopped, locks and history read the store itself.
    d.stop();
    let config = d.config.to_str().unwrap().to_string();
    let offline = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--root-socket", root, "--config", &config]);
        wardenctl("unix:path=/nonexistent", None, &all)
    };
    let l = ok(offline(&["locks", "--json"]));
    assert!(l.stderr.contains("read the store directly"), "{l:?}");
    let locks: serde_json::Value = serde_json::from_str(&l.stdout).unwrap();
    assert_eq!(locks[0]["key"], "admin rhost=192.0.2.0/24", "{locks}");
    let h = ok(offline(&[
        "history", "--user", "noah", "--kind", "unlocked", "--json",
    ]));
    let h: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
    assert_eq!(h[0]["by"], "uid=0", "{h}");
    // Commands that need a running wardend say so.
    assert_eq!(offline(&["status"]).code, 4);
    // A socket nobody serves: the error names both ways tried.
    let c = wardenctl(
        "unix:path=/nonexistent",
        None,
        &["locks", "--root-socket", "/nonexistent/x.sock"],
    );
    assert_eq!(c.code, 4, "{c:?}");
    assert!(
        c.stderr.contains("cannot reach the system bus") && c.stderr.contains("root socket"),
        "{c:?}"
    );
}
