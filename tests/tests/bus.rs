//! wardenctl against a running wardend on a private dbus-daemon that uses the
//! shipped policy file, with real state.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden_e2e::bus::{wait_for_daemon, wardenctl, Bus, Ctl};
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::pam::{PamDir, PAM_AUTH_ERR, WRONG_PASSWORD};
use warden_e2e::users::TestUser;
use warden_e2e::{paths, root_or_skip, unique};

fn rules() -> String {
    format!("{NO_FAMILIAR}{}", user_rule(2, "1h", "15m"))
}

fn setup(rules: &str) -> (Bus, Daemon) {
    let bus = Bus::start();
    let d = Daemon::start_with_env(rules, &bus.env());
    assert!(
        wait_for_daemon(&bus.address),
        "wardend never came on the bus:\n{}",
        d.log_text()
    );
    (bus, d)
}

fn ok(c: Ctl) -> Ctl {
    assert_eq!(c.code, 0, "{c:?}");
    c
}

fn json(c: Ctl) -> serde_json::Value {
    let c = ok(c);
    serde_json::from_str(&c.stdout).unwrap_or_else(|e| panic!("{e}: {}", c.stdout))
}

fn lock_out(d: &Daemon, user: &str) {
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..2 {
        pam.attempt(user, "wrong", Some("198.51.100.4"));
    }
}

#[test]
fn every_command_and_its_json() {
    let (bus, d) = setup(&rules());
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);

    let s = ok(ctl(&["status"]));
    assert!(
        s.stdout.contains("version") && s.stdout.contains(&d.socket.display().to_string()),
        "{s:?}"
    );
    let s = json(ctl(&["status", "--json"]));
    assert_eq!(s["locks"], 0);
    assert_eq!(s["config_path"], d.config.display().to_string());

    assert_eq!(ok(ctl(&["locks"])).stdout.trim(), "no active locks");
    lock_out(&d, "alice");
    let t = ok(ctl(&["locks"]));
    assert!(t.stdout.starts_with("RULE"), "{}", t.stdout);
    assert!(
        t.stdout.contains("user=alice") && t.stdout.contains("in 15m"),
        "{}",
        t.stdout
    );
    let locks = json(ctl(&["locks", "--json"]));
    assert_eq!(locks[0]["rule"], "user");
    // Fields are an object (issue 14): {"user": "alice"}.
    assert_eq!(locks[0]["fields"], serde_json::json!({"user": "alice"}));
    assert_eq!(locks[0]["failures"], 2);
    assert_eq!(locks[0]["permanent"], false);
    assert_eq!(
        locks[0]["until"].as_i64().unwrap() - locks[0]["since"].as_i64().unwrap(),
        900
    );

    let f = json(ctl(&["failures", "--user", "alice", "--json"]));
    assert_eq!(f.as_array().unwrap().len(), 2);
    assert_eq!(f[0]["kind"], "failure");
    assert_eq!(f[0]["rhost"], "198.51.100.4");
    assert_eq!(
        json(ctl(&[
            "failures", "--since", "1h", "--limit", "1", "--json"
        ]))
        .as_array()
        .unwrap()
        .len(),
        1
    );
    assert!(ok(ctl(&["failures", "--rhost", "198.51.100.4"]))
        .stdout
        .contains("alice"));

    let u = json(ctl(&["user-status", "alice", "--json"]));
    assert_eq!(u["locked"], true);
    assert!(u["seconds_left"].as_u64().unwrap() > 890);
    assert!(ok(ctl(&["user-status", "alice"]))
        .stdout
        .contains("alice is locked for 15m more"));

    let l = ok(ctl(&[
        "lock",
        "--rhost",
        "203.0.113.9",
        "--for",
        "1h",
        "--reason",
        "scanner",
    ]));
    assert_eq!(l.stdout.trim(), "locked rhost=203.0.113.9 for 1h");
    ok(ctl(&["lock", "bob", "--permanent", "--reason", "left"]));
    let b = json(ctl(&["user-status", "bob", "--json"]));
    assert_eq!(b["permanent"], true);
    let t = ok(ctl(&["locks"]));
    assert!(
        t.stdout.contains("uid=0 (scanner)") && t.stdout.contains("permanent"),
        "{}",
        t.stdout
    );
    assert!(
        d.log_text()
            .contains("locked rule=admin on=rhost rhost=203.0.113.9"),
        "{}",
        d.log_text()
    );

    assert_eq!(
        ok(ctl(&["unlock", "alice"])).stdout.trim(),
        "unlocked 1 key\n  lifted: user user=alice"
    );
    assert!(d
        .log_text()
        .contains("unlocked rule=user on=user user=alice by=uid=0"));
    assert_eq!(
        ok(ctl(&["unlock", "--rhost", "203.0.113.9"])).stdout.trim(),
        "unlocked 1 key\n  lifted: admin rhost=203.0.113.9"
    );
    // --all without a terminal needs --yes.
    let no = ctl(&["unlock", "--all"]);
    assert_eq!(no.code, 2, "{no:?}");
    assert!(no.stderr.contains("--yes"), "{no:?}");
    assert_eq!(
        json(ctl(&["unlock", "--all", "--yes", "--json"]))["cleared"],
        1
    );
    // Unlocking what is not locked says so; --user works beside USER.
    assert_eq!(
        ok(ctl(&["unlock", "--user", "nobody-here"])).stdout.trim(),
        "user nobody-here was not locked, and had no failures counted"
    );
    assert_eq!(ok(ctl(&["locks"])).stdout.trim(), "no active locks");

    // Usage errors exit 2; a key named as `locks` prints it unlocks just that key.
    assert_eq!(ctl(&["unlock"]).code, 2);
    assert_eq!(ctl(&["lock", "carol"]).code, 2);
    lock_out(&d, "carol");
    assert_eq!(
        ok(ctl(&["unlock", "--key", "user user=carol"]))
            .stdout
            .trim(),
        "unlocked 1 key\n  lifted: user user=carol"
    );
}

#[test]
fn config_check_gives_the_daemons_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, rules()).unwrap();
    let c = wardenctl(
        "unix:path=/nonexistent",
        None,
        &["config", "check", good.to_str().unwrap()],
    );
    assert_eq!(c.code, 0, "{c:?}");
    assert!(
        c.stdout.contains("RULE") && c.stdout.contains("user"),
        "{c:?}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rule]]\nname = \"x\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"5q\"\nlockout = \"1m\"\n").unwrap();
    let c = wardenctl(
        "unix:path=/nonexistent",
        None,
        &["config", "check", bad.to_str().unwrap()],
    );
    assert_eq!(c.code, 1);
    assert!(
        c.stderr.contains(&format!(
            "{}:5: rule[1].window: invalid duration \"5q\"",
            bad.display()
        )),
        "{c:?}"
    );
    // Valid but guarding less than it says: warned, with file, line and key.
    let check = |text: &str| {
        std::fs::write(&bad, text).unwrap();
        wardenctl(
            "unix:path=/nonexistent",
            None,
            &["config", "check", bad.to_str().unwrap()],
        )
    };
    let c = check(&format!(
        "{}services = [\"ssh\"]\n[totp]\nrequired_for_users = [\"no-such-user-x\"]\n",
        user_rule(3, "1h", "1h")
    ));
    assert_eq!(c.code, 0, "{c:?}");
    let at = bad.display();
    assert!(
        c.stderr.contains(&format!(
            "{at}:7: rule[1].services: warning: no PAM service \"ssh\" here (Debian's is \"sshd\")"
        )),
        "{c:?}"
    );
    assert!(
        c.stderr.contains(&format!(
            "{at}:9: totp.required_for_users: warning: \"no-such-user-x\" is no account here"
        )),
        "{c:?}"
    );
    assert!(
        c.stdout
            .contains("must give a code                users no-such-user-x"),
        "{c:?}"
    );
    // Never right: errors.
    let c = check("[deny]\nrhosts = [\"10.1.2.3/8\"]\n");
    assert_eq!(c.code, 1);
    assert!(
        c.stderr.contains(&format!(
            "{at}:2: deny.rhosts: \"10.1.2.3/8\" has host bits set"
        )),
        "{c:?}"
    );
    let c = check(&format!("{}services = []\n", user_rule(3, "1h", "1h")));
    assert_eq!(c.code, 1);
    assert!(
        c.stderr
            .contains("rule[1].services: an empty list matches no PAM service"),
        "{c:?}"
    );
    let c = check("state_dir = \"var/lib/warden\"\n");
    assert_eq!(c.code, 1);
    assert!(
        c.stderr.contains(&format!(
            "{at}:1: state_dir: state_dir must be an absolute path"
        )),
        "{c:?}"
    );
}

#[test]
fn unreachable_daemon_or_bus_exits_4_and_says_what_to_do() {
    let c = wardenctl("unix:path=/nonexistent/bus", None, &["locks"]);
    assert_eq!(c.code, 4, "{c:?}");
    assert!(c.stderr.contains("cannot reach the system bus"), "{c:?}");
    let bus = Bus::start();
    let c = wardenctl(&bus.address, None, &["locks"]);
    assert_eq!(c.code, 4, "{c:?}");
    assert!(
        c.stderr
            .contains("wardend is not on the system bus: is it running? systemctl status wardend"),
        "{c:?}"
    );
}

#[test]
fn unprivileged_users_are_refused_but_read_their_own_status() {
    if !root_or_skip("unprivileged_users_are_refused_but_read_their_own_status") {
        return;
    }
    let (bus, d) = setup(&rules());
    let me = TestUser::create(&unique("wctl"), "pw-unused-2");
    lock_out(&d, "alice");
    lock_out(&d, &me.name);
    let as_me = |args: &[&str]| wardenctl(&bus.address, Some(me.uid), args);
    for args in [
        &["unlock", "--all", "--yes"][..],
        &["unlock", "alice"],
        &["lock", "alice", "--permanent"],
        &["locks"],
        &["failures"],
        &["reload"],
        &["user-status", "alice"],
        &["explain", "alice", "--rhost", "198.51.100.4"],
        &["history"],
        &["history", "--user", "alice"],
        &["rhost-status", "198.51.100.4"],
    ] {
        let c = as_me(args);
        assert_eq!(c.code, 3, "{args:?}: {c:?}");
        assert!(c.stderr.contains("not authorized"), "{c:?}");
    }
    // With the bus gone, a user's shell gets no way around it: not the root
    // socket, not the store.
    let root_socket = d.socket.with_file_name("warden-root.sock");
    let config = d.config.to_str().unwrap().to_string();
    for args in [&["locks"][..], &["history"], &["unlock", "alice"]] {
        let mut all = args.to_vec();
        all.extend([
            "--root-socket",
            root_socket.to_str().unwrap(),
            "--config",
            &config,
        ]);
        let c = wardenctl("unix:path=/nonexistent", Some(me.uid), &all);
        assert_eq!(c.code, 4, "{args:?}: {c:?}");
        assert!(
            !c.stderr.contains("root socket") && !c.stderr.contains("store"),
            "{c:?}"
        );
    }
    assert!(
        ok(wardenctl(&bus.address, None, &["locks"]))
            .stdout
            .contains("user=alice"),
        "alice is still locked"
    );
    let mine = as_me(&["user-status", "--json"]);
    assert_eq!(mine.code, 0, "{mine:?}");
    assert!(mine.stdout.contains("\"locked\": true"), "{mine:?}");
    assert_eq!(as_me(&["status"]).code, 0);
    // GetUserStatus of another user passes the policy file and is refused by
    // wardend's own uid check.
    let log = d.log_text();
    assert!(
        log.contains(&format!("bus-refused method=GetUserStatus uid={}", me.uid)),
        "{log}"
    );
    let still = ok(wardenctl(&bus.address, None, &["locks"]));
    assert!(
        still.stdout.contains("user=alice"),
        "nothing was unlocked: {}",
        still.stdout
    );
}

#[test]
fn members_of_warden_admin_may_act() {
    if !root_or_skip("members_of_warden_admin_may_act") {
        return;
    }
    /// Removes the group afterwards if this test made it, even on a panic.
    struct Group(bool);
    impl Drop for Group {
        fn drop(&mut self) {
            if self.0 {
                let _ = Command::new("groupdel").arg("warden-admin").status();
            }
        }
    }
    let _group = Group(
        Command::new("groupadd")
            .arg("warden-admin")
            .status()
            .is_ok_and(|s| s.success()),
    );
    let (bus, d) = setup(&rules());
    let admin = TestUser::create(&unique("wadm"), "pw-unused-3");
    assert!(Command::new("usermod")
        .args(["-aG", "warden-admin", &admin.name])
        .status()
        .unwrap()
        .success());
    lock_out(&d, "alice");
    let c = wardenctl(&bus.address, Some(admin.uid), &["unlock", "alice"]);
    assert_eq!(c.code, 0, "{c:?}\n{}", d.log_text());
    assert!(
        d.log_text().contains(&format!(
            "unlocked rule=user on=user user=alice by=uid={}",
            admin.uid
        )),
        "{}",
        d.log_text()
    );
}

#[test]
fn watch_sees_a_real_lockout_and_its_expiry() {
    let rules = rules()
        .replace("lockout = \"15m\"", "lockout = \"2s\"")
        .replace(
            "[familiar]",
            "extend_on_failure_while_locked = false\n[familiar]",
        );
    let (bus, d) = setup(&rules);
    let mut watch = Command::new(paths::wardenctl())
        .args(["watch", "--json"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says so once it has subscribed.
    let mut ready = String::new();
    BufReader::new(watch.stderr.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.contains("watching"), "{ready}");
    lock_out(&d, "dave");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let start = Instant::now();
    while lines.len() < 2 && start.elapsed() < Duration::from_secs(10) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let locked: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(locked["event"], "locked");
    assert_eq!(locked["key"], "user user=dave");
    let unlocked: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(unlocked["event"], "unlocked");
    assert_eq!(unlocked["by"], "expired");
}

#[test]
fn a_broken_reload_keeps_the_old_config() {
    let (bus, d) = setup(&rules());
    std::fs::write(
        &d.config,
        format!(
            "{}\nlimit_typo = 3\n",
            std::fs::read_to_string(&d.config).unwrap()
        ),
    )
    .unwrap();
    let c = wardenctl(&bus.address, None, &["reload"]);
    assert_eq!(c.code, 1, "{c:?}");
    assert!(
        c.stderr.contains("unknown field `limit_typo`")
            && c.stderr.contains("running configuration is unchanged"),
        "{c:?}"
    );
    // Still limit 2.
    lock_out(&d, "erin");
    assert!(ok(wardenctl(&bus.address, None, &["locks"]))
        .stdout
        .contains("user=erin"));
    // A good file is taken: limit 5 now, so two more failures lock no one new.
    let text = std::fs::read_to_string(&d.config)
        .unwrap()
        .replace("\nlimit_typo = 3\n", "")
        .replace("limit = 2", "limit = 5");
    std::fs::write(&d.config, text).unwrap();
    ok(wardenctl(&bus.address, None, &["reload"]));
    lock_out(&d, "frank");
    assert!(!ok(wardenctl(&bus.address, None, &["locks"]))
        .stdout
        .contains("user=frank"));
}

#[test]
fn without_a_bus_logins_are_still_guarded() {
    let d = Daemon::start_with_env(
        &rules(),
        &[(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/system_bus_socket",
        )],
    );
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..2 {
        pam.attempt("gina", "wrong", None);
    }
    let o = pam.attempt("gina", "right", None);
    assert_eq!(
        o.messages,
        ["Too many failed attempts. Try again in 15 minutes."]
    );
    assert!(d.wait_for_log("bus-unavailable", 5), "{}", d.log_text());
}

#[test]
fn a_range_lock_covers_its_range_and_typos_are_refused() {
    let (bus, d) = setup(&rules());
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);
    let pam = PamDir::new(&d.socket, "0", "");
    ok(ctl(&[
        "lock",
        "--rhost",
        "203.0.113.0/24",
        "--for",
        "1h",
        "--reason",
        "scanners",
    ]));
    ok(ctl(&["lock", "--rhost", "2001:db8:5::/48", "--permanent"]));
    for inside in ["203.0.113.77", "::ffff:203.0.113.1", "2001:db8:5:7::9"] {
        assert_eq!(
            pam.attempt("x", "wrong", Some(inside)).auth,
            PAM_AUTH_ERR,
            "{inside}"
        );
    }
    assert_eq!(pam.checks(), 0, "no address in a locked range got a check");
    assert_eq!(
        pam.attempt("x", "wrong", Some("203.0.114.1")).auth,
        WRONG_PASSWORD
    );
    // Unlocking one address finds, names and lifts the range that covers it.
    let u = ok(ctl(&["unlock", "--rhost", "203.0.113.77"]));
    assert!(
        u.stdout.contains("lifted: admin rhost=203.0.113.0/24"),
        "{u:?}"
    );
    assert_eq!(
        pam.attempt("x", "wrong", Some("203.0.113.77")).auth,
        WRONG_PASSWORD
    );
    // Typos are refused, and lock nothing.
    for (args, says) in [
        (
            &["lock", "--rhost", "10.1.2.3/8", "--for", "1h"][..],
            "host bits set; the network is 10.0.0.0/8",
        ),
        (
            &["lock", "--rhost", "not-an-address", "--for", "1h"][..],
            "neither an address nor a network",
        ),
        (&["lock", "bob", "--for", "0s"][..], "no time at all"),
        (
            &["unlock", "--rhost", "203.0.113.0/33"][..],
            "neither an address nor a network",
        ),
    ] {
        let c = ctl(args);
        assert_eq!(c.code, 1, "{args:?}: {c:?}");
        assert!(c.stderr.contains(says), "{args:?}: {c:?}");
    }
    let locks = ok(ctl(&["locks"])).stdout;
    assert!(
        !locks.contains("bob") && !locks.contains("10.0.0.0"),
        "{locks}"
    );
}

#[test]
fn sighup_reloads_and_a_broken_file_keeps_the_running_config() {
    let (bus, d) = setup(&rules());
    let pam = PamDir::new(&d.socket, "0", "");
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace("limit = 2", "limit = 1")).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        d.wait_for_log("config-reloaded by=signal", 5),
        "{}",
        d.log_text()
    );
    pam.attempt("dora", "wrong", None);
    assert_eq!(
        pam.attempt("dora", "right", None).auth,
        PAM_AUTH_ERR,
        "limit 1 now"
    );
    std::fs::write(&d.config, "limit = oops\n").unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        d.wait_for_log("config-reload-refused by=signal", 5),
        "{}",
        d.log_text()
    );
    assert!(wait_for_daemon(&bus.address), "still running");
    pam.attempt("erik", "wrong", None);
    assert_eq!(
        pam.attempt("erik", "right", None).auth,
        PAM_AUTH_ERR,
        "limit 1 still"
    );
}

/// Every key `wardenctl locks` prints, `wardenctl unlock --key` takes back,
/// whatever the user name holds; and it unlocks that key only.
#[test]
fn unlock_key_round_trips_awkward_names() {
    let (bus, d) = setup(&rules());
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);
    let awkward = [
        "jürgen",
        "a b",
        "say \"hi\"",
        "x=y",
        "back\\slash",
        "x user=root",
        "zero\u{200b}width",
    ];
    // Each from a network of its own, so that no prefix lock gathers them.
    for (i, user) in awkward.iter().enumerate() {
        let rhost = format!("10.{i}.0.1");
        for _ in 0..2 {
            warden_e2e::client::fail(&d.socket, user, Some(&rhost)).unwrap();
        }
    }
    lock_out(&d, "bystander");
    let listed = json(ctl(&["locks", "--json"]));
    let keys: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), awkward.len() + 1, "{keys:?}");
    let table = ok(ctl(&["locks"])).stdout;
    for key in &keys {
        // The table shows the very string the JSON gives.
        assert!(table.contains(key.as_str()), "{key} not in\n{table}");
    }
    for user in awkward {
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["fields"]["user"] == user)
            .unwrap_or_else(|| panic!("no lock for {user:?}: {listed}"));
        let key = entry["key"].as_str().unwrap();
        assert_eq!(
            ok(ctl(&["unlock", "--key", key])).stdout.trim(),
            format!("unlocked 1 key\n  lifted: {key}"),
            "{user:?}"
        );
        let still = json(ctl(&["user-status", user, "--json"]));
        assert_eq!(still["locked"], false, "{user:?}: {still}");
    }
    // Only the named keys went: the bystander is still locked.
    let left = json(ctl(&["locks", "--json"]));
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["key"], "user user=bystander");
    // A key that is not spelled right is refused with where and how.
    let bad = ctl(&["unlock", "--key", "user user=\"open"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(
        bad.stderr.contains("no closing quote") && bad.stderr.contains("RULE field=value"),
        "{bad:?}"
    );
}

/// The socket's root-only admin requests and D-Bus are one operation each:
/// the same order, the same filtering, and the same audit line.
#[test]
fn socket_and_bus_list_and_unlock_alike() {
    let (bus, d) = setup(&rules());
    let ctl = |args: &[&str]| wardenctl(&bus.address, None, args);
    lock_out(&d, "alice");
    std::thread::sleep(Duration::from_millis(1100));
    lock_out(&d, "bob");
    let over_bus: Vec<String> = json(ctl(&["locks", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    let over_socket = warden_e2e::client::locked_keys(&d.socket);
    assert_eq!(
        over_bus,
        ["user user=bob", "user user=alice"],
        "newest first"
    );
    assert_eq!(over_socket, over_bus);

    let r = warden_e2e::client::request(
        &d.socket,
        warden_proto::RequestBody::Admin(warden_proto::AdminRequest::UnlockUser("alice".into())),
    )
    .unwrap();
    assert_eq!(r, warden_proto::ResponseBody::Unlocked(1));
    assert!(
        d.log_text()
            .contains("admin-unlock by=uid=0 target=\"user alice\" cleared=1"),
        "{}",
        d.log_text()
    );
    ok(ctl(&["unlock", "bob"]));
    assert!(
        d.log_text()
            .contains("admin-unlock by=uid=0 target=\"user bob\" cleared=1"),
        "{}",
        d.log_text()
    );
    // A malformed rhost is refused on the socket as on the bus.
    let r = warden_e2e::client::request(
        &d.socket,
        warden_proto::RequestBody::Admin(warden_proto::AdminRequest::UnlockRhost(
            "10.1.2.3/8".into(),
        )),
    )
    .unwrap();
    assert!(
        matches!(&r, warden_proto::ResponseBody::Error { message, .. } if message.contains("host bits")),
        "{r:?}"
    );
}

/// Errors carry names that say what went wrong, so a client need not parse
/// the message: asked with dbus-send, which knows nothing of warden.
#[test]
fn errors_carry_names_that_mean_something() {
    let (bus, _d) = setup(&rules());
    let call = |method: &str, args: &[&str]| {
        let out = Command::new("dbus-send")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .args([
                "--system",
                "--print-reply",
                "--dest=org.warden.Warden1",
                "/org/warden/Warden1",
                &format!("org.warden.Warden1.{method}"),
            ])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = call("Unlock", &["string:key", "string:user user=\"open"]);
    assert!(
        e.contains("org.warden.Warden1.Error.InvalidArgument") && e.contains("no closing quote"),
        "{e}"
    );
    let e = call("Unlock", &["string:rhost", "string:10.1.2.3/8"]);
    assert!(
        e.contains("org.warden.Warden1.Error.InvalidArgument") && e.contains("host bits"),
        "{e}"
    );
    let e = call("TotpConfirm", &["string:nobody-enrolled", "string:123456"]);
    assert!(
        e.contains("org.warden.Warden1.Error.NotFound")
            && e.contains("wardenctl totp enroll nobody-enrolled"),
        "{e}"
    );
    let e = call("TotpRecoveryCodes", &["string:nobody-enrolled", "string:"]);
    assert!(e.contains("org.warden.Warden1.Error.NotFound"), "{e}");
    let e = call(
        "Lock",
        &[
            "string:user",
            "string:x",
            "uint64:0",
            "boolean:false",
            "string:",
        ],
    );
    assert!(
        e.contains("org.warden.Warden1.Error.InvalidArgument") && e.contains("longer than zero"),
        "{e}"
    );
}

/// With --json a script gets JSON whatever happens: errors and config checks too.
#[test]
fn json_for_scripts_even_on_errors() {
    let c = wardenctl("unix:path=/nonexistent", None, &["locks", "--json"]);
    assert_eq!(c.code, 4, "{c:?}");
    let v: serde_json::Value =
        serde_json::from_str(&c.stdout).unwrap_or_else(|e| panic!("{e}: {c:?}"));
    assert_eq!(v["exit_code"], 4, "{v}");
    assert!(v["error"].as_str().unwrap().contains("system bus"), "{v}");

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, rules()).unwrap();
    let c = wardenctl(
        "unix:path=/nonexistent",
        None,
        &["config", "check", "--json", good.to_str().unwrap()],
    );
    assert_eq!(c.code, 0, "{c:?}");
    let v: serde_json::Value = serde_json::from_str(&c.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["effective"].as_str().unwrap().contains("RULE"), "{v}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rule]]\nname = \"x\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"5q\"\nlockout = \"1m\"\n").unwrap();
    let c = wardenctl(
        "unix:path=/nonexistent",
        None,
        &["config", "check", "--json", bad.to_str().unwrap()],
    );
    assert_eq!(c.code, 1, "{c:?}");
    let v: serde_json::Value = serde_json::from_str(&c.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert!(
        v["errors"][0].as_str().unwrap().contains("rule[1].window"),
        "{v}"
    );
}
