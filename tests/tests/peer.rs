//! SO_PEERCRED: a non-root peer may act only for its own user.

use std::process::Command;
use warden_e2e::daemon::{user_rule, Daemon};
use warden_e2e::users::TestUser;
use warden_e2e::{paths, root_or_skip, unique};

fn as_user(user: &TestUser, d: &Daemon, args: &[&str]) -> String {
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            &user.uid.to_string(),
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(paths::raw_client())
        .arg(&d.socket)
        .args(args)
        .output()
        .unwrap();
    warden_e2e::joined(&out)
}

#[test]
fn a_user_reports_only_for_themself() {
    if !root_or_skip("a_user_reports_only_for_themself") {
        return;
    }
    let d = Daemon::start(&user_rule(2, "1h", "1h"));
    let me = TestUser::create(&unique("wpeer"), "pw-unused-1");
    let other = unique("wvictim");

    let out = as_user(&me, &d, &["fail", &me.name]);
    assert!(out.contains("Recorded"), "{out}");
    let out = as_user(&me, &d, &["fail", &other]);
    assert!(out.contains("Forbidden"), "{out}");
    let out = as_user(&me, &d, &["locks"]);
    assert!(out.contains("Forbidden"), "{out}");
    let out = as_user(&me, &d, &["unlock-all"]);
    assert!(out.contains("Forbidden"), "{out}");
    assert!(
        d.log_text()
            .contains(&format!("refused-peer uid={} user={other}", me.uid)),
        "{}",
        d.log_text()
    );

    // Its own second failure locks its own user key, and nobody else's.
    as_user(&me, &d, &["fail", &me.name, "203.0.113.99"]);
    let locks = d.request(&["locks"]);
    assert!(locks.contains(&format!("user={}", me.name)), "{locks}");
    assert!(!locks.contains(&other), "{locks}");
    // The rhost it claimed was dropped: no one can lock an address from a shell.
    assert!(!locks.contains("203.0.113.99"), "{locks}");
    // The admin call wardenctl uses without a bus is refused to a shell too,
    // and lifts nothing.
    let out = as_user(&me, &d, &["call-unlock-all"]);
    assert!(out.contains("Forbidden"), "{out}");
    let after = d.request(&["locks"]);
    assert!(after.contains(&format!("user={}", me.name)), "{after}");
}

/// A local user's shell claiming the right password for someone else, as
/// authsucc's unanswered `Passed` would, resets nothing of theirs.
#[test]
fn a_user_cannot_reset_another_users_count_with_an_unanswered_success() {
    if !root_or_skip("a_user_cannot_reset_another_users_count_with_an_unanswered_success") {
        return;
    }
    let d = Daemon::start(&user_rule(2, "1h", "1h"));
    let me = TestUser::create(&unique("wpeer"), "pw-unused-2");
    let victim = unique("wvictim");
    assert!(d.request(&["fail", &victim]).contains("Recorded"));
    assert_eq!(as_user(&me, &d, &["passed", &victim]).trim(), "sent");
    assert!(
        d.wait_for_log(&format!("refused-peer uid={} user={victim}", me.uid), 5),
        "{}",
        d.log_text()
    );
    // Its own is taken: a success for itself resets its own count.
    assert_eq!(as_user(&me, &d, &["passed", &me.name]).trim(), "sent");
    // The victim's first failure still counts: the second locks.
    assert!(d.request(&["fail", &victim]).contains("Recorded"));
    let locks = d.request(&["locks"]);
    assert!(locks.contains(&format!("user={victim}")), "{locks}");
}

/// A stolen session guessing its own user's password through a screen
/// locker's socket cannot make its failures repeats: a peer is never given
/// the key, and the eight bytes it sends are ignored, so every one counts.
#[test]
fn a_users_shell_cannot_pass_its_guesses_off_as_repeats() {
    if !root_or_skip("a_users_shell_cannot_pass_its_guesses_off_as_repeats") {
        return;
    }
    let d = Daemon::start(&user_rule(3, "1h", "1h"));
    let me = TestUser::create(&unique("wtag"), "pw-unused-3");
    let begin = as_user(&me, &d, &["begin", &me.name]);
    assert!(
        begin.contains("repeat_key: None"),
        "a peer was handed the key: {begin}"
    );
    for _ in 0..3 {
        let out = as_user(&me, &d, &["fail", &me.name, "--tag", "s"]);
        assert!(out.contains("Recorded"), "{out}");
    }
    let locks = d.request(&["locks"]);
    assert!(locks.contains(&format!("user={}", me.name)), "{locks}");
    assert!(!d.log_text().contains("reason=repeat"), "{}", d.log_text());
}
