//! Observe mode through real libpam and a real wardend on a private bus: the
//! rules count, lock and log what they would do, refuse no one, and say so
//! loudly; admin locks still refuse; a reload to enforce makes the locks real.

use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus, Ctl};
use warden_e2e::daemon::{deny_user_rhost, Daemon, NO_FAMILIAR};
use warden_e2e::pam::{PamDir, PAM_AUTH_ERR, PAM_SUCCESS, WRONG_PASSWORD};

fn ok(c: Ctl) -> Ctl {
    assert_eq!(c.code, 0, "{c:?}");
    c
}

fn json(c: Ctl) -> serde_json::Value {
    let c = ok(c);
    serde_json::from_str(&c.stdout).unwrap_or_else(|e| panic!("{e}: {}", c.stdout))
}

#[test]
fn observe_mode_counts_and_logs_what_it_would_refuse_and_refuses_nothing() {
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!("mode = \"observe\"\n{NO_FAMILIAR}{}", deny_user_rhost()),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address), "{}", d.log_text());
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);
    assert!(
        d.log_text()
            .contains("observe-mode scope=all rules=user,rhost"),
        "observe mode must never look like protection:\n{}",
        d.log_text()
    );

    // A guesser past both limits reaches the password check every time.
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..5 {
        let o = pam.attempt("alice", "wrong", Some("203.0.113.7"));
        assert_eq!(o.auth, WRONG_PASSWORD, "{o:?}");
    }
    let o = pam.attempt("alice", "right", Some("203.0.113.7"));
    assert_eq!(o.auth, PAM_SUCCESS, "observe mode refused: {o:?}");
    assert!(o.messages.is_empty(), "{o:?}");
    assert_eq!(pam.checks(), 6);
    // A denied address too.
    let o = pam.attempt("bob", "right", Some("198.51.100.66"));
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");

    let log = d.log_text();
    for needle in [
        "would-lock rule=user on=user service=warden-test user=alice rhost=203.0.113.7 failures=3",
        "would-lock rule=rhost on=rhost",
        "would-refuse rule=user service=warden-test user=alice rhost=203.0.113.7",
        "reason=denied",
    ] {
        assert!(log.contains(needle), "no {needle:?} in:\n{log}");
    }
    assert!(
        !log.contains(": locked ") && !log.contains(": refused "),
        "observe mode logged a real lock or refusal:\n{log}"
    );
    // The shipped fail2ban filter takes no address from a would-lock line.
    assert!(d.fail2ban_matches().is_empty(), "{log}");

    // `locks` shows them, marked; `explain` says what enforcing would do.
    let locks = json(ctl(&["locks", "--json"]));
    let locks = locks.as_array().unwrap();
    assert_eq!(locks.len(), 2, "{locks:?}");
    assert!(locks.iter().all(|l| l["observe"] == true), "{locks:?}");
    let table = ok(ctl(&["locks"])).stdout;
    assert!(table.contains("observe: refuses no one"), "{table}");
    let explain = [
        "explain",
        "alice",
        "--rhost",
        "203.0.113.7",
        "--service",
        "warden-test",
    ];
    let e = json(ctl(&[&explain[..], &["--json"]].concat()));
    assert_eq!(e["allowed"], true, "{e}");
    assert_eq!(e["would"], "locked", "{e}");
    assert!(!e["would_by"].as_str().unwrap().is_empty(), "{e}");
    let text = ok(ctl(&explain)).stdout;
    assert!(
        text.contains("enforcing would refuse it (locked by"),
        "{text}"
    );
    let h = json(ctl(&["history", "--kind", "would-lock", "--json"]));
    assert_eq!(h.as_array().map(Vec::len), Some(2), "{h}");

    // An admin's lock is an explicit act: observe mode still enforces it.
    ok(ctl(&["lock", "dave", "--for", "1h", "--reason", "left"]));
    let o = pam.attempt("dave", "right", Some("192.0.2.4"));
    assert_eq!(o.auth, PAM_AUTH_ERR, "{o:?}");

    // Switching to enforce makes the standing locks refuse at once.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace("mode = \"observe\"\n", "")).unwrap();
    ok(ctl(&["reload"]));
    let o = pam.attempt("alice", "right", Some("203.0.113.7"));
    assert_eq!(o.auth, PAM_AUTH_ERR, "{o:?}");
    assert_eq!(
        pam.checks(),
        7,
        "a refused attempt reached the password check"
    );
    let locks = json(ctl(&["locks", "--json"]));
    assert!(
        locks
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["observe"] == false),
        "{locks}"
    );
}
