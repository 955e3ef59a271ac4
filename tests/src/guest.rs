//! A Debian 12 guest booted with systemd as PID 1 (`systemd-nspawn -b`), for
//! what only a booted system shows: units, socket activation, reload, a
//! reboot, the package's maintainer scripts against a running dbus.
//!
//! Its root filesystem comes from mmdebstrap and is cached in
//! /var/cache/warden-test, keyed by its package list; each test boots a copy.
//! The guest has its own network namespace (`--private-network`: loopback
//! only), and is entered with nsenter, since the host runs no systemd to
//! register it with. Nothing of the host's own /etc is touched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the guest needs beyond `--variant=apt`.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "openssh-client",
    "sudo",
    "sshpass",
    "libpam-runtime",
    // The firewall step: the shipped table and the drop-in that lets wardend change it.
    "nftables",
    "libpam-modules",
    "passwd",
    "login",
    "adduser",
    "procps",
    "iproute2",
];
const CACHE: &str = "/var/cache/warden-test";
const SOURCES: [&str; 3] = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];

pub struct Guest {
    /// The guest's root, on the host.
    pub root: PathBuf,
    nspawn: Option<Child>,
    init: u32,
}

/// Whether this machine can boot a guest; otherwise why not.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    for tool in ["mmdebstrap", "systemd-nspawn", "nsenter"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed (make deps installs it)"));
        }
    }
    None
}

/// The cached root filesystem, built on first use.
fn rootfs() -> PathBuf {
    let key = PACKAGES.join(",");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let dir = PathBuf::from(CACHE).join(format!("bookworm-{h:016x}"));
    if dir.join("etc/os-release").exists() {
        return dir;
    }
    std::fs::create_dir_all(CACHE).unwrap_or_else(|e| panic!("{CACHE}: {e}"));
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let out = Command::new("mmdebstrap")
        .args(["--variant=apt", "--format=directory", "--quiet"])
        .arg(format!("--include={key}"))
        .arg("bookworm")
        .arg(&partial)
        .args(SOURCES)
        .output()
        .unwrap_or_else(|e| panic!("mmdebstrap: {e}"));
    assert!(
        out.status.success(),
        "mmdebstrap failed: {}",
        crate::joined(&out)
    );
    std::fs::rename(&partial, &dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

impl Guest {
    /// A fresh copy of the cached root filesystem, booted.
    pub fn boot() -> Guest {
        let base = rootfs();
        let root = PathBuf::from(CACHE).join(crate::unique("guest-"));
        let ok = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(&base)
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "copying the guest's root failed");
        let mut g = Guest {
            root,
            nspawn: None,
            init: 0,
        };
        g.start();
        g
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.root.with_extension("console"))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new("systemd-nspawn")
            .args(["-b", "-D"])
            .arg(&self.root)
            .args([
                "--register=no",
                "--keep-unit",
                "--private-network",
                "--quiet",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap_or_else(|e| panic!("{e}")))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("systemd-nspawn: {e}"));
        let nspawn = child.id();
        self.nspawn = Some(child);
        let start = Instant::now();
        self.init = loop {
            if let Some(pid) = init_under(nspawn) {
                break pid;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the guest did not start:\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // Until its PID 1 has its socket up, systemctl answers at once with
        // "offline" or "Failed to connect to bus": ask again.
        let mut state = String::new();
        while start.elapsed() < Duration::from_secs(90) {
            state = self.sh("timeout 60 systemctl is-system-running --wait").1;
            if !state.contains("offline") && !state.contains("Failed to connect") {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !(state.contains("running") || state.contains("degraded")) {
            let console = self.console();
            let tail: Vec<&str> = console.lines().rev().take(40).collect();
            let failed =
                self.sh("systemctl --failed --no-legend; systemctl list-jobs --no-legend | head");
            panic!(
                "the guest did not finish booting: state {state:?}, failed units and jobs:\n{}\nconsole (last lines):\n{}",
                failed.1,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    pub fn console(&self) -> String {
        std::fs::read_to_string(self.root.with_extension("console")).unwrap_or_default()
    }

    /// Runs `script` with sh as root inside the guest: whether it succeeded,
    /// and all it printed.
    pub fn sh(&self, script: &str) -> (bool, String) {
        crate::run(
            Command::new("nsenter")
                .args([
                    "-t",
                    &self.init.to_string(),
                    "-m",
                    "-u",
                    "-i",
                    "-n",
                    "-p",
                    "--",
                ])
                .args(["/bin/sh", "-c", script])
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()),
        )
    }

    /// Like [`sh`](Self::sh), and the script must succeed.
    pub fn ok(&self, script: &str) -> String {
        let (ok, out) = self.sh(script);
        assert!(ok, "in the guest: {script}\n{out}");
        out
    }

    /// A file of the host, put at `at` in the guest.
    pub fn put(&self, host: &Path, at: &str) {
        std::fs::copy(host, self.root.join(at.trim_start_matches('/')))
            .unwrap_or_else(|e| panic!("{} -> {at}: {e}", host.display()));
    }

    pub fn read(&self, at: &str) -> String {
        std::fs::read_to_string(self.root.join(at.trim_start_matches('/'))).unwrap_or_default()
    }

    /// `systemctl reboot`, then a new boot of the same root: a fresh PID 1
    /// and an empty /run, as after a real reboot.
    pub fn reboot(&mut self) {
        let _ = self.sh("systemctl reboot");
        self.wait_for_exit();
        self.start();
    }

    fn wait_for_exit(&mut self) {
        if let Some(mut c) = self.nspawn.take() {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if self.nspawn.is_some() {
            let _ = self.sh("systemctl poweroff");
            self.wait_for_exit();
        }
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_file(self.root.with_extension("console"));
    }
}

/// The guest's init: a descendant of `nspawn` that is PID 1 in its own PID
/// namespace (`NSpid:` ends in 1).
fn init_under(nspawn: u32) -> Option<u32> {
    let mut parents = vec![nspawn];
    let mut seen = 0;
    while seen < parents.len() {
        let parent = parents[seen];
        seen += 1;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or("")
                    .to_string()
            };
            if field("PPid:").parse::<u32>().ok() != Some(parent) {
                continue;
            }
            let nspid = field("NSpid:");
            if nspid.split_whitespace().count() > 1 && nspid.split_whitespace().last() == Some("1")
            {
                return Some(pid);
            }
            parents.push(pid);
        }
    }
    None
}
