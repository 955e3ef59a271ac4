//! How the module sits in real PAM stacks: what counts as a guess with real
//! sudo, module arguments that must fail closed, and stacks wired by half.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;
use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus};
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::pam::{drive, PamDir, PAM_AUTH_ERR, PAM_SUCCESS};
use warden_e2e::system::{sudo, sudoers_for, Restore};
use warden_e2e::users::TestUser;
use warden_e2e::{paths, root_or_skip, unique};

/// /etc/pam.d/sudo with the warden stack around pam_unix, put back on drop.
fn sudo_stack(d: &Daemon) -> Restore {
    let m = paths::module();
    let (m, s) = (m.display(), d.socket.display());
    Restore::write(
        "/etc/pam.d/sudo",
        &format!(
            "auth     requisite                {m} preauth socket={s} nodelay\n\
             auth     [success=1 default=bad]  pam_unix.so nodelay\n\
             auth     [default=die]            {m} authfail socket={s}\n\
             auth     required                 {m} authsucc socket={s}\n\
             account  required                 pam_unix.so\n\
             session  required                 pam_permit.so\n"
        ),
        0o644,
    )
}

fn count(d: &Daemon, needle: &str) -> usize {
    d.log_text().matches(needle).count()
}

#[test]
fn sudo_counts_guesses_not_ends_of_input_or_ctrl_c() {
    if !root_or_skip("sudo_counts_guesses_not_ends_of_input_or_ctrl_c") {
        return;
    }
    let d = Daemon::start(&format!("{NO_FAMILIAR}{}", user_rule(5, "1h", "1h")));
    let user = TestUser::create(&unique("wsudoeof"), "Right-Pass-2");
    let _pam = sudo_stack(&d);
    // sudo's default of three tries, one wrong line, then the end of input:
    // sudo asks twice more and gets empty answers.
    let sudoers = Restore::write(
        &format!("/etc/sudoers.d/{}", unique("warden-test-")),
        &format!("{} ALL=(ALL) ALL\n", user.name),
        0o440,
    );
    let (ok, out) = sudo(&user.name, "wrong-password");
    assert!(!ok, "{out}");
    let failures = format!("failure service=sudo user={}", user.name);
    assert_eq!(count(&d, &failures), 1, "one guess:\n{}", d.log_text());
    assert!(count(&d, &format!("aborted service=sudo user={}", user.name)) >= 1);
    drop(sudoers);

    // Ctrl-C at the prompt: sudo reads, gets SIGINT, and gives up.
    let _sudoers = sudoers_for(&user.name);
    let aborted = format!("aborted service=sudo user={}", user.name);
    let aborted_before = count(&d, &aborted);
    let gid = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(user.uid))
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    let mut child = Command::new("sudo")
        .args(["-S", "-k", "-p", "password: ", "true"])
        .uid(user.uid)
        .gid(gid)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let status = child.wait().unwrap();
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(&d, &failures),
        1,
        "Ctrl-C is no guess:\n{}",
        d.log_text()
    );
    assert_eq!(
        count(&d, &aborted),
        aborted_before + 1,
        "it reached the prompt:\n{}",
        d.log_text()
    );
    // And a real wrong password still counts.
    sudo(&user.name, "wrong-again");
    assert_eq!(count(&d, &failures), 2, "{}", d.log_text());
}

#[test]
fn arguments_the_module_cannot_read_refuse_every_login() {
    // No daemon at all: with on_unavailable=ignore the login would pass, so a
    // misspelled `deny` or phase must refuse rather than guard nothing.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    for args in [
        "on_unavailable=Deny",
        "timeout_ms=soon",
        "enforce_in_acount",
    ] {
        let pam = PamDir::new(&socket, "0", args);
        let o = pam.attempt("alice", "right", None);
        assert_eq!(o.auth, PAM_AUTH_ERR, "{args}: {o:?}");
        assert_eq!(pam.checks(), 0, "{args}: refused before the password");
    }
    // A phase misspelled on the preauth line.
    let pam = PamDir::new(&socket, "0", "");
    let stack = std::fs::read_to_string(pam.dir.path().join(&pam.service)).unwrap();
    std::fs::write(
        pam.dir.path().join(&pam.service),
        stack.replacen(" preauth ", " preuath ", 1),
    )
    .unwrap();
    let out = Command::new(paths::pam_driver())
        .arg(pam.dir.path())
        .arg(&pam.service)
        .arg("alice")
        .args(["--password", "right"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("auth: {PAM_AUTH_ERR} ")),
        "{stdout}"
    );
    // With no syslog to take it (as here), the reason goes to stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !std::path::Path::new("/dev/log").exists() {
        assert!(
            stderr.contains("pam_warden: auth line: unknown or invalid argument \"preuath\""),
            "{stderr}"
        );
    }
}

#[test]
fn a_stack_wired_by_half_is_noticed_and_never_locks_its_users() {
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!(
            "attempt_timeout = \"1s\"\n{NO_FAMILIAR}{}",
            user_rule(3, "1h", "1h")
        ),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    // The preauth line alone, as when one of the three pam-auth-update
    // profiles is ticked, next to a whole stack.
    let pam = PamDir::new(&d.socket, "0", "");
    let whole = std::fs::read_to_string(pam.dir.path().join(&pam.service)).unwrap();
    let half: String = whole
        .lines()
        .filter(|l| !l.contains("authfail") && !l.contains("authsucc"))
        .map(|l| format!("{}\n", l.replace("[success=1 default=bad]", "required")))
        .collect();
    std::fs::write(pam.dir.path().join("half"), half).unwrap();
    for i in 0..5 {
        let o = drive(pam.dir.path(), "half", "owner", None, &["right"], false);
        assert_eq!(o.auth, PAM_SUCCESS, "good login {i}: {o:?}");
        // Past attempt_timeout and the daemon's next tick.
        std::thread::sleep(Duration::from_millis(2300));
    }
    let log = d.log_text();
    assert!(log.contains("service-half-wired service=half"), "{log}");
    assert_eq!(log.matches("service-half-wired").count(), 1, "once");
    let s = wardenctl(&bus.address, None, &["status", "--json"]);
    assert!(
        s.stdout
            .contains("\"half_wired_services\": [\n    \"half\""),
        "{s:?}"
    );
    // The doctor names it, and the whole stack beside it.
    let c = wardenctl(
        &bus.address,
        None,
        &["doctor", "--pam-dir", &pam.dir.path().display().to_string()],
    );
    assert_eq!(c.code, 1, "{c:?}");
    assert!(
        c.stdout.contains("half") && c.stdout.contains("partial"),
        "{c:?}"
    );
    assert!(
        c.stdout.contains("warden-test") && c.stdout.contains("complete"),
        "{c:?}"
    );
    assert!(
        c.stdout
            .contains("wardend has seen attempts begin and never end for: half"),
        "{c:?}"
    );
}

/// The shipped authselect files, with the module named by the build's path and
/// pointed at a test daemon, beside Fedora-style service files that include them.
fn fedora_dir(d: &Daemon) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("warden-fedora")
        .tempdir()
        .unwrap();
    let m = paths::module();
    let module = format!("{} socket={}", m.display(), d.socket.display());
    for f in ["system-auth", "password-auth"] {
        let text = std::fs::read_to_string(paths::repo_file(&format!("packaging/authselect/{f}")))
            .unwrap();
        // Only the module's path and socket change; every control stays as shipped.
        let text = text
            .lines()
            .map(|l| match l.split_once("pam_warden.so") {
                Some((head, tail)) if !l.starts_with('#') => format!("{head}{module}{tail}\n"),
                _ => format!("{l}\n"),
            })
            .collect::<String>();
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    // As Fedora's sshd and sudo include them. libpam 1.5.2 looks an included
    // name up in /etc/pam.d even under pam_start_confdir, so here they are
    // named by path.
    let at = |f: &str| dir.path().join(f).display().to_string();
    std::fs::write(
        dir.path().join("sshd"),
        format!(
            "auth       substack     {pa}\naccount    required     pam_nologin.so\naccount    include      {pa}\n",
            pa = at("password-auth")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sudo"),
        format!(
            "auth       include      {sa}\naccount    include      {sa}\n",
            sa = at("system-auth")
        ),
    )
    .unwrap();
    dir
}

#[test]
fn the_shipped_authselect_files_guard_a_fedora_shaped_stack() {
    if !root_or_skip("the_shipped_authselect_files_guard_a_fedora_shaped_stack") {
        return;
    }
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!("{NO_FAMILIAR}{}[totp]\n", user_rule(3, "1h", "1h")),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let dir = fedora_dir(&d);
    let user = TestUser::create(&unique("wfed"), "Right-Pass-3");
    let login = |service: &str, answers: &[&str]| {
        drive(
            dir.path(),
            service,
            &user.name,
            Some("198.51.100.30"),
            answers,
            true,
        )
    };
    let o = login("sshd", &["Right-Pass-3"]);
    assert_eq!(o.auth, PAM_SUCCESS, "a right password logs in: {o:?}");
    assert_eq!(o.account, Some(PAM_SUCCESS), "{o:?}");
    let o = login("sshd", &["wrong-password"]);
    assert_eq!(o.auth, PAM_AUTH_ERR, "a wrong password does not: {o:?}");
    let o = login("sudo", &["Right-Pass-3"]);
    assert_eq!(o.auth, PAM_SUCCESS, "through include too: {o:?}");
    let who = format!("user={}", user.name);
    // A success's line follows its commit, which follows the answer.
    d.wait_for_log(&format!("success service=sudo {who}"), 5);
    let log = d.log_text();
    assert_eq!(
        log.matches(&format!("failure service=sshd {who}")).count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches(&format!("success service=sshd {who}")).count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches(&format!("success service=sudo {who}")).count(),
        1,
        "{log}"
    );

    // With a code enrolled: right password and code, right password and a
    // wrong code, a wrong password (which meets the same prompt).
    let e = warden_e2e::totp::enroll(&bus.address, &user.name, true);
    warden_e2e::totp::fresh_step(8);
    let code = warden_e2e::totp::code_at(&e.secret, warden_e2e::totp::now());
    let o = login("sshd", &["Right-Pass-3", &code]);
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");
    assert_eq!(o.prompts, ["Password:", "Verification code:"]);
    let right_wrong_code = login("sshd", &["Right-Pass-3", "000000"]);
    let wrong_password = login("sshd", &["wrong-password", "000000"]);
    assert_eq!(right_wrong_code.auth, PAM_AUTH_ERR);
    assert_eq!(wrong_password.auth, PAM_AUTH_ERR);
    assert_eq!(
        (&right_wrong_code.prompts, &right_wrong_code.messages),
        (&wrong_password.prompts, &wrong_password.messages)
    );
    // Successes reset the count; since the last: a wrong code, a wrong
    // password, and one more make three, the limit.
    login("sshd", &["wrong-again"]);
    let o = login("sshd", &["Right-Pass-3", &code]);
    assert_eq!(o.auth, PAM_AUTH_ERR, "{o:?}");
    assert!(o.prompts.is_empty(), "refused before the password: {o:?}");
}
