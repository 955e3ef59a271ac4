//! The module and daemon through real libpam (`pam_start_confdir`), with a
//! counting pam_exec script in the password's place.

use std::thread;
use std::time::Duration;
use warden_e2e::daemon::{Daemon, NO_FAMILIAR};
use warden_e2e::pam::{PamDir, PAM_AUTH_ERR, PAM_SUCCESS, WRONG_PASSWORD};

const RULES: &str = r#"
[familiar]
enabled = false

[[rule]]
name = "user"
track = ["user"]
limit = 3
window = "15m"
lockout = "15m"
"#;

#[test]
fn locks_after_the_limit_and_refuses_the_right_password() {
    let d = Daemon::start(RULES);
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..3 {
        let o = pam.attempt("alice", "wrong", Some("203.0.113.7"));
        assert_eq!(o.auth, WRONG_PASSWORD, "{o:?}");
        assert!(o.messages.is_empty(), "no message before the lock: {o:?}");
    }
    assert_eq!(pam.checks(), 3);
    let o = pam.attempt("alice", "right", Some("203.0.113.7"));
    assert_eq!(o.auth, PAM_AUTH_ERR);
    assert_eq!(
        o.messages,
        ["Too many failed attempts. Try again in 15 minutes."]
    );
    assert_eq!(
        pam.checks(),
        3,
        "a locked attempt never reaches the password check"
    );
    let log = d.log_text();
    assert!(
        log.contains(
            "locked rule=user on=user service=warden-test user=alice rhost=203.0.113.7 failures=3 until="
        ),
        "{log}"
    );
}

#[test]
fn an_unknown_user_gets_the_same_words_and_codes() {
    let d = Daemon::start(RULES);
    let pam = PamDir::new(&d.socket, "0", "");
    let run = |user: &str| {
        (0..4)
            .map(|_| {
                let o = pam.attempt(user, "wrong", None);
                (o.auth, o.messages)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run("root-no-such-user-1"), run("alice"));
}

#[test]
fn success_resets_the_count() {
    let d = Daemon::start(RULES);
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..2 {
        assert_eq!(pam.attempt("bob", "wrong", None).auth, WRONG_PASSWORD);
    }
    assert_eq!(pam.attempt("bob", "right", None).auth, PAM_SUCCESS);
    for _ in 0..2 {
        assert_eq!(pam.attempt("bob", "wrong", None).auth, WRONG_PASSWORD);
    }
    // Two failures since the success: still below the limit of three.
    assert_eq!(pam.attempt("bob", "right", None).auth, PAM_SUCCESS);
}

#[test]
fn the_lock_expires() {
    let d = Daemon::start(
        &RULES
            .replace("lockout = \"15m\"", "lockout = \"2s\"")
            .replace(
                "[familiar]",
                "extend_on_failure_while_locked = false\n[familiar]",
            ),
    );
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..3 {
        pam.attempt("carol", "wrong", None);
    }
    let o = pam.attempt("carol", "right", None);
    assert_eq!(
        o.messages,
        ["Too many failed attempts. Try again in 1 minute."]
    );
    thread::sleep(Duration::from_millis(3200));
    assert_eq!(pam.attempt("carol", "right", None).auth, PAM_SUCCESS);
    assert!(
        d.log_text()
            .contains("unlocked rule=user on=user user=carol by=expired"),
        "{}",
        d.log_text()
    );
}

#[test]
fn exactly_limit_checks_under_32_concurrent_attackers() {
    let d = Daemon::start(&RULES.replace("limit = 3", "limit = 5"));
    // Each password check takes 300 ms, so all 32 attempts overlap.
    let pam = PamDir::new(&d.socket, "0.3", "");
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let confdir = pam.dir.path().to_path_buf();
            let service = pam.service.clone();
            thread::spawn(move || {
                let rhost = format!("198.51.100.{i}");
                warden_e2e::pam::drive(&confdir, &service, "dave", Some(&rhost), &["wrong"], false)
                    .auth
            })
        })
        .collect();
    let codes: Vec<i32> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(-1))
        .collect();
    let checked = codes.iter().filter(|c| **c == WRONG_PASSWORD).count();
    let refused = codes.iter().filter(|c| **c == PAM_AUTH_ERR).count();
    assert_eq!((checked, refused), (5, 27), "{codes:?}");
    assert_eq!(
        pam.checks(),
        5,
        "with limit 5, exactly 5 password checks may run"
    );
}

#[test]
fn jitter_spreads_lock_ends_and_the_message_rounds_up() {
    use warden_e2e::client::{assert_jittered, jitter_rule, lock_ends};
    let d = Daemon::start(&format!("{NO_FAMILIAR}{}", jitter_rule()));
    let pam = PamDir::new(&d.socket, "0", "");
    for i in 0..6 {
        assert_eq!(
            pam.attempt(&format!("j{i}"), "wrong", None).auth,
            WRONG_PASSWORD
        );
    }
    assert_jittered(&lock_ends(&d.socket.with_file_name("warden-root.sock")));
    // Whatever the end, the user reads it rounded up to the jitter: the next
    // whole 5 minutes (10 only if the draw was exactly 0).
    for i in 0..6 {
        let o = pam.attempt(&format!("j{i}"), "right", None);
        assert_eq!(o.auth, PAM_AUTH_ERR);
        let m = o.messages.join(" ");
        assert!(
            m == "Too many failed attempts. Try again in 15 minutes."
                || m == "Too many failed attempts. Try again in 10 minutes.",
            "{m}"
        );
    }
}

/// A phone or a mail client with a stale password repeats it: counted once,
/// so it never locks its owner out. A guesser gains nothing from the rule:
/// new passwords always count, and cycling four of them counts every one.
#[test]
fn the_same_wrong_password_counts_once_and_new_guesses_still_lock() {
    let mut d = Daemon::start(RULES);
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..10 {
        let o = pam.attempt("alice", "stale-password", Some("203.0.113.7"));
        assert_eq!(
            o.auth, WRONG_PASSWORD,
            "a stale password was refused: {o:?}"
        );
    }
    assert_eq!(pam.checks(), 10);
    let o = pam.attempt("alice", "right", Some("203.0.113.7"));
    assert_eq!(o.auth, PAM_SUCCESS, "the owner was locked out: {o:?}");
    let log = d.log_text();
    assert_eq!(
        log.matches(
            "failure service=warden-test user=alice rhost=203.0.113.7 tty=ssh reason=repeat"
        )
        .count(),
        9,
        "{log}"
    );
    assert!(!log.contains("stale-password"), "a password in the log");

    // Cycling four passwords: each is new again by the time it returns.
    for p in ["p1", "p2", "p3", "p4"] {
        pam.attempt("bob", p, None);
    }
    let o = pam.attempt("bob", "right", None);
    assert_eq!(
        o.auth, PAM_AUTH_ERR,
        "cycling passwords slipped past: {o:?}"
    );

    // The key lives in memory only: after a restart the stale password is a
    // new failure again (counted once more), never a free one.
    d.restart();
    let checks = pam.checks();
    for _ in 0..3 {
        pam.attempt("carol", "stale-password", None);
    }
    d.restart();
    pam.attempt("carol", "stale-password", None);
    assert_eq!(pam.checks(), checks + 4);
    let o = pam.attempt("carol", "right", None);
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");
    let log = d.log_text();
    let carol = "failure service=warden-test user=carol tty=ssh";
    assert_eq!(log.matches(carol).count(), 4, "{log}");
    assert_eq!(
        log.matches(&format!("{carol} reason=repeat")).count(),
        2,
        "{log}"
    );
}

/// `same_password_once = false`: every wrong password counts, as before.
#[test]
fn counting_every_repeat_is_a_setting() {
    let d = Daemon::start(&format!("same_password_once = false\n{RULES}"));
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..3 {
        pam.attempt("alice", "stale-password", None);
    }
    let o = pam.attempt("alice", "right", None);
    assert_eq!(o.auth, PAM_AUTH_ERR, "{o:?}");
    assert!(!d.log_text().contains("reason=repeat"));
}
