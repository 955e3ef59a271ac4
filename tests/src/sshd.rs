//! A real sshd on 127.0.0.1, on a free port, with UsePAM and its own PAM
//! service. sshd names its PAM service after its program name, so a link
//! `<dir>/NAME -> /usr/sbin/sshd` makes it use /etc/pam.d/NAME.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub service: String,
    pam_file: PathBuf,
    child: Child,
}

/// The warden stack around pam_unix for an sshd service.
pub fn sshd_stack(socket: &std::path::Path) -> String {
    let m = crate::paths::module();
    let (m, s) = (m.display(), socket.display());
    format!(
        "auth     requisite                {m} preauth socket={s} nodelay\n\
         auth     [success=1 default=bad]  pam_unix.so nodelay\n\
         auth     [default=die]            {m} authfail socket={s}\n\
         auth     required                 {m} authsucc socket={s}\n\
         account  required                 pam_unix.so\n\
         account  required                 {m} socket={s}\n\
         session  required                 pam_permit.so\n"
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl Sshd {
    /// Starts sshd with `pam_stack` as /etc/pam.d/`service`; `extra` adds sshd_config lines.
    pub fn start(service: &str, pam_stack: &str, extra: &str) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("warden-sshd")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let key = dir.path().join("host_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status();
        assert!(keygen.is_ok_and(|s| s.success()), "ssh-keygen failed");
        let _ = std::fs::create_dir_all("/run/sshd");
        let pam_file = PathBuf::from("/etc/pam.d").join(service);
        std::fs::write(&pam_file, pam_stack)
            .unwrap_or_else(|e| panic!("write {}: {e}", pam_file.display()));
        let link = dir.path().join(service);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &link).unwrap_or_else(|e| panic!("{e}"));
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            // `extra` first: sshd keeps the first value it reads for a keyword.
            format!(
                "{extra}\nPort {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}/sshd.pid\n\
                 UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication no\nPermitRootLogin no\nStrictModes no\nMaxAuthTries 10\n\
                 LogLevel VERBOSE\n",
                key.display(),
                dir.path().display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let log =
            std::fs::File::create(dir.path().join("sshd.log")).unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(&link)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start sshd: {e}"));
        let s = Sshd {
            port,
            dir,
            service: service.to_string(),
            pam_file,
            child,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sshd did not listen:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// One login with the real OpenSSH client, where ssh asks the shell script
    /// `askpass` at every prompt (`$1` is the prompt), so each of several
    /// prompts on one connection is really answered. Returns whether `echo ok`
    /// ran remotely, and what ssh printed.
    pub fn login_with_askpass(&self, user: &str, askpass: &str, tries: u32) -> (bool, String) {
        let script = self.dir.path().join(format!("askpass-{user}"));
        std::fs::write(&script, format!("#!/bin/sh\n{askpass}\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new("setsid");
        cmd.args(["-w", "ssh"])
            .args(self.ssh_args(user, tries))
            .env("SSH_ASKPASS", &script)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0");
        logged_in(cmd)
    }

    /// One login with the real OpenSSH client, answering the password prompt
    /// with sshpass. Returns whether `echo ok` ran remotely, and what ssh printed.
    pub fn login(&self, user: &str, password: &str) -> (bool, String) {
        let mut cmd = Command::new("sshpass");
        cmd.args(["-p", password, "ssh"])
            .args(self.ssh_args(user, 1));
        logged_in(cmd)
    }

    /// One login with sshd's password method (not keyboard-interactive): sshd
    /// answers every PAM prompt with the one password the client sent.
    pub fn login_password_method(&self, user: &str, password: &str) -> (bool, String) {
        let mut cmd = Command::new("sshpass");
        cmd.args(["-p", password, "ssh"])
            .args(self.ssh_args_for("password", user, 1));
        logged_in(cmd)
    }

    /// One login as a person makes it: ssh at its default log level (which
    /// prints what sshd relays from PAM), `method` preferred. Returns all ssh
    /// printed.
    pub fn login_as_people_do(&self, method: &str, user: &str, password: &str) -> String {
        let mut cmd = Command::new("sshpass");
        cmd.args(["-p", password, "ssh"])
            .args(self.ssh_args_at("INFO", method, user, 1));
        crate::run(cmd.stdin(Stdio::null())).1
    }

    /// ssh's arguments for one keyboard-interactive login to this sshd that runs
    /// `echo warden-login-ok` on success.
    fn ssh_args(&self, user: &str, tries: u32) -> Vec<String> {
        self.ssh_args_for("keyboard-interactive", user, tries)
    }

    fn ssh_args_for(&self, method: &str, user: &str, tries: u32) -> Vec<String> {
        self.ssh_args_at("ERROR", method, user, tries)
    }

    fn ssh_args_at(&self, level: &str, method: &str, user: &str, tries: u32) -> Vec<String> {
        [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            &format!("PreferredAuthentications={method}"),
            "-o",
            &format!("NumberOfPasswordPrompts={tries}"),
            "-o",
            &format!("LogLevel={level}"),
            "-o",
            "ConnectTimeout=10",
            "-p",
            &self.port.to_string(),
            &format!("{user}@127.0.0.1"),
            "echo",
            "warden-login-ok",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// Runs an ssh login and reports whether the remote command ran.
fn logged_in(mut cmd: Command) -> (bool, String) {
    let (_, text) = crate::run(cmd.stdin(Stdio::null()));
    (text.contains("warden-login-ok"), text)
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pam_file);
    }
}
