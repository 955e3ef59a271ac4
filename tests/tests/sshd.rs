//! A real sshd on loopback and the real OpenSSH client, end to end.

use warden_e2e::daemon::{user_rule, Daemon};
use warden_e2e::sshd::{sshd_stack, Sshd};
use warden_e2e::users::TestUser;
use warden_e2e::{root_or_skip, unique};

#[test]
fn ssh_logins_are_locked_out_and_unlocked() {
    if !root_or_skip("ssh_logins_are_locked_out_and_unlocked") {
        return;
    }
    let d = Daemon::start(&user_rule(3, "15m", "15m"));
    let user = TestUser::create(&unique("wssh"), "Corr3ct-Horse");
    let sshd = Sshd::start(&unique("sshd-warden-t"), &sshd_stack(&d.socket), "");

    // Three different guesses: a repeat of one counts once.
    for i in 0..3 {
        let (ok, out) = sshd.login(&user.name, &format!("wrong-password-{i}"));
        assert!(!ok, "{out}");
    }
    let (ok, out) = sshd.login(&user.name, "Corr3ct-Horse");
    assert!(
        !ok,
        "the right password is refused while locked: {out}\n{}",
        sshd.log()
    );
    // A refusal's line follows its commit, which follows the answer.
    d.wait_for_log("refused rule=user", 5);
    assert!(
        d.log_text().contains(&format!(
            "refused rule=user service={} user={}",
            sshd.service, user.name
        )),
        "{}",
        d.log_text()
    );

    let locks = d.request(&["locks"]);
    assert!(locks.contains(&format!("user={}", user.name)), "{locks}");
    let out = d.request(&["unlock-user", &user.name]);
    assert!(out.contains("Unlocked(1)"), "{out}");

    let (ok, out) = sshd.login(&user.name, "Corr3ct-Horse");
    assert!(
        ok,
        "after the unlock the right password works: {out}\n{}",
        sshd.log()
    );
}

#[test]
fn one_ssh_connection_retrying_passwords_is_counted_per_try() {
    if !root_or_skip("one_ssh_connection_retrying_passwords_is_counted_per_try") {
        return;
    }
    // sshd calls pam_authenticate again on the same handle for each try.
    let d = Daemon::start(&user_rule(2, "15m", "15m"));
    let user = TestUser::create(&unique("wssh"), "Corr3ct-Horse");
    let sshd = Sshd::start(&unique("sshd-warden-t"), &sshd_stack(&d.socket), "");
    // ssh asks the script at every prompt, so each of the three tries is
    // answered, each with another guess (a repeat of one counts once).
    let (ok, _) = sshd.login_with_askpass(&user.name, "echo wrong-$$", 3);
    assert!(!ok);
    let log = d.log_text();
    assert_eq!(
        log.matches(&format!(
            "failure service={} user={}",
            sshd.service, user.name
        ))
        .count(),
        2,
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "locked rule=user on=user service={} user={}",
            sshd.service, user.name
        )),
        "{log}"
    );
}

#[test]
fn a_locked_ssh_user_reads_why_over_keyboard_interactive() {
    if !root_or_skip("a_locked_ssh_user_reads_why_over_keyboard_interactive") {
        return;
    }
    let d = Daemon::start(&user_rule(1, "15m", "15m"));
    let user = TestUser::create(&unique("wmsg"), "Corr3ct-Horse");
    let sshd = Sshd::start(
        &unique("sshd-warden-m"),
        &sshd_stack(&d.socket),
        "PasswordAuthentication yes",
    );
    sshd.login(&user.name, "wrong-password");
    // sshd relays PAM's messages as the text of a keyboard-interactive
    // request, which ssh prints at its default log level.
    let out = sshd.login_as_people_do("keyboard-interactive", &user.name, "Corr3ct-Horse");
    assert!(
        out.contains("Too many failed attempts. Try again in 15 minutes."),
        "{out}"
    );
    // The password method has no way to show it: only "Permission denied".
    let out = sshd.login_as_people_do("password", &user.name, "Corr3ct-Horse");
    assert!(!out.contains("Too many failed attempts"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}
