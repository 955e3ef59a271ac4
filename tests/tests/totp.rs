//! The TOTP second factor with real parts: codes from oathtool, a real libpam
//! conversation, a running wardend on a private bus, and a real sshd.

use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus};
use warden_e2e::daemon::{user_rule, Daemon};
use warden_e2e::pam::{drive, PamDir, PAM_AUTH_ERR, PAM_SUCCESS};
use warden_e2e::sshd::{sshd_stack, Sshd};
use warden_e2e::totp::{code_at, enroll, fresh_step, now};
use warden_e2e::users::TestUser;
use warden_e2e::{root_or_skip, unique};

fn setup(totp: &str) -> (Bus, Daemon, PamDir) {
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!("{}\n[totp]\n{totp}\n", user_rule(3, "1h", "1h")),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address), "{}", d.log_text());
    let pam = PamDir::new(&d.socket, "0", "");
    (bus, d, pam)
}

fn login(pam: &PamDir, user: &str, rhost: &str, answers: &[&str]) -> warden_e2e::pam::Outcome {
    drive(
        pam.dir.path(),
        &pam.service,
        user,
        Some(rhost),
        answers,
        false,
    )
}

#[test]
fn codes_pass_once_within_one_step_and_not_beyond() {
    let (bus, _d, pam) = setup("");
    let e = enroll(&bus.address, "alice", true);
    fresh_step(8);
    let t = now();
    let o = login(
        &pam,
        "alice",
        "203.0.113.1",
        &["right", &code_at(&e.secret, t)],
    );
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");
    assert_eq!(o.prompts, ["Password:", "Verification code:"]);
    // The same code again: its step is used up.
    let o = login(
        &pam,
        "alice",
        "203.0.113.1",
        &["right", &code_at(&e.secret, t)],
    );
    assert_eq!(o.auth, PAM_AUTH_ERR);
    assert!(
        o.messages.is_empty(),
        "a wrong code says no more than a wrong password: {o:?}"
    );
    // One step ahead is accepted; two steps off either way is not.
    let o = login(
        &pam,
        "alice",
        "203.0.113.1",
        &["right", &code_at(&e.secret, t + 30)],
    );
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");
    for off in [t + 60, t - 60] {
        let o = login(
            &pam,
            "alice",
            "203.0.113.1",
            &["right", &code_at(&e.secret, off)],
        );
        assert_eq!(o.auth, PAM_AUTH_ERR, "{} s off", off - t);
    }
}

#[test]
fn wrong_codes_lock_the_user_like_wrong_passwords() {
    let (bus, d, pam) = setup("");
    let e = enroll(&bus.address, "bob", true);
    for _ in 0..3 {
        let o = login(&pam, "bob", "203.0.113.2", &["right", "000000"]);
        assert_eq!(o.auth, PAM_AUTH_ERR);
    }
    let o = login(
        &pam,
        "bob",
        "203.0.113.2",
        &["right", &code_at(&e.secret, now())],
    );
    assert_eq!(
        o.messages,
        ["Too many failed attempts. Try again in 60 minutes."],
        "{o:?}"
    );
    assert_eq!(o.prompts.len(), 0, "refused at preauth, before any prompt");
    let f = wardenctl(&bus.address, None, &["failures", "--user", "bob", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&f.stdout).unwrap();
    assert_eq!(
        v.as_array()
            .unwrap()
            .iter()
            .filter(|x| x["kind"] == "totp")
            .count(),
        3,
        "{}",
        f.stdout
    );
    assert!(
        d.log_text().contains("totp service=warden-test user=bob"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_recovery_code_works_exactly_once() {
    let (bus, d, pam) = setup("");
    let e = enroll(&bus.address, "carol", true);
    assert_eq!(e.recovery.len(), 10);
    let code = e.recovery[3].clone();
    assert_eq!(
        login(&pam, "carol", "203.0.113.3", &["right", &code]).auth,
        PAM_SUCCESS
    );
    assert_eq!(
        login(&pam, "carol", "203.0.113.3", &["right", &code]).auth,
        PAM_AUTH_ERR
    );
    let s = wardenctl(&bus.address, None, &["totp", "status", "carol", "--json"]);
    assert!(s.stdout.contains("\"recovery_codes_left\": 9"), "{s:?}");
    assert!(d
        .log_text()
        .contains("totp-recovery-used user=carol left=9"));
}

#[test]
fn trusted_rhosts_and_remember_skip_the_code() {
    let (bus, _d, pam) = setup("trusted_rhosts = [\"10.0.0.0/8\"]\nremember = \"1h\"");
    let e = enroll(&bus.address, "dave", true);
    let o = login(&pam, "dave", "10.1.2.3", &["right"]);
    assert_eq!((o.auth, o.prompts.len()), (PAM_SUCCESS, 1), "{o:?}");
    fresh_step(5);
    let o = login(
        &pam,
        "dave",
        "192.0.2.5",
        &["right", &code_at(&e.secret, now())],
    );
    assert_eq!(o.auth, PAM_SUCCESS);
    let o = login(&pam, "dave", "192.0.2.5", &["right"]);
    assert_eq!(
        (o.auth, o.prompts.len()),
        (PAM_SUCCESS, 1),
        "remembered: {o:?}"
    );
    let o = login(&pam, "dave", "198.51.100.9", &["right", "000000"]);
    assert_eq!(o.auth, PAM_AUTH_ERR, "another source is asked again");
}

#[test]
fn required_but_not_enrolled_is_refused_or_warned_in_the_grace() {
    let (_bus, d, pam) = setup("required_for_users = [\"erin\"]");
    let not_set_up = ["A verification code is required, but none is set up for this account. Contact an administrator."];
    let o = login(&pam, "erin", "203.0.113.5", &["right", "123456"]);
    assert_eq!(o.auth, PAM_AUTH_ERR);
    assert_eq!(o.messages, not_set_up);
    assert!(d.log_text().contains("reason=totp-not-enrolled"));
    // A wrong password is asked for the code and told the same, so the
    // conversation does not say which it was.
    let wrong = login(&pam, "erin", "203.0.113.5", &["wrong", "123456"]);
    assert_eq!((&wrong.prompts, &wrong.messages), (&o.prompts, &o.messages));
    // Others are not affected.
    assert_eq!(
        login(&pam, "frank", "203.0.113.5", &["right"]).auth,
        PAM_SUCCESS
    );

    let (_bus, _d, pam) = setup("required_for_users = [\"erin\"]\ngrace_until = \"2999-12-31\"");
    let o = login(&pam, "erin", "203.0.113.5", &["right"]);
    assert_eq!(o.auth, PAM_SUCCESS);
    assert_eq!(o.messages, ["This account needs a verification code after 2999-12-31. Ask an administrator to set one up."]);
}

#[test]
fn an_unconfirmed_enrollment_asks_for_nothing() {
    let (bus, _d, pam) = setup("");
    enroll(&bus.address, "gina", false);
    let o = login(&pam, "gina", "203.0.113.6", &["right"]);
    assert_eq!((o.auth, o.prompts.len()), (PAM_SUCCESS, 1), "{o:?}");
    let s = wardenctl(&bus.address, None, &["totp", "status", "gina"]);
    assert!(s.stdout.contains("not confirmed"), "{s:?}");
    // A wrong first code does not confirm it.
    let c = wardenctl(&bus.address, None, &["totp", "confirm", "gina", "000000"]);
    assert_eq!(c.code, 1);
    assert!(c.stderr.contains("does not match"), "{c:?}");
}

#[test]
fn the_secret_is_in_no_log_and_no_file_outside_the_state_dir() {
    let (bus, d, pam) = setup("");
    let e = enroll(&bus.address, "hank", true);
    fresh_step(5);
    login(
        &pam,
        "hank",
        "203.0.113.7",
        &["right", &code_at(&e.secret, now())],
    );
    login(&pam, "hank", "203.0.113.7", &["right", "123456"]);
    let raw = base32_decode(&e.secret);
    let mut checked = 0;
    for root in [d.dir.path(), pam.dir.path(), bus.dir.path()] {
        for file in walk(root) {
            if file.starts_with(&d.state) {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&e.secret)
                    && !text.to_lowercase().contains(&e.secret.to_lowercase()),
                "secret in {}",
                file.display()
            );
            assert!(
                !bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
                "raw secret in {}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "the log, the config and the PAM files were checked"
    );
    assert!(!d.log_text().contains(&e.recovery[0]));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.state.join("warden.redb"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn self_enrollment_needs_self_enroll() {
    if !root_or_skip("self_enrollment_needs_self_enroll") {
        return;
    }
    let me = TestUser::create(&unique("wtotp"), "pw-unused-4");
    let (bus, _d, _pam) = setup("");
    let c = wardenctl(&bus.address, Some(me.uid), &["totp", "enroll"]);
    assert_eq!(c.code, 3, "{c:?}");
    let (bus, _d, _pam) = setup("self_enroll = true");
    let c = wardenctl(&bus.address, Some(me.uid), &["totp", "enroll"]);
    assert_eq!(c.code, 0, "{c:?}");
    assert!(
        c.stdout.contains("otpauth://totp/warden:") && c.stdout.contains('▀'),
        "a QR code in half blocks: {}",
        c.stdout
    );
    assert_eq!(
        wardenctl(&bus.address, Some(me.uid), &["totp", "enroll", "root"]).code,
        3
    );
    assert_eq!(
        wardenctl(&bus.address, Some(me.uid), &["totp", "remove", &me.name]).code,
        3
    );
}

#[test]
fn sshd_keyboard_interactive_asks_password_then_code() {
    if !root_or_skip("sshd_keyboard_interactive_asks_password_then_code") {
        return;
    }
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!("{}\n[totp]\n", user_rule(3, "1h", "1h")),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let user = TestUser::create(&unique("wtotpssh"), "Corr3ct-Horse");
    let e = enroll(&bus.address, &user.name, true);
    let sshd = Sshd::start(&unique("sshd-warden-t"), &sshd_stack(&d.socket), "");
    fresh_step(10);
    // ssh asks the script at each prompt: the password, then the code.
    let askpass = format!(
        "case \"$1\" in *erification*) echo {} ;; *) echo Corr3ct-Horse ;; esac",
        code_at(&e.secret, now())
    );
    let (ok, text) = sshd.login_with_askpass(&user.name, &askpass, 1);
    assert!(ok, "{text}\n{}\n{}", sshd.log(), d.log_text());
    d.wait_for_log(&format!("success service={}", sshd.service), 5);
    assert!(d.log_text().contains(&format!(
        "success service={} user={}",
        sshd.service, user.name
    )));
}

#[test]
fn a_wrong_password_and_a_wrong_code_look_the_same_over_ssh() {
    if !root_or_skip("a_wrong_password_and_a_wrong_code_look_the_same_over_ssh") {
        return;
    }
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!("{}\n[totp]\n", user_rule(10, "1h", "1h")),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let user = TestUser::create(&unique("wsame"), "Corr3ct-Horse");
    enroll(&bus.address, &user.name, true);
    let sshd = Sshd::start(&unique("sshd-warden-s"), &sshd_stack(&d.socket), "");
    // The script writes down every prompt ssh shows, and answers it.
    let conversation = |password: &str| {
        let file = sshd.dir.path().join(unique("prompts"));
        let askpass = format!(
            "echo \"$1\" >> {f}; case \"$1\" in *erification*) echo 000000 ;; *) echo {password} ;; esac",
            f = file.display()
        );
        let (ok, text) = sshd.login_with_askpass(&user.name, &askpass, 1);
        assert!(!ok, "{text}");
        (std::fs::read_to_string(&file).unwrap_or_default(), text)
    };
    let right = conversation("Corr3ct-Horse");
    let wrong = conversation("wrong-password");
    assert!(right.0.contains("Verification code"), "{right:?}");
    assert_eq!(right, wrong, "prompt by prompt, message by message");
    let log = d.log_text();
    assert!(log.contains(&format!("totp service={} user={}", sshd.service, user.name)));
    assert!(log.contains(&format!(
        "failure service={} user={}",
        sshd.service, user.name
    )));
}

#[test]
fn sshds_password_method_gives_no_wrong_code() {
    if !root_or_skip("sshds_password_method_gives_no_wrong_code") {
        return;
    }
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!("{}\n[totp]\n", user_rule(3, "1h", "1h")),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let user = TestUser::create(&unique("wpwm"), "Corr3ct-Horse");
    enroll(&bus.address, &user.name, true);
    let sshd = Sshd::start(
        &unique("sshd-warden-p"),
        &sshd_stack(&d.socket),
        "PasswordAuthentication yes",
    );
    // sshd's password method answers the code prompt with the password, which
    // counted as a wrong code each time and locked the user after three.
    for _ in 0..5 {
        let (ok, text) = sshd.login_password_method(&user.name, "Corr3ct-Horse");
        assert!(!ok, "{text}");
    }
    let log = d.log_text();
    assert_eq!(log.matches("reason=no-code-prompt").count(), 5, "{log}");
    assert!(
        !log.contains(&format!("totp service={}", sshd.service)),
        "{log}"
    );
    assert!(!log.contains("locked rule=user"), "{log}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => out.extend(walk(&p)),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
    out
}

fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap_or(0) as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The one thing an unanswered success gives up: a code that becomes due while
/// the password is typed (here, enrolment confirmed between preauth and
/// authsucc). That login has already gone ahead; wardend says so loudly, and
/// the next login asks for the code.
#[test]
fn a_code_due_in_the_middle_of_an_attempt_is_logged_loudly() {
    use warden_e2e::client::{connect, fields, request_on, send_on};
    use warden_proto::{RequestBody, ResponseBody};
    let (bus, d, pam) = setup("");
    let root = d.socket.with_file_name("warden-root.sock");
    let mut s = connect(&root).unwrap();
    let v = match request_on(
        &mut s,
        RequestBody::Begin(fields("hana", Some("203.0.113.9"))),
    ) {
        Ok(ResponseBody::Verdict(v)) => v,
        other => panic!("{other:?}"),
    };
    assert!(v.allowed && v.quiet_success, "not enrolled: {v:?}");
    // Enrolled and confirmed while "hana" types her password.
    enroll(&bus.address, "hana", true);
    let passed = RequestBody::Passed {
        attempt: v.attempt,
        fields: fields("hana", Some("203.0.113.9")),
    };
    send_on(&mut s, passed).unwrap();
    assert!(
        d.wait_for_log("passed-unchecked user=hana due=code", 5),
        "{}",
        d.log_text()
    );
    // Recorded as the success it was, not left waiting for a code that will
    // never come (which would count as a failure at its deadline).
    assert!(d.wait_for_log("success ", 5), "{}", d.log_text());
    let log = d.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("success ") && l.contains("user=hana")),
        "{log}"
    );
    // The next login is asked for the code.
    let o = login(&pam, "hana", "203.0.113.9", &["right", "000000"]);
    assert_eq!(o.prompts.len(), 2, "{o:?}");
    assert_eq!(o.auth, PAM_AUTH_ERR, "{o:?}");
}
