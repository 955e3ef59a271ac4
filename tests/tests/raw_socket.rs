//! A raw client sending what the module never would: malformed, oversized,
//! half-sent frames and another protocol version. Each gets an error, and the
//! daemon keeps serving everyone else.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use warden_e2e::daemon::Daemon;
use warden_proto::*;

fn send_raw(d: &Daemon, bytes: &[u8]) -> Option<ResponseBody> {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let reply = read_frame(&mut s).ok()?;
    let body = decode_response(&reply).ok();
    // The connection is closed after an error.
    let mut rest = [0u8; 1];
    assert_eq!(
        s.read(&mut rest).unwrap_or(0),
        0,
        "the daemon should close the connection"
    );
    body
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn code(r: Option<ResponseBody>) -> ErrorCode {
    match r {
        Some(ResponseBody::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn begin(user: &str) -> Vec<u8> {
    framed(
        &encode_request(RequestBody::Begin(AttemptFields {
            service: b"sshd".to_vec(),
            user: user.as_bytes().to_vec(),
            rhost: Some(b"192.0.2.1".to_vec()),
            tty: None,
            ruser: None,
            locale: None,
        }))
        .unwrap(),
    )
}

fn still_serves(d: &Daemon) {
    match send_raw_ok(d, &begin("healthy")) {
        ResponseBody::Verdict(v) => assert!(v.allowed),
        other => panic!("{other:?}"),
    }
}

fn send_raw_ok(d: &Daemon, bytes: &[u8]) -> ResponseBody {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    decode_response(&read_frame(&mut s).unwrap()).unwrap()
}

#[test]
fn malformed_frames_get_errors() {
    let d = Daemon::start("");
    assert_eq!(
        code(send_raw(
            &d,
            &framed(&[VERSION as u8, 0xff, 0xff, 0xff, 0xff])
        )),
        ErrorCode::Malformed
    );
    assert_eq!(code(send_raw(&d, &[0, 0, 0, 0])), ErrorCode::Malformed);
    still_serves(&d);
}

#[test]
fn oversized_frames_are_refused_unread() {
    let d = Daemon::start("");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&(64u32 * 1024 * 1024).to_be_bytes()).unwrap();
    let reply = decode_response(&read_frame(&mut s).unwrap()).unwrap();
    assert_eq!(code(Some(reply)), ErrorCode::TooLarge);
    // A valid request padded to exactly the limit is read and served.
    let mut at_limit = encode_request(RequestBody::Begin(AttemptFields {
        service: b"sshd".to_vec(),
        user: b"padded".to_vec(),
        rhost: None,
        tty: None,
        ruser: None,
        locale: None,
    }))
    .unwrap();
    at_limit.resize(MAX_FRAME, 0);
    match send_raw_ok(&d, &framed(&at_limit)) {
        ResponseBody::Verdict(v) => assert!(v.allowed),
        other => panic!("{other:?}"),
    }
    still_serves(&d);
}

#[test]
fn a_wrong_version_is_named() {
    let d = Daemon::start("");
    // Version 9 as a postcard varint, then anything.
    let r = send_raw(&d, &framed(&[9, 0, 1, 2, 3]));
    match r {
        Some(ResponseBody::Error { code, message }) => {
            assert_eq!(code, ErrorCode::Version);
            assert!(message.contains("version 9"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_fields_get_clear_errors() {
    let d = Daemon::start("");
    for (user, expect) in [
        ("a".repeat(257), "over the limit of 256"),
        ("ali\0ce".to_string(), "NUL"),
    ] {
        match send_raw(&d, &begin(&user)) {
            Some(ResponseBody::Error { code, message }) => {
                assert_eq!(code, ErrorCode::BadField);
                assert!(message.contains(expect), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    let mut bad_utf8 = AttemptFields {
        service: b"sshd".to_vec(),
        user: b"al\xffice".to_vec(),
        rhost: None,
        tty: None,
        ruser: None,
        locale: None,
    };
    let r = send_raw(
        &d,
        &framed(&encode_request(RequestBody::Begin(bad_utf8.clone())).unwrap()),
    );
    assert!(
        matches!(r, Some(ResponseBody::Error { code: ErrorCode::BadField, ref message }) if message.contains("UTF-8")),
        "{r:?}"
    );
    bad_utf8.user = b"alice".to_vec();
    bad_utf8.tty = Some(vec![b't'; 65]);
    let r = send_raw(
        &d,
        &framed(&encode_request(RequestBody::Begin(bad_utf8)).unwrap()),
    );
    assert!(
        matches!(r, Some(ResponseBody::Error { code: ErrorCode::BadField, ref message }) if message.contains("tty")),
        "{r:?}"
    );
    still_serves(&d);
}

#[test]
fn a_stalled_half_frame_starves_no_one() {
    let d = Daemon::start("");
    let mut stalled: Vec<UnixStream> = (0..20)
        .map(|_| {
            let mut s = UnixStream::connect(&d.socket).unwrap();
            s.write_all(&[0, 0, 0, 100, 1, 2]).unwrap();
            s
        })
        .collect();
    // Others are served at once while the half frames wait.
    let start = Instant::now();
    still_serves(&d);
    assert!(start.elapsed() < Duration::from_secs(1));
    // The stalled ones are answered with an error and closed by the deadline.
    let s = &mut stalled[0];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = decode_response(&read_frame(s).unwrap()).unwrap();
    assert_eq!(code(Some(reply)), ErrorCode::Malformed);
}

#[test]
fn many_quick_connections_leave_the_daemon_serving() {
    let d = Daemon::start("");
    for _ in 0..2000 {
        drop(UnixStream::connect(&d.socket).unwrap());
    }
    still_serves(&d);
}

#[test]
fn a_connection_waits_between_requests_and_is_closed_quietly_when_idle() {
    let d = Daemon::start("");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Two requests a few seconds apart on one connection, as a login's
    // preauth and authsucc are, with the password typed in between (longer
    // than the 2 s a frame may take once begun).
    for pause in [0, 3] {
        std::thread::sleep(Duration::from_secs(pause));
        s.write_all(&begin("typist")).unwrap();
        match decode_response(&read_frame(&mut s).unwrap()).unwrap() {
            ResponseBody::Verdict(v) => assert!(v.allowed),
            other => panic!("{other:?}"),
        }
    }
    // Then nothing: closed without a word, so the module, which checks a
    // kept connection before using it, finds it closed and opens another
    // rather than reading an error as an answer.
    let start = Instant::now();
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest);
    assert!(matches!(n, Ok(0)), "{n:?} {rest:?}");
    let idle = start.elapsed();
    assert!(
        idle > Duration::from_secs(5) && idle < Duration::from_secs(15),
        "{idle:?}"
    );
    still_serves(&d);
}
