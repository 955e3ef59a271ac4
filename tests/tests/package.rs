//! The .deb installed for real: paths, modes, the module where libpam looks,
//! the installed daemon with its installed config, sudo through
//! pam-auth-update, and a clean roll-back and purge. And the .rpm inspected.
//!
//! One test, in order, because it changes the machine (PAM, dpkg, a group);
//! a guard puts everything back even when an assertion fails.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus};
use warden_e2e::pam::drive;
use warden_e2e::system::sudo;
use warden_e2e::users::TestUser;
use warden_e2e::{paths, root_or_skip, unique};

const PROFILES: [&str; 3] = ["warden", "warden-authfail", "warden-authsucc"];
/// Where Debian's own PAM modules are (libpam-modules ships to /lib).
const MODULE: &str = "/lib/x86_64-linux-gnu/security/pam_warden.so";

fn artefact(rel: &str, make: &str) -> PathBuf {
    let p = paths::target_dir().join("..").join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `make {make}` first (make test does)",
        p.display()
    );
    p
}

fn run(cmd: &mut Command) -> (bool, String) {
    warden_e2e::run(cmd.env("DEBIAN_FRONTEND", "noninteractive"))
}

fn sh(line: &str) -> (bool, String) {
    run(Command::new("sh").args(["-c", line]))
}

/// Undoes whatever the test got to, in reverse.
struct Restore {
    sudoers: PathBuf,
    daemon: Option<Child>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = sh("pam-auth-update --disable warden warden-authfail warden-authsucc 2>/dev/null");
        let _ = sh("dpkg -P warden >/dev/null 2>&1");
    }
}

fn mode_owner(path: &str) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.permissions().mode() & 0o7777, m.uid(), m.gid())
}

fn group_exists(name: &str) -> bool {
    nix::unistd::Group::from_name(name).ok().flatten().is_some()
}

#[test]
fn the_deb_installs_guards_sudo_and_leaves_nothing_after_purge() {
    if !root_or_skip("the_deb_installs_guards_sudo_and_leaves_nothing_after_purge") {
        return;
    }
    let deb = artefact("debian/warden.deb", "deb");
    let before_auth = std::fs::read_to_string("/etc/pam.d/common-auth").unwrap();
    let before_account = std::fs::read_to_string("/etc/pam.d/common-account").unwrap();
    let had_group = group_exists("warden-admin");
    let mut restore = Restore {
        sudoers: PathBuf::from("/etc/sudoers.d").join(unique("warden-test-")),
        daemon: None,
    };

    // 1. Install, and check paths, modes and owners.
    let (ok, out) = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(ok, "dpkg -i: {out}");
    for (path, mode) in [
        ("/usr/sbin/wardend", 0o755),
        ("/usr/bin/wardenctl", 0o755),
        (MODULE, 0o644),
        ("/usr/lib/systemd/system/wardend.service", 0o644),
        ("/usr/lib/systemd/system/wardend.socket", 0o644),
        ("/usr/lib/systemd/system/warden-metrics.service", 0o644),
        ("/usr/lib/systemd/system/warden-metrics.timer", 0o644),
        ("/usr/share/dbus-1/system.d/org.warden.Warden1.conf", 0o644),
        ("/etc/warden/warden.toml", 0o644),
        ("/usr/lib/tmpfiles.d/warden.conf", 0o644),
        ("/usr/share/pam-configs/warden", 0o644),
        ("/usr/share/pam-configs/warden-authfail", 0o644),
        ("/usr/share/pam-configs/warden-authsucc", 0o644),
        ("/usr/share/man/man8/wardenctl.8.gz", 0o644),
        ("/usr/share/man/man8/wardend.8.gz", 0o644),
        ("/usr/share/man/man8/pam_warden.8.gz", 0o644),
        ("/usr/share/man/man5/warden.toml.5.gz", 0o644),
        ("/usr/share/bash-completion/completions/wardenctl", 0o644),
        ("/usr/share/doc/warden/README.md", 0o644),
        ("/usr/share/doc/warden/fail2ban/filter.d/warden.conf", 0o644),
        ("/usr/share/doc/warden/fail2ban/jail.d/warden.conf", 0o644),
        ("/var/lib/warden", 0o700),
    ] {
        assert_eq!(mode_owner(path), (mode, 0, 0), "{path}: mode and root:root");
    }
    let (_, conffiles) = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "warden"]));
    assert!(conffiles.contains("/etc/warden/warden.toml"), "{conffiles}");
    assert!(
        group_exists("warden-admin"),
        "postinst creates the admin group"
    );
    let common_after_install = std::fs::read_to_string("/etc/pam.d/common-auth").unwrap();
    assert!(
        !common_after_install.contains("pam_warden"),
        "installing must not enable PAM"
    );

    // The module is where libpam looks: a bare "pam_warden.so" line loads it,
    // and only it can answer PAM_AUTHINFO_UNAVAIL with no daemon listening.
    let confdir = tempfile::tempdir().unwrap();
    std::fs::write(
        confdir.path().join("bare"),
        "auth requisite pam_warden.so preauth socket=/nonexistent/w.sock on_unavailable=deny timeout_ms=200\nauth required pam_permit.so\n",
    )
    .unwrap();
    let o = drive(confdir.path(), "bare", "nobody", None, &[], false);
    assert_eq!(
        o.auth, 9,
        "PAM_AUTHINFO_UNAVAIL from the installed module: {o:?}"
    );

    // 2. The unit verifies, and the installed daemon runs on the installed config.
    let (ok, out) = run(Command::new("systemd-analyze").args([
        "verify",
        "/usr/lib/systemd/system/wardend.service",
        "/usr/lib/systemd/system/wardend.socket",
        "/usr/lib/systemd/system/warden-metrics.service",
        "/usr/lib/systemd/system/warden-metrics.timer",
    ]));
    assert!(ok, "systemd-analyze verify: {out}");
    let bus = Bus::start_with_policy(Path::new(
        "/usr/share/dbus-1/system.d/org.warden.Warden1.conf",
    ));
    let log = std::fs::File::create(bus.dir.path().join("wardend.log")).unwrap();
    restore.daemon = Some(
        Command::new("/usr/sbin/wardend")
            .args(["--config", "/etc/warden/warden.toml", "--log-stderr"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while !Path::new("/run/warden/warden.sock").exists()
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        wait_for_daemon(&bus.address),
        "the installed wardend did not come up"
    );
    assert_eq!(mode_owner("/run/warden/warden.sock").0, 0o666);

    // 3. sudo through pam-auth-update, with the shipped defaults (5 failures).
    let user = TestUser::create(&unique("wsudo"), "Sud0-Corr3ct");
    std::fs::write(&restore.sudoers, format!("{} ALL=(ALL) ALL\n", user.name)).unwrap();
    std::fs::set_permissions(&restore.sudoers, std::fs::Permissions::from_mode(0o440)).unwrap();
    let (ok, out) = run(Command::new("pam-auth-update")
        .arg("--enable")
        .args(PROFILES));
    assert!(ok, "pam-auth-update --enable: {out}");
    let auth = std::fs::read_to_string("/etc/pam.d/common-auth").unwrap();
    let at = |needle: &str| {
        auth.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in common-auth:\n{auth}"))
    };
    assert!(at("pam_warden.so preauth") < at("pam_unix.so"));
    assert!(at("pam_unix.so") < at("pam_warden.so authfail"));
    assert!(at("pam_warden.so authfail") < at("pam_deny.so"));
    assert!(at("pam_permit.so") < at("pam_warden.so authsucc"));
    assert!(std::fs::read_to_string("/etc/pam.d/common-account")
        .unwrap()
        .contains("pam_warden.so"));

    let mut refused = None;
    for i in 0..10 {
        let (ok, out) = sudo(&user.name, &format!("wrong-password-{i}"));
        assert!(!ok, "a wrong password must not work: {out}");
        if out.contains("Too many failed attempts") {
            refused = Some((i, out));
            break;
        }
    }
    let (tries, out) = refused.expect("sudo never reported the lockout");
    assert!(out.contains("Try again in 15 minutes"), "{out}");
    assert!(
        tries <= 5,
        "locked after at most 5 failures, took {tries} sudo runs"
    );
    let (ok, _) = sudo(&user.name, "Sud0-Corr3ct");
    assert!(!ok, "the right password is refused while locked");
    let locks = wardenctl(&bus.address, None, &["locks"]);
    assert!(
        locks.stdout.contains(&format!("user={}", user.name)),
        "{locks:?}"
    );
    let unlock = wardenctl(&bus.address, None, &["unlock", &user.name]);
    assert_eq!(unlock.code, 0, "{unlock:?}");
    let (ok, out) = sudo(&user.name, "Sud0-Corr3ct");
    assert!(ok, "after the unlock sudo works: {out}");

    // 4. Roll back exactly, then remove and purge.
    let (ok, out) = run(Command::new("pam-auth-update")
        .arg("--disable")
        .args(PROFILES));
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string("/etc/pam.d/common-auth").unwrap(),
        before_auth
    );
    assert_eq!(
        std::fs::read_to_string("/etc/pam.d/common-account").unwrap(),
        before_account
    );
    if let Some(mut d) = restore.daemon.take() {
        let _ = d.kill();
        let _ = d.wait();
    }
    let (ok, out) = run(Command::new("dpkg").args(["-r", "warden"]));
    assert!(ok, "dpkg -r: {out}");
    assert!(!out.contains("not empty"), "dpkg -r warned: {out}");
    for gone in [
        MODULE,
        "/usr/sbin/wardend",
        "/usr/bin/wardenctl",
        "/usr/share/pam-configs/warden",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after dpkg -r");
    }
    assert!(
        Path::new("/etc/warden/warden.toml").exists(),
        "remove keeps the conffile"
    );
    let (ok, out) = run(Command::new("dpkg").args(["-P", "warden"]));
    assert!(ok, "dpkg -P: {out}");
    for gone in [
        "/etc/warden",
        "/var/lib/warden",
        "/usr/share/pam-configs/warden-authfail",
        "/usr/share/dbus-1/system.d/org.warden.Warden1.conf",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    if !had_group {
        assert!(
            !group_exists("warden-admin"),
            "purge removes the admin group"
        );
    }
    let (_, status) = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "warden"]));
    assert!(!status.contains("installed"), "{status}");

    // 5. A group someone is still in outlives the purge, and the purge says so.
    let (ok, out) = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(ok, "dpkg -i again: {out}");
    let member = TestUser::create(&unique("wgrp"), "unused-Pass-9");
    let (ok, out) = run(Command::new("usermod").args(["-aG", "warden-admin", &member.name]));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("dpkg").args(["-P", "warden"]));
    assert!(ok, "dpkg -P: {out}");
    assert!(group_exists("warden-admin"), "kept for its member");
    assert!(out.contains("keeping the group warden-admin"), "{out}");
    drop(member);
    if !had_group {
        let _ = run(Command::new("groupdel").arg("warden-admin"));
    }
}

#[test]
fn the_rpm_has_the_right_paths_modes_scripts_and_requirements() {
    let rpm = artefact("generate-rpm/warden.rpm", "rpm");
    let q = |args: &[&str]| {
        let (ok, out) = run(Command::new("rpm").args(args).arg(&rpm));
        assert!(ok, "rpm {args:?}: {out}");
        out
    };
    let list = q(&["-qlvp"]);
    for (mode, path) in [
        ("-rwxr-xr-x", "/usr/sbin/wardend"),
        ("-rwxr-xr-x", "/usr/bin/wardenctl"),
        ("-rwxr-xr-x", "/usr/lib64/security/pam_warden.so"),
        ("-rw-r--r--", "/usr/lib/systemd/system/wardend.service"),
        ("-rw-r--r--", "/usr/lib/systemd/system/wardend.socket"),
        ("-rw-r--r--", "/usr/lib/systemd/system/warden-metrics.timer"),
        (
            "-rw-r--r--",
            "/usr/share/dbus-1/system.d/org.warden.Warden1.conf",
        ),
        ("-rw-r--r--", "/etc/warden/warden.toml"),
        ("-rw-r--r--", "/usr/lib/tmpfiles.d/warden.conf"),
        ("-rw-r--r--", "/usr/share/man/man8/wardenctl.8"),
        ("-rw-r--r--", "/usr/share/man/man8/wardend.8"),
        ("-rw-r--r--", "/usr/share/man/man8/pam_warden.8"),
        ("-rw-r--r--", "/usr/share/man/man5/warden.toml.5"),
        ("-rw-r--r--", "/usr/share/doc/warden/authselect/system-auth"),
        (
            "-rw-r--r--",
            "/usr/share/doc/warden/authselect/password-auth",
        ),
    ] {
        let line = list
            .lines()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("{path} not in the rpm:\n{list}"));
        assert!(line.starts_with(mode), "{line}");
        assert!(
            line.contains("root") && !line.contains("/usr/lib/x86_64-linux-gnu"),
            "{line}"
        );
    }
    let config = q(&["-qcp"]);
    assert!(config.contains("/etc/warden/warden.toml"), "{config}");
    let scripts = q(&["-qp", "--scripts"]);
    for want in [
        "groupadd --system warden-admin",
        "install -d -m 0700 -o root -g root /var/lib/warden",
        "systemctl enable --now wardend.service",
        "rm -rf /var/lib/warden",
        "authselect create-profile warden",
        "it still has members",
    ] {
        assert!(scripts.contains(want), "scripts lack {want:?}:\n{scripts}");
    }
    let requires = q(&["-qp", "--requires"]);
    for want in ["pam", "systemd", "/usr/sbin/groupadd", "libc.so.6"] {
        assert!(requires.contains(want), "requires lack {want}:\n{requires}");
    }
}
