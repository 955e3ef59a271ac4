//! An in-process client of wardend's socket, for floods and raw requests.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use warden_proto::{
    decode_response, encode_request, read_frame, write_frame, AttemptFields, RequestBody,
    ResponseBody,
};

/// One request on a fresh connection.
pub fn request(socket: &Path, body: RequestBody) -> Result<ResponseBody, String> {
    let mut s = connect(socket)?;
    request_on(&mut s, body)
}

pub fn connect(socket: &Path) -> Result<UnixStream, String> {
    let s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// One request on a connection that may carry more.
pub fn request_on(s: &mut UnixStream, body: RequestBody) -> Result<ResponseBody, String> {
    let bytes = encode_request(body).map_err(|e| e.to_string())?;
    write_frame(s, &bytes).map_err(|e| e.to_string())?;
    let reply = read_frame(s).map_err(|e| e.to_string())?;
    decode_response(&reply).map_err(|(_, e)| e)
}

/// A request that gets no answer (`Passed`) on a connection that may carry more.
pub fn send_on(s: &mut UnixStream, body: RequestBody) -> Result<(), String> {
    let bytes = encode_request(body).map_err(|e| e.to_string())?;
    write_frame(s, &bytes).map_err(|e| e.to_string())
}

pub fn fields(user: &str, rhost: Option<&str>) -> AttemptFields {
    AttemptFields {
        service: b"sshd".to_vec(),
        user: user.as_bytes().to_vec(),
        rhost: rhost.map(|r| r.as_bytes().to_vec()),
        tty: None,
        ruser: None,
        locale: None,
    }
}

/// Reports a failure with no preauth, as authfail does after a daemon restart.
pub fn fail(socket: &Path, user: &str, rhost: Option<&str>) -> Result<ResponseBody, String> {
    request(
        socket,
        RequestBody::Fail {
            attempt: None,
            fields: fields(user, rhost),
            repeat: None,
        },
    )
}

/// The keys of every active lock, as `user=alice` strings.
pub fn locked_keys(socket: &Path) -> Vec<String> {
    lock_ends(socket).into_iter().map(|(key, _)| key).collect()
}

/// Every active lock's key and how many seconds it has left (`None`:
/// permanent), as the root socket lists them.
pub fn lock_ends(socket: &Path) -> Vec<(String, Option<u64>)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match request(
        socket,
        RequestBody::Admin(warden_proto::AdminRequest::ListLocks),
    ) {
        Ok(ResponseBody::Locks(locks)) => locks
            .into_iter()
            .map(|l| (l.key, l.until.map(|u| u.saturating_sub(now))))
            .collect(),
        other => panic!("list locks: {other:?}"),
    }
}

/// Checks the spread of six lock ends under a 10-minute lockout with 5
/// minutes of jitter: each in its window, and not all alike.
pub fn assert_jittered(ends: &[(String, Option<u64>)]) {
    assert_eq!(ends.len(), 6, "{ends:?}");
    for (key, left) in ends {
        let left = left.unwrap_or(0);
        assert!(
            (595..=902).contains(&left),
            "{key}: {left} s left: {ends:?}"
        );
    }
    let distinct: std::collections::BTreeSet<_> = ends.iter().map(|(_, l)| l).collect();
    assert!(distinct.len() >= 4, "the ends are not spread: {ends:?}");
}

/// The rule those checks expect: one failure locks a user for 10 minutes,
/// plus up to 5 of jitter.
pub fn jitter_rule() -> String {
    format!(
        "{}escalate = 1.0\njitter = \"5m\"\n",
        crate::daemon::user_rule(1, "1h", "10m")
    )
}

/// Runs the raw client (as `uid`, or root) and tallies its answers by label.
pub fn raw_as(
    uid: Option<u32>,
    socket: &Path,
    args: &[&str],
) -> (String, std::collections::BTreeMap<String, usize>) {
    let mut cmd = match uid {
        Some(u) => crate::as_uid(u, &crate::paths::raw_client()),
        None => std::process::Command::new(crate::paths::raw_client()),
    };
    let out = cmd.arg(socket).args(args).output().unwrap();
    let text = crate::joined(&out);
    let tally = text
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, n)| n.parse().ok().map(|n| (k.to_string(), n)))
        .collect();
    (text, tally)
}

/// How many answers a tally holds whose label starts with `prefix`.
pub fn count(tally: &std::collections::BTreeMap<String, usize>, prefix: &str) -> usize {
    tally
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, n)| n)
        .sum()
}
