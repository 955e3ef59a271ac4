//! `[[hook]]` commands run by a real wardend on real locks: a script run by
//! exec as `nobody`, the event as JSON on its stdin, in an empty environment;
//! a hook that hangs is killed at its timeout and delays no login.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use warden_e2e::client::request;
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::pam::{PamDir, PAM_SUCCESS, WRONG_PASSWORD};
use warden_e2e::root_or_skip;
use warden_proto::{AdminRequest, RequestBody};

/// A directory `nobody` can enter and write, with `script` in it.
fn hook_dir(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = dir.path().join("hook");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn hook_config(dir: &Path, on: &str, timeout: &str) -> String {
    format!(
        "{NO_FAMILIAR}{}[[hook]]\non = {on}\nexec = [\"{}\", \"first arg\"]\ntimeout = \"{timeout}\"\n",
        user_rule(2, "1h", "1h"),
        dir.join("hook").display()
    )
}

/// Each run's output, oldest first.
fn runs(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "run"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

#[test]
fn a_lock_and_its_unlock_run_the_hook_as_nobody_with_the_event() {
    if !root_or_skip("a_lock_and_its_unlock_run_the_hook_as_nobody_with_the_event") {
        return;
    }
    // Each run writes its uid, arguments, environment and input to a file
    // named by the time it ran.
    let dir = hook_dir(
        "#!/bin/sh\nout=\"$(dirname \"$0\")/$(date +%s%N).run\"\n{ id -u; id -G; echo \"args=$*\"; env | sort | tr '\\n' ' '; echo; cat; } > \"$out\"\n",
    );
    let d = Daemon::start_with_env(
        &hook_config(dir.path(), "[\"locked\", \"unlocked\"]", "5s"),
        &[("WARDEN_TEST_SECRET", "must-not-reach-the-hook")],
    );
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..2 {
        assert_eq!(
            pam.attempt("alice", "wrong", Some("203.0.113.4")).auth,
            WRONG_PASSWORD
        );
    }
    assert!(d.wait_for_log("hook-ran on=locked", 5), "{}", d.log_text());
    let r = request(
        &d.socket.with_file_name("warden-root.sock"),
        RequestBody::Admin(AdminRequest::UnlockUser("alice".into())),
    );
    assert!(r.is_ok(), "{r:?}");
    assert!(
        d.wait_for_log("hook-ran on=unlocked", 5),
        "{}",
        d.log_text()
    );

    // A name an attacker chose, made to break a line-oriented reader.
    let hostile = "ev\"il\nname;$(id)";
    for _ in 0..2 {
        pam.attempt(hostile, "wrong", None);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while runs(dir.path()).len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let runs = runs(dir.path());
    assert_eq!(runs.len(), 3, "{runs:?}");
    // Still one JSON line, holding the name exactly.
    let third: serde_json::Value =
        serde_json::from_str(runs[2].lines().nth(4).unwrap_or_default()).unwrap();
    assert_eq!(third["user"], hostile, "{}", runs[2]);
    assert_eq!(runs[2].lines().count(), 5, "{}", runs[2]);
    let runs = runs[..2].to_vec();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    for run in &runs {
        let mut lines = run.lines();
        assert_eq!(lines.next(), Some(nobody.uid.to_string().as_str()), "{run}");
        assert_eq!(
            lines.next(),
            Some(nobody.gid.to_string().as_str()),
            "no supplementary groups: {run}"
        );
        assert_eq!(lines.next(), Some("args=first arg"), "{run}");
        let env = lines.next().unwrap_or_default();
        assert!(
            env.contains("PATH=/usr/local/bin:/usr/bin:/bin")
                && !env.contains("WARDEN_TEST_SECRET"),
            "only what wardend gives: {env}"
        );
    }
    let event = |run: &str| -> serde_json::Value {
        serde_json::from_str(run.lines().nth(4).unwrap_or_default()).unwrap()
    };
    let locked = event(&runs[0]);
    assert_eq!(locked["event"], "locked", "{locked}");
    assert_eq!(locked["user"], "alice");
    assert_eq!(locked["rule"], "user");
    // The key as `wardenctl locks` prints it and `unlock --key` takes it.
    assert_eq!(locked["key"], "user user=alice");
    assert_eq!(locked["failures"], 2);
    let until = locked["until"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(until > now + 3000 && until <= now + 3600, "{locked}");
    let unlocked = event(&runs[1]);
    assert_eq!(unlocked["event"], "unlocked", "{unlocked}");
    assert_eq!(unlocked["by"], "uid=0");
}

#[test]
fn a_hook_that_hangs_is_killed_and_delays_no_login() {
    if !root_or_skip("a_hook_that_hangs_is_killed_and_delays_no_login") {
        return;
    }
    // It starts a child of its own, which the timeout must kill too.
    let dir = hook_dir("#!/bin/sh\nsleep 300 &\nsleep 300\n");
    let d = Daemon::start(&hook_config(dir.path(), "[\"locked\"]", "1s"));
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..2 {
        pam.attempt("bob", "wrong", None);
    }
    // While it hangs, logins go on at their usual pace.
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(pam.attempt("carol", "right", None).auth, PAM_SUCCESS);
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(
        d.wait_for_log("hook-timeout on=locked", 5),
        "{}",
        d.log_text()
    );
    let hook = dir.path().join("hook").display().to_string();
    let deadline = Instant::now() + Duration::from_secs(3);
    let left = loop {
        let out = std::process::Command::new("pgrep")
            .args(["-u", "nobody", "-f", "sleep 300"])
            .output()
            .unwrap();
        let left = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        left.is_empty(),
        "still running after the timeout ({hook}): {left}"
    );
}
