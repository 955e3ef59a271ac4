//! The daemon down, or accepting and never answering: the module returns within
//! timeout_ms and follows on_unavailable.

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};
use warden_e2e::pam::{PamDir, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS};

/// Slack for process start-up and pam_exec around the module's own bound.
const SLACK: Duration = Duration::from_millis(1500);

#[test]
fn no_daemon_means_ignore_by_default_and_deny_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let pam = PamDir::new(&socket, "0", "timeout_ms=300");
    let o = pam.attempt("alice", "right", None);
    assert_eq!(
        o.auth, PAM_SUCCESS,
        "ignore: the rest of the stack decides: {o:?}"
    );
    assert_eq!(pam.checks(), 1);

    let pam = PamDir::new(&socket, "0", "timeout_ms=300 on_unavailable=deny");
    let o = pam.attempt("alice", "right", None);
    assert_eq!(o.auth, PAM_AUTHINFO_UNAVAIL, "{o:?}");
    assert_eq!(pam.checks(), 0, "preauth denied before the password check");
}

#[test]
fn a_silent_daemon_cannot_hang_the_login() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    // Accepts connections (the kernel does, into the backlog) and never answers.
    let _listener = UnixListener::bind(&socket).unwrap();
    for (args, expected) in [
        ("timeout_ms=400", PAM_SUCCESS),
        ("timeout_ms=400 on_unavailable=deny", PAM_AUTHINFO_UNAVAIL),
    ] {
        let pam = PamDir::new(&socket, "0", args);
        let start = Instant::now();
        let o = pam.attempt("alice", "right", None);
        let took = start.elapsed();
        assert_eq!(o.auth, expected, "{args}: {o:?}");
        // ignore: preauth and authsucc each wait out their 400 ms; deny stops at preauth.
        let calls = if expected == PAM_SUCCESS { 2 } else { 1 };
        assert!(
            took < Duration::from_millis(400 * calls) + SLACK,
            "{args}: took {took:?}"
        );
    }
}

#[test]
fn a_full_backlog_still_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("full.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // Fill the accept queue so that connect itself would block.
    let mut held = Vec::new();
    for _ in 0..4096 {
        match std::os::unix::net::UnixStream::connect(&socket) {
            Ok(s) => {
                s.set_nonblocking(true).ok();
                held.push(s);
            }
            Err(_) => break,
        }
        if held.len() > 600 {
            break;
        }
    }
    let pam = PamDir::new(&socket, "0", "timeout_ms=300 on_unavailable=deny");
    let start = Instant::now();
    let o = pam.attempt("alice", "right", None);
    assert_eq!(o.auth, PAM_AUTHINFO_UNAVAIL);
    assert!(
        start.elapsed() < Duration::from_millis(300) + SLACK,
        "took {:?}",
        start.elapsed()
    );
    drop(listener);
}
