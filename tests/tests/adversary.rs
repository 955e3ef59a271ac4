//! The attacks of the attack review, each run against a real wardend, real
//! libpam and, where the attacker is a local user, a real unprivileged uid.
//! Every test asserts the outcome that matters: how many password checks got
//! through, that a locked account got none, that a history survived, that a
//! start-up was refused. Latencies under attack are measured by `make bench`,
//! never asserted here.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus};
use warden_e2e::client::fail;
use warden_e2e::client::{count, raw_as};
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::pam::{
    fresh_guess, PamDir, PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR, PAM_SUCCESS, WRONG_PASSWORD,
};
use warden_e2e::sshd::{sshd_stack, Sshd};
use warden_e2e::system::{sudo, sudoers_for, Restore};
use warden_e2e::totp::{code_at, enroll, fresh_step, now, Enrolled};
use warden_e2e::users::TestUser;
use warden_e2e::{as_uid, paths, root_or_skip, unique};

/// Runs raw-client as `uid` (or as root) and parses its tally into a map.
fn status(bus: &Bus) -> serde_json::Value {
    let s = wardenctl(&bus.address, None, &["status", "--json"]);
    assert_eq!(s.code, 0, "{s:?}");
    serde_json::from_str(&s.stdout).unwrap()
}

/// Lines of the daemon's log that contain `needle`.
fn lines_with(d: &Daemon, needle: &str) -> usize {
    d.log_text().lines().filter(|l| l.contains(needle)).count()
}

// ----- 1. a full key table ---------------------------------------------------

#[test]
fn a_table_full_of_locks_cannot_switch_lockout_off() {
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!(
            "max_tracked_keys = 1000\n{NO_FAMILIAR}{}",
            user_rule(3, "1h", "1h")
        ),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    // The attacker fills the table with locks: 1,200 names, three wrong
    // passwords each, reported by a root peer as sshd would.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let socket = d.socket.clone();
            std::thread::spawn(move || {
                for i in (t..1200).step_by(8) {
                    for _ in 0..3 {
                        fail(&socket, &format!("filler{i}"), None).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Then guesses at a new victim through libpam.
    let pam = PamDir::new(&d.socket, "0", "");
    let codes: Vec<i32> = (0..10)
        .map(|_| pam.attempt("victim", "wrong", None).auth)
        .collect();
    assert_eq!(
        pam.checks(),
        3,
        "the limit holds with the table full: {codes:?}"
    );
    assert_eq!(pam.attempt("victim", "right", None).auth, PAM_AUTH_ERR);
    let s = status(&bus);
    assert!(
        s["keys"].as_u64().unwrap() <= 1000,
        "memory stays bounded: {s}"
    );
    assert!(s["table_full"].as_bool().unwrap(), "{s}");
    assert!(s["evicted_locks"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(
        lines_with(&d, "table-full "),
        1,
        "one alert a minute:\n{}",
        d.log_text()
    );
}

#[test]
fn one_local_user_cannot_fill_the_table() {
    if !root_or_skip("one_local_user_cannot_fill_the_table") {
        return;
    }
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        "max_tracked_keys = 1000\nmax_keys_per_user = 8\n[[rule]]\nname = \"tty\"\ntrack = [\"user\", \"tty\"]\nlimit = 3\nwindow = \"1h\"\nlockout = \"1h\"\n",
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let me = TestUser::create(&unique("wfill"), "pw-unused-1");
    // From the user's own shell, a new tty in every report.
    let (_, tally) = raw_as(
        Some(me.uid),
        &d.socket,
        &["fail", &me.name, "--vary-tty", "--repeat", "2000"],
    );
    assert!(
        count(&tally, "error:Busy") > 1500,
        "most were refused: {tally:?}"
    );
    let keys = status(&bus)["keys"].as_u64().unwrap();
    assert!(
        keys <= 2,
        "{keys} keys: an unprivileged peer's tty is not believed"
    );
    // And the flood locked the flooder's own key, no one else's.
    let locks = d.request(&["locks"]);
    assert!(locks.contains(&format!("user={}", me.name)), "{locks}");
    assert_eq!(status(&bus)["locks"].as_u64(), Some(1));
}

#[test]
fn many_locked_addresses_in_one_prefix_become_one_prefix_lock() {
    let d = Daemon::start(
        "[aggregate]\nlocks = 4\n[[rule]]\nname = \"rhost\"\ntrack = [\"rhost\"]\nlimit = 2\nwindow = \"1h\"\nlockout = \"1h\"\n",
    );
    let pam = PamDir::new(&d.socket, "0", "");
    // The owner has logged in from one /64 of the /48.
    assert_eq!(
        pam.attempt("owner", "right", Some("2001:db8:7:99::1")).auth,
        PAM_SUCCESS
    );
    for i in 0..4 {
        let rhost = format!("2001:db8:7:{i}::1");
        for _ in 0..2 {
            assert_eq!(pam.attempt("x", "wrong", Some(&rhost)).auth, WRONG_PASSWORD);
        }
    }
    let before = pam.checks();
    for i in 10..20 {
        let o = pam.attempt("x", "wrong", Some(&format!("2001:db8:7:{i}::1")));
        assert_eq!(o.auth, PAM_AUTH_ERR, "the whole /48 is locked");
    }
    assert_eq!(pam.checks(), before, "no check from a fresh /64 of it");
    assert!(d
        .log_text()
        .contains("locked rule=prefix on=rhost rhost=2001:db8:7::/48"));
    assert_eq!(
        pam.attempt("owner", "right", Some("2001:db8:7:99::1")).auth,
        PAM_SUCCESS,
        "a familiar /64 inside the prefix is spared"
    );
    assert_eq!(
        pam.attempt("x", "wrong", Some("2001:db8:8::1")).auth,
        WRONG_PASSWORD
    );
}

// ----- 2. stalling the engine -------------------------------------------------

#[test]
fn unprivileged_bus_floods_neither_stall_nor_unlock_anyone() {
    if !root_or_skip("unprivileged_bus_floods_neither_stall_nor_unlock_anyone") {
        return;
    }
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!("{NO_FAMILIAR}{}", user_rule(3, "1h", "1h")),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let me = TestUser::create(&unique("wstall"), "pw-unused-2");
    // A table of 20,000 keys, as a day's background noise leaves.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let socket = d.socket.clone();
            std::thread::spawn(move || {
                for i in (t..20_000).step_by(8) {
                    fail(&socket, &format!("noise{i}"), None).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..3 {
        pam.attempt("victim", "wrong", None);
    }
    // 32 status calls in flight at a time from one unprivileged user.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..32)
        .map(|_| {
            let (addr, stop, uid, name) =
                (bus.address.clone(), stop.clone(), me.uid, me.name.clone());
            std::thread::spawn(move || {
                let (mut ok, mut busy) = (0, 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let c = wardenctl(&addr, Some(uid), &["user-status", &name]);
                    if c.code == 0 {
                        ok += 1;
                    } else if c.stderr.contains("limiting") {
                        busy += 1;
                    }
                    let _ = wardenctl(&addr, Some(uid), &["status"]);
                }
                (ok, busy)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Meanwhile the locked victim tries the right password, with the
    // module's default 1 s timeout and on_unavailable=ignore.
    let codes: Vec<i32> = (0..10)
        .map(|_| pam.attempt("victim", "right", None).auth)
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, busy) = flood
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(codes.iter().all(|c| *c == PAM_AUTH_ERR), "{codes:?}");
    assert_eq!(
        pam.checks(),
        3,
        "a locked account got no check during the flood"
    );
    assert!(
        busy > 0,
        "the flood was rate-limited ({ok} answered, {busy} refused)"
    );
}

// ----- 3. resetting one's own counter -----------------------------------------

#[test]
fn a_users_own_shell_cannot_reset_their_sudo_failures() {
    if !root_or_skip("a_users_own_shell_cannot_reset_their_sudo_failures") {
        return;
    }
    let d = Daemon::start(&format!("{NO_FAMILIAR}{}", user_rule(5, "1h", "1h")));
    let user = TestUser::create(&unique("wsudo"), "Right-Pass-1");
    let _sudoers = sudoers_for(&user.name);
    let m = paths::module();
    let (m, s) = (m.display(), d.socket.display());
    let _pam = Restore::write(
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
    );
    // The attack: four wrong passwords to sudo, then a success claimed from
    // the user's own shell to wipe them, six times over.
    for _ in 0..6 {
        for _ in 0..4 {
            sudo(&user.name, &format!("wrong-password-{}", fresh_guess()));
        }
        let (out, _) = raw_as(
            Some(user.uid),
            &d.socket,
            &["succeed", &user.name, "--service", "sudo"],
        );
        assert!(out.contains("Recorded"), "{out}");
    }
    let checks = lines_with(&d, &format!("failure service=sudo user={}", user.name));
    assert_eq!(
        checks,
        5,
        "five password checks and no more:\n{}",
        d.log_text()
    );
    let (ok, out) = sudo(&user.name, "Right-Pass-1");
    assert!(!ok, "still locked: {out}");
    // A success's line follows its commit, which follows the answer.
    d.wait_for_log("success service=sudo", 5);
    assert!(d.log_text().contains(&format!(
        "success service=sudo user={} by=uid={}",
        user.name, user.uid
    )));
}

// ----- 4. guessing one's own code ---------------------------------------------

/// A daemon on a private bus with a user rule of `limit` and `totp` in its
/// `[totp]`, and a fresh user enrolled and confirmed.
fn enrolled_user(limit: u32, totp: &str) -> (Bus, Daemon, TestUser, Enrolled) {
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!(
            "{NO_FAMILIAR}{}[totp]\n{totp}",
            user_rule(limit, "1h", "1h")
        ),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    let user = TestUser::create(&unique("wcode"), "pw-unused-3");
    let e = enroll(&bus.address, &user.name, true);
    (bus, d, user, e)
}

#[test]
fn a_local_user_cannot_guess_their_own_code() {
    if !root_or_skip("a_local_user_cannot_guess_their_own_code") {
        return;
    }
    let (_bus, d, user, e) = enrolled_user(5, "services = [\"warden-test\"]\nremember = \"12h\"\n");
    // From the user's shell, naming a service the code policy does not list.
    let (out, tally) = raw_as(
        Some(user.uid),
        &d.socket,
        &[
            "guess-codes",
            &user.name,
            "--service",
            "made-up",
            "--repeat",
            "25",
        ],
    );
    let guesses = count(&tally, "code-");
    assert!(
        guesses >= 1,
        "a code was asked for whatever the service: {out}"
    );
    assert!(guesses <= 5, "at most the limit of wrong codes: {out}");
    assert!(count(&tally, "begin-refused:locked") >= 1, "{out}");
    // Unlocked by an admin, the user gives a right code from the shell: it is
    // accepted, but it records no `remember` for the local source.
    assert!(d.request(&["unlock-user", &user.name]).contains("Unlocked"));
    // The flood spent the uid's request budget; it refills at one a second.
    std::thread::sleep(Duration::from_secs(4));
    fresh_step(5);
    let code = code_at(&e.secret, now());
    let (out, tally) = raw_as(
        Some(user.uid),
        &d.socket,
        &[
            "guess-codes",
            &user.name,
            "--service",
            "made-up",
            "--code",
            &code,
        ],
    );
    assert_eq!(count(&tally, "code-recorded"), 1, "{out}");
    let pam = PamDir::new(&d.socket, "0", "");
    let o = warden_e2e::pam::drive(
        pam.dir.path(),
        &pam.service,
        &user.name,
        None,
        &["right", "000000"],
        false,
    );
    assert!(
        o.prompts.iter().any(|p| p.contains("Verification code")),
        "root's local login still asks for the code: {o:?}"
    );
}

// ----- 5. recovery codes ---------------------------------------------------------

#[test]
fn new_recovery_codes_need_a_current_code_or_an_admin() {
    if !root_or_skip("new_recovery_codes_need_a_current_code_or_an_admin") {
        return;
    }
    let (bus, d, user, e) = enrolled_user(3, "self_enroll = true\n");
    let c = wardenctl(&bus.address, Some(user.uid), &["totp", "recovery-codes"]);
    assert_eq!(c.code, 3, "no code, no new codes: {c:?}");
    assert!(c.stderr.contains("current code"), "{c:?}");
    let c = wardenctl(
        &bus.address,
        Some(user.uid),
        &["totp", "recovery-codes", "--code", "000000"],
    );
    assert_eq!(c.code, 3, "{c:?}");
    assert!(
        d.log_text()
            .contains(&format!("totp service=wardenctl user={}", user.name)),
        "counted as a wrong code"
    );
    // A recovery code is not a current code.
    let c = wardenctl(
        &bus.address,
        Some(user.uid),
        &["totp", "recovery-codes", "--code", &e.recovery[0]],
    );
    assert_eq!(c.code, 3, "{c:?}");
    // The third wrong code locked the user: even a right one is refused now.
    fresh_step(5);
    let code = code_at(&e.secret, now());
    let c = wardenctl(
        &bus.address,
        Some(user.uid),
        &["totp", "recovery-codes", "--code", &code],
    );
    assert_eq!(c.code, 3, "locked: {c:?}");
    assert!(c.stderr.contains("locked"), "{c:?}");
    assert!(d.request(&["unlock-user", &user.name]).contains("Unlocked"));
    let c = wardenctl(
        &bus.address,
        Some(user.uid),
        &["totp", "recovery-codes", "--code", &code],
    );
    assert_eq!(c.code, 0, "a current code from the app: {c:?}");
    let c = wardenctl(&bus.address, None, &["totp", "recovery-codes", &user.name]);
    assert_eq!(c.code, 0, "an admin needs none: {c:?}");
}

// ----- 6. the audit trail -----------------------------------------------------------

#[test]
fn a_flood_cannot_erase_another_accounts_history() {
    if !root_or_skip("a_flood_cannot_erase_another_accounts_history") {
        return;
    }
    let bus = Bus::start();
    let d = Daemon::start_with_env(
        &format!(
            "{NO_FAMILIAR}{}[audit]\nmax_events = 600\nmax_events_per_user = 100\nmin_events_per_user = 20\n",
            user_rule(1000, "1h", "1h")
        ),
        &bus.env(),
    );
    assert!(wait_for_daemon(&bus.address));
    for _ in 0..5 {
        fail(&d.socket, "victim", Some("203.0.113.5")).unwrap();
    }
    let me = TestUser::create(&unique("wflood"), "pw-unused-5");
    // A local flood of one's own failures...
    let start = Instant::now();
    let (_, tally) = raw_as(
        Some(me.uid),
        &d.socket,
        &["fail", &me.name, "--repeat", "3000"],
    );
    let secs = start.elapsed().as_secs() as usize;
    let written = count(&tally, "recorded");
    assert!(
        written <= 30 + secs + 2,
        "{written} writes in {secs}s: the budget is 30 at once, then 1/s: {tally:?}"
    );
    // ...and a remote one at a few names, each failure a password check.
    for i in 0..1600 {
        fail(&d.socket, &format!("n{}", i % 8), Some("198.51.100.1")).unwrap();
    }
    let f = wardenctl(
        &bus.address,
        None,
        &["failures", "--user", "victim", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&f.stdout).unwrap();
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(5),
        "the victim's history is whole: {f:?}"
    );
    // The log: the flood's lines were capped and summarised.
    let summary = format!("uid={}", me.uid);
    let summarised = (0..150).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        d.log_text()
            .lines()
            .any(|l| l.contains("log-suppressed") && l.contains(&summary))
    });
    assert!(summarised, "{}", d.log_text());
    let peer_lines = lines_with(&d, &format!("by=uid={}", me.uid));
    assert!(peer_lines <= 20, "{peer_lines} lines from the flood");
}

// ----- 7. attempts in flight ------------------------------------------------------------

#[test]
fn attempts_in_flight_are_bounded_per_uid_and_in_all() {
    if !root_or_skip("attempts_in_flight_are_bounded_per_uid_and_in_all") {
        return;
    }
    let me = TestUser::create(&unique("wflight"), "pw-unused-6");
    let d = Daemon::start(&format!(
        "max_attempts_in_flight = 100\n{}[allow]\nusers = [\"{}\", \"x\"]\n",
        user_rule(5, "1h", "1h").replace("lockout", "services = [\"sshd\"]\nlockout"),
        me.name
    ));
    // Allow-listed, so no rule's limit holds a place for these attempts: only
    // the bounds on attempts in flight do. An unprivileged peer begins and
    // never ends.
    let (out, tally) = raw_as(
        Some(me.uid),
        &d.socket,
        &[
            "begin",
            &me.name,
            "--service",
            "nothing-covers-this",
            "--repeat",
            "25",
        ],
    );
    assert_eq!(count(&tally, "allowed"), 16, "per uid: {out}");
    assert_eq!(count(&tally, "refused:crowded"), 9, "{out}");
    let (out, tally) = raw_as(
        None,
        &d.socket,
        &[
            "begin",
            "x",
            "--service",
            "nothing-covers-this",
            "--repeat",
            "300",
        ],
    );
    assert_eq!(count(&tally, "allowed"), 100 - 16, "in all: {out}");
    assert_eq!(lines_with(&d, "attempts-crowded "), 1, "{}", d.log_text());
}

// ----- 8. familiar sources ------------------------------------------------------------------

#[test]
fn strangers_cannot_lock_the_owner_out_of_familiar_places() {
    let d = Daemon::start(&user_rule(5, "1h", "1h"));
    let pam = PamDir::new(&d.socket, "0", "");
    let (home, office) = (Some("192.0.2.10"), Some("198.51.100.20"));
    // The owner's known places: home, the office, and his own sudo.
    assert_eq!(pam.attempt("bob", "right", home).auth, PAM_SUCCESS);
    assert_eq!(pam.attempt("bob", "right", office).auth, PAM_SUCCESS);
    assert_eq!(pam.local_attempt("bob", "right", "bob").auth, PAM_SUCCESS);
    // Five wrong passwords from afar, and five with su from another account.
    for i in 0..5 {
        pam.attempt("bob", "wrong", Some(&format!("203.0.113.{i}")));
    }
    for _ in 0..5 {
        pam.local_attempt("bob", "wrong", "mallory");
    }
    assert_eq!(
        pam.attempt("bob", "right", Some("203.0.113.99")).auth,
        PAM_AUTH_ERR
    );
    assert_eq!(
        pam.local_attempt("bob", "right", "mallory").auth,
        PAM_AUTH_ERR
    );
    assert_eq!(
        pam.attempt("bob", "right", home).auth,
        PAM_SUCCESS,
        "home still works"
    );
    assert_eq!(
        pam.local_attempt("bob", "right", "bob").auth,
        PAM_SUCCESS,
        "his sudo still works"
    );
    // Someone behind the office NAT can lock him out of the office only.
    for _ in 0..5 {
        pam.attempt("bob", "wrong", office);
    }
    assert_eq!(pam.attempt("bob", "right", office).auth, PAM_AUTH_ERR);
    assert_eq!(pam.attempt("bob", "right", home).auth, PAM_SUCCESS);
}

// ----- 9. start-up with hostile paths ---------------------------------------------------

/// Runs wardend on `config` until it exits or listens: its exit status (None
/// while it is still running) and its output.
fn start_once(config: &str, dir: &Path) -> (Option<i32>, String) {
    let path = dir.join("warden.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.join("once.log");
    let mut child = Command::new(paths::wardend())
        .arg("--config")
        .arg(&path)
        .arg("--log-stderr")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let code = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(3) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&log).unwrap_or_default())
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn start_up_refuses_unsafe_paths_and_changes_nothing() {
    if !root_or_skip("start_up_refuses_unsafe_paths_and_changes_nothing") {
        return;
    }
    let user = TestUser::create(&unique("wpath"), "pw-unused-7");
    let top = tempfile::Builder::new()
        .prefix("warden-paths")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = top.path().display();
    let theirs = top.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(user.uid)), None).unwrap();
    let state = format!("state_dir = \"{t}/state\"\n");

    // A socket in a directory someone else owns.
    let (code, out) = start_once(
        &format!("socket = \"{t}/theirs/w.sock\"\n{state}"),
        top.path(),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("owned by uid {}", user.uid)), "{out}");
    assert_eq!(mode_of(&theirs), 0o755, "never chmodded");
    // A socket right in /tmp.
    let tmp_mode = mode_of(Path::new("/tmp"));
    let (code, out) = start_once(
        &format!("socket = \"/tmp/{}.sock\"\n{state}", unique("w")),
        top.path(),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("writable by group or others"), "{out}");
    assert_eq!(mode_of(Path::new("/tmp")), tmp_mode);
    // A state directory someone else owns, and a store file someone else owns.
    let (code, out) = start_once(
        &format!("socket = \"{t}/run/w.sock\"\nstate_dir = \"{t}/theirs\"\n"),
        top.path(),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("state_dir"), "{out}");
    let state_dir = top.path().join("state2");
    std::fs::create_dir(&state_dir).unwrap();
    std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let store = state_dir.join("warden.redb");
    std::fs::write(&store, b"").unwrap();
    nix::unistd::chown(&store, Some(nix::unistd::Uid::from_raw(user.uid)), None).unwrap();
    let (code, out) = start_once(
        &format!(
            "socket = \"{t}/run/w.sock\"\nstate_dir = \"{}\"\n",
            state_dir.display()
        ),
        top.path(),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("warden.redb") && out.contains("not root"),
        "{out}"
    );
    // A link planted where the socket goes, to a root-only file: the link is
    // replaced, and the file keeps its mode.
    let secret = top.path().join("secret");
    std::fs::write(&secret, b"root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let _ = std::fs::create_dir(top.path().join("run"));
    std::os::unix::fs::symlink(&secret, top.path().join("run/w.sock")).unwrap();
    let (code, out) = start_once(&format!("socket = \"{t}/run/w.sock\"\n{state}"), top.path());
    assert_eq!(code, None, "it started: {out}");
    assert_eq!(mode_of(&secret), 0o600);
    let kind = std::fs::symlink_metadata(top.path().join("run/w.sock"))
        .unwrap()
        .file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&kind));
    assert_eq!(mode_of(&top.path().join("run/warden-root.sock")), 0o600);
}

#[test]
fn the_module_sends_nothing_to_a_socket_root_does_not_serve() {
    if !root_or_skip("the_module_sends_nothing_to_a_socket_root_does_not_serve") {
        return;
    }
    let user = TestUser::create(&unique("wfake"), "pw-unused-8");
    let dir = tempfile::Builder::new()
        .prefix("warden-fake")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (socket, capture) = (dir.path().join("w.sock"), dir.path().join("captured"));
    let mut fake = as_uid(user.uid, &paths::fake_daemon())
        .arg(&socket)
        .arg(&capture)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pam = PamDir::new(&socket, "0", "timeout_ms=500");
    let o = pam.attempt("alice", "right", None);
    let deny = PamDir::new(&socket, "0", "timeout_ms=500 on_unavailable=deny");
    let refused = deny.attempt("alice", "right", None);
    let _ = fake.kill();
    let _ = fake.wait();
    assert_eq!(
        o.auth, PAM_SUCCESS,
        "on_unavailable=ignore: the stack decides: {o:?}"
    );
    assert!(
        !o.prompts.iter().any(|p| p.contains("Verification")),
        "no code prompt from an impostor: {o:?}"
    );
    assert_eq!(refused.auth, PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        std::fs::read(&capture).unwrap_or_default(),
        b"",
        "not one byte sent"
    );
}

// ----- 10. forged log lines --------------------------------------------------------------

#[test]
fn hostile_names_cannot_put_an_address_into_a_fail2ban_match() {
    if !root_or_skip("hostile_names_cannot_put_an_address_into_a_fail2ban_match") {
        return;
    }
    let d = Daemon::start(&format!(
        "{}[[rule]]\nname = \"rhost\"\ntrack = [\"rhost\"]\nlimit = 3\nwindow = \"1h\"\nlockout = \"1h\"\n",
        user_rule(2, "1h", "1h")
    ));
    let me = TestUser::create(&unique("wforge"), "pw-unused-9");
    // A local user's own failures under a service name built to look like a field.
    raw_as(
        Some(me.uid),
        &d.socket,
        &[
            "fail",
            &me.name,
            "--service",
            "x rhost=198.51.100.9 on=rhost",
            "--repeat",
            "3",
        ],
    );
    let pam = PamDir::new(&d.socket, "0", "");
    // A hostile user name through a root peer, from an address that stays
    // below its own limit: the user lock's line names that address.
    for _ in 0..2 {
        pam.attempt("x rhost=198.51.100.8", "wrong", Some("192.0.2.10"));
    }
    // And one real address lock.
    for i in 0..3 {
        pam.attempt(&format!("u{i}"), "wrong", Some("203.0.113.7"));
    }
    assert!(d.log_text().contains("locked rule=user on=user service=warden-test user=\"x rhost\\x3d198.51.100.8\" rhost=192.0.2.10"));
    let matched = d.fail2ban_matches();
    assert_eq!(matched, ["203.0.113.7"], "{}", d.log_text());
}

// ----- 11. local floods and root's logins -------------------------------------------------

#[test]
fn root_logins_are_decided_during_a_local_connect_flood() {
    if !root_or_skip("root_logins_are_decided_during_a_local_connect_flood") {
        return;
    }
    let d = Daemon::start(&format!("{NO_FAMILIAR}{}", user_rule(3, "1h", "1h")));
    let me = TestUser::create(&unique("wconn"), "pw-unused-10");
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..3 {
        pam.attempt("victim", "wrong", None);
    }
    let flood = as_uid(me.uid, &paths::raw_client())
        .arg(&d.socket)
        .args(["connect-flood", "x", "--repeat", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let locked: Vec<i32> = (0..10)
        .map(|_| pam.attempt("victim", "right", None).auth)
        .collect();
    let checks = pam.checks();
    let clean: Vec<i32> = (0..5)
        .map(|_| pam.attempt("clean", "right", None).auth)
        .collect();
    let out = flood.wait_with_output().unwrap();
    let flooded = String::from_utf8_lossy(&out.stdout);
    assert!(
        locked.iter().all(|c| *c == PAM_AUTH_ERR),
        "{locked:?} ({flooded})"
    );
    assert_eq!(checks, 3, "no check for the locked account ({flooded})");
    assert!(clean.iter().all(|c| *c == PAM_SUCCESS), "{clean:?}");
    // One connection dripping a frame every 1.5 s is closed all the same.
    let (out, _) = raw_as(Some(me.uid), &d.socket, &["drip", &me.name]);
    let secs: f64 = out
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.trim_end_matches('s').parse().ok())
        .unwrap_or(999.0);
    assert!(secs < 13.0, "{out}");
}

// ----- 12. one address, one key -----------------------------------------------------------

#[test]
fn every_spelling_of_a_locked_address_is_refused() {
    let d = Daemon::start(
        "[[rule]]\nname = \"rhost\"\ntrack = [\"rhost\"]\nlimit = 2\nwindow = \"1h\"\nlockout = \"1h\"\n",
    );
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..2 {
        pam.attempt("x", "wrong", Some("198.51.100.7"));
        pam.attempt("x", "wrong", Some("fe80::1%eth0"));
        pam.attempt("x", "wrong", Some("Host.Example."));
    }
    let before = pam.checks();
    for spelling in [
        "::198.51.100.7",
        "64:ff9b::198.51.100.7",
        "198.051.100.7",
        "::ffff:198.51.100.7",
        "fe80::1%eth1",
        "host.example",
    ] {
        assert_eq!(
            pam.attempt("x", "right", Some(spelling)).auth,
            PAM_AUTH_ERR,
            "{spelling}"
        );
    }
    assert_eq!(pam.checks(), before);
}

#[test]
fn a_name_rhost_cannot_slip_past_the_deny_list() {
    if !root_or_skip("a_name_rhost_cannot_slip_past_the_deny_list") {
        return;
    }
    let d = Daemon::start("[deny]\nrhosts = [\"127.0.0.1\"]\n");
    let user = TestUser::create(&unique("wdns"), "Corr3ct-Horse-2");
    // sshd with UseDNS puts "localhost" in PAM_RHOST; the module takes the
    // address from SSH_CONNECTION.
    let sshd = Sshd::start(
        &unique("sshd-warden-d"),
        &sshd_stack(&d.socket),
        "UseDNS yes",
    );
    let (ok, out) = sshd.login(&user.name, "Corr3ct-Horse-2");
    assert!(!ok, "{out}");
    // A refusal's line follows its commit, which follows the answer.
    d.wait_for_log("reason=denied", 5);
    assert!(
        d.log_text()
            .contains(&format!("user={} rhost=127.0.0.1", user.name))
            && d.log_text().contains("reason=denied"),
        "{}",
        d.log_text()
    );
    // A name with no address to be had is refused while a deny list exists.
    let pam = PamDir::new(&d.socket, "0", "");
    let o = pam.attempt("alice", "right", Some("attacker.example"));
    assert_eq!(o.auth, PAM_AUTH_ERR);
    d.wait_for_log("reason=unverifiable", 5);
    assert!(d.log_text().contains("reason=unverifiable"));
    assert_eq!(pam.checks(), 0);
}

// ----- 13. one account, several spellings ---------------------------------------------------

#[test]
fn case_and_realm_spellings_of_a_name_share_one_budget() {
    let d = Daemon::start(&format!(
        "{NO_FAMILIAR}{}[users]\nfold_case = true\nstrip_realms = [\"EXAMPLE.COM\"]\n",
        user_rule(3, "1h", "1h")
    ));
    let pam = PamDir::new(&d.socket, "0", "");
    for name in ["Admin", "ADMIN", "admin@Example.com", "aDmIn"] {
        pam.attempt(name, "wrong", None);
    }
    assert_eq!(pam.checks(), 3);
    assert_eq!(pam.attempt("admin", "right", None).auth, PAM_AUTH_ERR);
}
