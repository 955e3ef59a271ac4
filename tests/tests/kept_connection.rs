//! One connection per PAM handle, through real libpam and a real wardend: a
//! recording relay between them sees how many connections a login opens, what
//! it asks and what it waits for, and can close a connection between phases as
//! wardend does to one left idle.

use std::io::Write as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::pam::{PamDir, PAM_SUCCESS, WRONG_PASSWORD};
use warden_proto::{decode_request, read_frame, write_frame, RequestBody};

/// Three failures lock a user for 15 minutes.
fn rules() -> String {
    format!("{NO_FAMILIAR}{}", user_rule(3, "15m", "15m"))
}

#[derive(Default, Debug)]
struct Seen {
    connections: usize,
    /// Connections the relay has seen to their end.
    ended: usize,
    /// Each request's kind, and whether the relay carried an answer back.
    requests: Vec<(String, bool)>,
}

/// What the relay does to a connection besides relaying it.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Relay,
    /// Closes it after the first answer, as wardend closes one left idle.
    CloseAfterAnswer,
    /// Reads a second request that is a failure and closes without passing
    /// it on: the close of an idle connection crossing a request the module
    /// had already sent, which wardend never read.
    DropSecondFail,
}

/// Listens where the module looks for the root socket and relays each frame
/// to wardend's root socket, as the module's peer; it is root, like wardend.
struct Relay {
    dir: tempfile::TempDir,
    seen: Arc<Mutex<Seen>>,
}

impl Relay {
    fn start(upstream: PathBuf, mode: Mode) -> Relay {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("warden-root.sock")).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                s.lock().unwrap().connections += 1;
                let (s, upstream) = (s.clone(), upstream.clone());
                std::thread::spawn(move || {
                    relay(client, &upstream, &s, mode);
                    s.lock().unwrap().ended += 1;
                });
            }
        });
        Relay { dir, seen }
    }

    /// The `socket=` the module is given: the root socket beside it is ours.
    fn socket(&self) -> PathBuf {
        self.dir.path().join("warden.sock")
    }

    /// What was seen, once every connection has ended (the driver has
    /// exited, but the relay may still be reading its last frame).
    fn take(&self) -> Seen {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut seen = self.seen.lock().unwrap();
            if seen.ended == seen.connections || std::time::Instant::now() > deadline {
                return std::mem::take(&mut *seen);
            }
            drop(seen);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn relay(mut client: UnixStream, upstream: &Path, seen: &Mutex<Seen>, mode: Mode) {
    let mut up = UnixStream::connect(upstream).unwrap();
    let mut read = 0;
    while let Ok(frame) = read_frame(&mut client) {
        read += 1;
        let kind = match decode_request(&frame) {
            Ok(RequestBody::Begin(_)) => "Begin",
            Ok(RequestBody::Fail { .. }) => "Fail",
            Ok(RequestBody::Succeed { .. }) => "Succeed",
            Ok(RequestBody::Passed { .. }) => "Passed",
            Ok(RequestBody::Account(_)) => "Account",
            Ok(RequestBody::Release { .. }) => "Release",
            Ok(_) => "other",
            Err(_) => "malformed",
        };
        if mode == Mode::DropSecondFail && read == 2 && kind == "Fail" {
            seen.lock()
                .unwrap()
                .requests
                .push((kind.to_string(), false));
            return;
        }
        write_frame(&mut up, &frame).unwrap();
        // Passed is never answered: waiting here would hang, as a module
        // waiting for it would.
        let answered = kind != "Passed";
        seen.lock()
            .unwrap()
            .requests
            .push((kind.to_string(), answered));
        if answered {
            let answer = read_frame(&mut up).unwrap();
            write_frame(&mut client, &answer).unwrap();
            client.flush().unwrap();
            if mode == Mode::CloseAfterAnswer {
                return;
            }
        }
    }
}

fn kinds(seen: &Seen) -> Vec<(&str, bool)> {
    seen.requests
        .iter()
        .map(|(k, a)| (k.as_str(), *a))
        .collect()
}

#[test]
fn a_login_is_one_connection_and_its_success_waits_for_no_answer() {
    let d = Daemon::start(&rules());
    let relay = Relay::start(d.socket.with_file_name("warden-root.sock"), Mode::Relay);
    let pam = PamDir::new(&relay.socket(), "0", "");

    let o = pam.attempt("alice", "right", Some("203.0.113.7"));
    assert_eq!(o.auth, PAM_SUCCESS, "{o:?}");
    let seen = relay.take();
    assert_eq!(seen.connections, 1, "{seen:?}");
    assert_eq!(
        kinds(&seen),
        [("Begin", true), ("Passed", false)],
        "preauth is answered; the success is sent and not waited for"
    );

    let o = pam.attempt("alice", "wrong", Some("203.0.113.7"));
    assert_eq!(o.auth, WRONG_PASSWORD, "{o:?}");
    let seen = relay.take();
    assert_eq!(seen.connections, 1, "{seen:?}");
    assert_eq!(kinds(&seen), [("Begin", true), ("Fail", true)]);

    // The unanswered success was recorded all the same: it reset the count,
    // so two failures before it and two after lock no one at a limit of 3.
    pam.attempt("alice", "wrong", None);
    assert_eq!(pam.attempt("alice", "right", None).auth, PAM_SUCCESS);
    for _ in 0..2 {
        assert_eq!(pam.attempt("alice", "wrong", None).auth, WRONG_PASSWORD);
    }
    assert_eq!(pam.attempt("alice", "right", None).auth, PAM_SUCCESS);
    assert_eq!(pam.checks(), 7, "every attempt reached the password check");
}

/// A wardend, a relay in `mode` before its root socket, and two wrong
/// passwords for `user` through it: what the relay saw of them. Each of the
/// two logins leaves the module's first connection and opens one more.
fn two_failures_through(mode: Mode, user: &str) -> (Daemon, Relay, PamDir, Seen) {
    let d = Daemon::start(&rules());
    let relay = Relay::start(d.socket.with_file_name("warden-root.sock"), mode);
    let pam = PamDir::new(&relay.socket(), "0", "");
    for _ in 0..2 {
        let o = pam.attempt(user, "wrong", None);
        assert_eq!(o.auth, WRONG_PASSWORD, "{o:?}");
    }
    let seen = relay.take();
    assert_eq!(seen.connections, 4, "{seen:?}");
    (d, relay, pam, seen)
}

#[test]
fn a_connection_closed_between_phases_is_opened_again() {
    // Two wrong passwords, each phase on a connection of its own.
    let (_d, relay, pam, seen) = two_failures_through(Mode::CloseAfterAnswer, "bob");
    assert_eq!(
        kinds(&seen),
        [
            ("Begin", true),
            ("Fail", true),
            ("Begin", true),
            ("Fail", true)
        ]
    );
    // The third wrong password locks; had a failure been lost between
    // connections, it would not.
    pam.attempt("bob", "wrong", None);
    let o = pam.attempt("bob", "right", None);
    assert_ne!(o.auth, PAM_SUCCESS, "locked after three: {o:?}");
    assert_eq!(
        o.messages,
        ["Too many failed attempts. Try again in 15 minutes."]
    );

    // A success whose preauth connection was closed reaches wardend too.
    let o = pam.attempt("carol", "wrong", None);
    assert_eq!(o.auth, WRONG_PASSWORD);
    relay.take();
    assert_eq!(pam.attempt("carol", "right", None).auth, PAM_SUCCESS);
    let seen = relay.take();
    assert_eq!(kinds(&seen), [("Begin", true), ("Passed", false)]);
    assert_eq!(seen.connections, 2, "{seen:?}");
    for _ in 0..2 {
        assert_eq!(pam.attempt("carol", "wrong", None).auth, WRONG_PASSWORD);
    }
    assert_eq!(
        pam.attempt("carol", "right", None).auth,
        PAM_SUCCESS,
        "the success reset carol's count"
    );
}

/// The race the module's one retry is for: wardend closes an idle kept
/// connection just as the module sends its next request on it. The module
/// sees the close while it waits, and sends the request once more on a new
/// connection: the failure counts exactly once, and the login is not
/// refused for an outage.
#[test]
fn a_request_crossed_by_the_close_is_sent_again_once() {
    let (d, _relay, pam, seen) = two_failures_through(Mode::DropSecondFail, "dora");
    assert_eq!(
        kinds(&seen),
        [
            ("Begin", true),
            ("Fail", false),
            ("Fail", true),
            ("Begin", true),
            ("Fail", false),
            ("Fail", true)
        ]
    );
    // Counted once each: two failures at a limit of 3, so a third wrong
    // password locks, and not before.
    assert_eq!(
        d.log_text()
            .matches("failure service=warden-test user=dora")
            .count(),
        2,
        "{}",
        d.log_text()
    );
    pam.attempt("dora", "wrong", None);
    let o = pam.attempt("dora", "right", None);
    assert_ne!(o.auth, PAM_SUCCESS, "three failures did not lock: {o:?}");
}

/// The attack the kept connection opens: sessions left at the password prompt
/// each hold a connection to the root socket. Held past three quarters of
/// the pool, the idle ones are told to close, so a login still finds a place.
#[test]
fn prompts_left_open_cannot_hold_the_root_pool() {
    use std::io::Read as _;
    use warden_e2e::client::{connect, fields, request_on};
    let d = Daemon::start(&rules());
    let root = d.socket.with_file_name("warden-root.sock");
    // More than the pool (512): each preauth answered, then left idle.
    let held: Vec<UnixStream> = (0..600)
        .filter_map(|i| {
            let mut s = connect(&root).ok()?;
            request_on(&mut s, RequestBody::Begin(fields(&format!("h{i}"), None))).ok()?;
            Some(s)
        })
        .collect();
    assert!(held.len() >= 512, "only {} preauths answered", held.len());
    let pam = PamDir::new(&d.socket, "0", "on_unavailable=deny");
    for _ in 0..3 {
        let o = pam.attempt("alice", "right", None);
        assert_eq!(o.auth, PAM_SUCCESS, "a login found no place: {o:?}");
    }
    // Most of the held connections were closed by wardend, without a word.
    let closed = held
        .into_iter()
        .filter(|s| {
            let mut s = s;
            s.set_read_timeout(Some(std::time::Duration::from_millis(50)))
                .unwrap();
            matches!(s.read(&mut [0u8; 1]), Ok(0))
        })
        .count();
    assert!(closed >= 128, "only {closed} idle connections were closed");
}
