//! pamtester (an independent PAM client) against a service file in /etc/pam.d.

use std::io::Write;
use std::process::{Command, Stdio};
use warden_e2e::daemon::{user_rule, Daemon};
use warden_e2e::users::TestUser;
use warden_e2e::{paths, root_or_skip, unique};

struct PamFile(std::path::PathBuf);

impl Drop for PamFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn pamtester(service: &str, user: &str, password: &str) -> (bool, String) {
    let mut child = Command::new("pamtester")
        .args([service, user, "authenticate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = writeln!(stdin, "{password}");
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), warden_e2e::joined(&out))
}

#[test]
fn pamtester_sees_the_lockout_and_its_message() {
    if !root_or_skip("pamtester_sees_the_lockout_and_its_message") {
        return;
    }
    let d = Daemon::start(&user_rule(2, "15m", "15m"));
    let user = TestUser::create(&unique("wpt"), "Corr3ct-Horse");
    let service = unique("warden-pamtester-");
    let m = paths::module();
    let (m, s) = (m.display(), d.socket.display());
    let file = PamFile(std::path::PathBuf::from("/etc/pam.d").join(&service));
    std::fs::write(
        &file.0,
        format!(
            "auth requisite {m} preauth socket={s} nodelay\n\
             auth [success=1 default=bad] pam_unix.so nodelay\n\
             auth [default=die] {m} authfail socket={s}\n\
             auth required {m} authsucc socket={s}\n"
        ),
    )
    .unwrap();
    assert!(pamtester(&service, &user.name, "Corr3ct-Horse").0);
    // Two different guesses: a repeat of one counts once.
    assert!(!pamtester(&service, &user.name, "nope-1").0);
    assert!(!pamtester(&service, &user.name, "nope-2").0);
    let (ok, text) = pamtester(&service, &user.name, "Corr3ct-Horse");
    assert!(!ok);
    assert!(
        text.contains("Too many failed attempts. Try again in 15 minutes."),
        "{text}"
    );
}
