//! A real wardend on a scratch config, socket and state directory.

use crate::{joined, paths};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Config lines that turn off familiar sources, so that every failure of a
/// user counts against one budget.
pub const NO_FAMILIAR: &str = "[familiar]\nenabled = false\n";

/// The config block of a rule that counts failures per address.
pub fn rhost_rule(limit: u32, window: &str, lockout: &str) -> String {
    format!(
        "[[rule]]\nname = \"rhost\"\ntrack = [\"rhost\"]\nlimit = {limit}\nwindow = \"{window}\"\nlockout = \"{lockout}\"\n"
    )
}

/// The on-call tests' host: one address on `[deny]`, 3 failures lock a user
/// for 15m, 4 lock an address for an hour.
pub fn deny_user_rhost() -> String {
    format!(
        "[deny]\nrhosts = [\"198.51.100.66\"]\n{}{}",
        user_rule(3, "1h", "15m"),
        rhost_rule(4, "1h", "1h")
    )
}

/// The config block of a rule that counts failures per user.
pub fn user_rule(limit: u32, window: &str, lockout: &str) -> String {
    format!(
        "[[rule]]\nname = \"user\"\ntrack = [\"user\"]\nlimit = {limit}\nwindow = \"{window}\"\nlockout = \"{lockout}\"\n"
    )
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    /// A command wardend runs under (`ip netns exec NS`); empty for none.
    wrap: Vec<String>,
    child: Option<Child>,
}

impl Daemon {
    /// Starts wardend with `extra` appended to a config that sets the socket and
    /// state directory inside a fresh temporary directory.
    pub fn start(extra: &str) -> Daemon {
        Daemon::start_with_env(extra, &[])
    }

    /// As [`start`](Self::start), with extra environment (the bus address).
    pub fn start_with_env(extra: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_wrapped(extra, env, &[])
    }

    /// As [`start_with_env`](Self::start_with_env), with wardend run under
    /// `wrap` (such as `ip netns exec NS`).
    pub fn start_wrapped(extra: &str, env: &[(&str, &str)], wrap: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("warden-test")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        // Unprivileged peers must reach the socket; the state dir stays 0700.
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
        let socket = dir.path().join("run/warden.sock");
        let state = dir.path().join("state");
        let config = dir.path().join("warden.toml");
        let text = format!(
            "socket = \"{}\"\nstate_dir = \"{}\"\n{extra}",
            socket.display(),
            state.display()
        );
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("write config: {e}"));
        let log = dir.path().join("wardend.log");
        let mut d = Daemon {
            dir,
            socket,
            config,
            state,
            log,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wrap: wrap.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open log: {e}"));
        let mut cmd = match self.wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(paths::wardend());
                c
            }
            None => Command::new(paths::wardend()),
        };
        let child = cmd
            .arg("--config")
            .arg(&self.config)
            .arg("--log-stderr")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start wardend: {e}"));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("wardend exited with {status}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("wardend did not listen within 20 s:\n{}", self.log_text());
    }

    /// The addresses the shipped fail2ban filter takes from the daemon's log.
    pub fn fail2ban_matches(&self) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("fail2ban-regex: {e}"));
        std::fs::create_dir(dir.path().join("filter.d"))
            .unwrap_or_else(|e| panic!("fail2ban-regex: {e}"));
        std::fs::copy(
            "/etc/fail2ban/filter.d/common.conf",
            dir.path().join("filter.d/common.conf"),
        )
        .unwrap_or_else(|e| panic!("fail2ban-regex: {e}"));
        let filter = dir.path().join("filter.d/warden.conf");
        std::fs::copy(
            paths::repo_file("packaging/fail2ban/filter.d/warden.conf"),
            &filter,
        )
        .unwrap_or_else(|e| panic!("fail2ban-regex: {e}"));
        // As syslog would write wardend's lines to auth.log.
        let log: String = self
            .log_text()
            .lines()
            .filter_map(|l| l.strip_prefix("wardend: "))
            .map(|l| format!("Nov 23 12:00:00 host wardend[4242]: {l}\n"))
            .collect();
        let log_path = dir.path().join("auth.log");
        std::fs::write(&log_path, log).unwrap_or_else(|e| panic!("fail2ban-regex: {e}"));
        let out = Command::new("fail2ban-regex")
            .args(["--print-all-matched", "--raw"])
            .arg(&log_path)
            .arg(&filter)
            .output()
            .unwrap_or_else(|e| panic!("fail2ban-regex: {e}"));
        let text = joined(&out);
        assert!(out.status.success(), "{text}");
        let mut ips: Vec<String> = text
            .lines()
            .skip_while(|l| !l.starts_with("|- Matched line(s):"))
            .skip(1)
            .take_while(|l| l.starts_with("|  "))
            .filter_map(|l| l.split(" rhost=").nth(1))
            .filter_map(|r| r.split(' ').next())
            .map(str::to_string)
            .collect();
        ips.sort();
        ips.dedup();
        ips
    }

    /// Waits until the log shows `needle`, for up to `secs` seconds.
    pub fn wait_for_log(&self, needle: &str, secs: u64) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    /// Stops (SIGTERM) if running, then starts again on the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// SIGSTOP or SIGCONT: a daemon that is there but does not answer.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }

    /// Sends a request through the raw client and returns what it printed.
    pub fn request(&self, args: &[&str]) -> String {
        let out = Command::new(paths::raw_client())
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("raw-client: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
