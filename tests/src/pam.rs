//! A private PAM directory for `pam_start_confdir`, the warden stack, and the
//! driver that runs it.

use crate::paths;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pam_faillock-style stack around a password check line.
pub fn stack(socket: &Path, check: &str, extra_args: &str) -> String {
    let m = paths::module();
    let (m, s) = (m.display(), socket.display());
    format!(
        "auth     requisite                {m} preauth socket={s} nodelay {extra_args}\n\
         auth     [success=1 default=bad]  {check}\n\
         auth     [default=die]            {m} authfail socket={s} {extra_args}\n\
         auth     required                 {m} authsucc socket={s} {extra_args}\n\
         account  required                 {m} socket={s} {extra_args}\n"
    )
}

/// A PAM directory holding one service, and a password check that counts how
/// often it runs: the right password is "right".
pub struct PamDir {
    pub dir: tempfile::TempDir,
    pub service: String,
    pub counter: PathBuf,
}

impl PamDir {
    /// `check_delay` makes each password check take that long, so that
    /// concurrent attempts overlap as they do against a real password hash.
    pub fn new(socket: &Path, check_delay: &str, extra_args: &str) -> PamDir {
        PamDir::named("warden-test", socket, check_delay, extra_args)
    }

    /// As [`new`](Self::new), with the service named `service`.
    pub fn named(service: &str, socket: &Path, check_delay: &str, extra_args: &str) -> PamDir {
        let dir = tempfile::Builder::new()
            .prefix("warden-pam")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let counter = dir.path().join("checks");
        let script = dir.path().join("check-password");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\npw=$(tr -d '\\000')\necho check >> '{}'\nsleep {check_delay}\n[ \"$pw\" = right ]\n",
                counter.display()
            ),
        )
        .unwrap_or_else(|e| panic!("write script: {e}"));
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let check = format!("pam_exec.so quiet expose_authtok {}", script.display());
        let service = service.to_string();
        std::fs::write(dir.path().join(&service), stack(socket, &check, extra_args))
            .unwrap_or_else(|e| panic!("{e}"));
        PamDir {
            dir,
            service,
            counter,
        }
    }

    /// How many password checks ran.
    pub fn checks(&self) -> usize {
        std::fs::read_to_string(&self.counter)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// An attempt as su or sudo make it: no rhost, PAM_RUSER the invoking user.
    pub fn local_attempt(&self, user: &str, password: &str, ruser: &str) -> Outcome {
        drive_as(
            self.dir.path(),
            &self.service,
            user,
            None,
            Some(ruser),
            &[password],
            false,
        )
    }

    /// A wrong password (a fresh guess each call) from an application running
    /// in `locale` (`LOCPATH` may point at a locale the test made).
    pub fn wrong_in(&self, locale: &str, locpath: &Path, user: &str) -> Outcome {
        let out = Command::new(paths::pam_driver())
            .arg(self.dir.path())
            .arg(&self.service)
            .arg(user)
            .args(["--tty", "ssh", "--locale", locale, "--password"])
            .arg(format!("wrong-{}", fresh_guess()))
            .env("LOCPATH", locpath)
            .output()
            .unwrap_or_else(|e| panic!("pam-driver: {e}"));
        assert!(out.status.code() != Some(2), "{}", crate::joined(&out));
        parse(&String::from_utf8_lossy(&out.stdout))
    }

    pub fn attempt(&self, user: &str, password: &str, rhost: Option<&str>) -> Outcome {
        drive(
            self.dir.path(),
            &self.service,
            user,
            rhost,
            &[password],
            false,
        )
    }
}

/// What one run of the driver saw.
#[derive(Debug)]
pub struct Outcome {
    /// The PAM return code of pam_authenticate.
    pub auth: i32,
    pub account: Option<i32>,
    pub messages: Vec<String>,
    pub prompts: Vec<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.auth == 0
    }
}

pub const PAM_SUCCESS: i32 = 0;
/// What the stack returns for a wrong password: pam_exec reports its script's
/// non-zero exit as PAM_SYSTEM_ERR, and as the first failing module its code wins.
pub const WRONG_PASSWORD: i32 = 4;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_PERM_DENIED: i32 = 6;

pub fn drive(
    confdir: &Path,
    service: &str,
    user: &str,
    rhost: Option<&str>,
    passwords: &[&str],
    account: bool,
) -> Outcome {
    drive_as(confdir, service, user, rhost, None, passwords, account)
}

/// As [`drive`], with PAM_RUSER set: what su and sudo set to the invoking user.
pub fn drive_as(
    confdir: &Path,
    service: &str,
    user: &str,
    rhost: Option<&str>,
    ruser: Option<&str>,
    passwords: &[&str],
    account: bool,
) -> Outcome {
    let mut cmd = Command::new(paths::pam_driver());
    cmd.arg(confdir)
        .arg(service)
        .arg(user)
        .args(["--tty", "ssh"]);
    if let Some(r) = rhost {
        cmd.args(["--rhost", r]);
    }
    if let Some(r) = ruser {
        cmd.args(["--ruser", r]);
    }
    // Each call's wrong passwords are a fresh guess, as a guesser's are:
    // wardend counts a repeat of one of a user's last wrong passwords once
    // (`same_password_once`). A test that means a repeat uses a password
    // that does not start with "wrong" ("stale-password").
    let call = fresh_guess();
    for p in passwords {
        if p.starts_with("wrong") {
            cmd.args(["--password", &format!("{p}-{call}")]);
        } else {
            cmd.args(["--password", p]);
        }
    }
    if account {
        cmd.arg("--account");
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("pam-driver: {e}"));
    parse(&String::from_utf8_lossy(&out.stdout))
}

fn parse(stdout: &str) -> Outcome {
    let mut o = Outcome {
        auth: -1,
        account: None,
        messages: Vec::new(),
        prompts: Vec::new(),
    };
    let code = |s: &str| {
        s.split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(-1)
    };
    for line in stdout.lines() {
        if let Some(m) = line.strip_prefix("msg: ") {
            o.messages.push(m.to_string());
        } else if let Some(p) = line.strip_prefix("prompt: ") {
            o.prompts.push(p.to_string());
        } else if let Some(c) = line.strip_prefix("auth: ") {
            o.auth = code(c);
        } else if let Some(c) = line.strip_prefix("account: ") {
            o.account = Some(code(c));
        }
    }
    o
}

/// A number no other call of this process has had.
pub fn fresh_guess() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
