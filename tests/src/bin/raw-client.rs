//! Sends requests to wardend's socket as whoever runs it, for tests that act as
//! a particular (often unprivileged) peer, attacker included.
//!
//! Usage: raw-client SOCKET OP [USER] [--rhost R] [--service S] [--tty T]
//!                   [--ruser R] [--repeat N] [--vary-tty] [--code C]
//! OP: begin | fail | succeed | passed | account | guess-codes | drip | connect-flood
//!     | locks | unlock-user | unlock-all | call-unlock-all
//!
//! One request prints the answer (`{:?}`). With `--repeat N` it prints a tally,
//! one `LABEL COUNT` line per kind of answer. `guess-codes` runs whole attempts
//! (begin, succeed, then a code: `--code` or a wrong one) and tallies how each
//! ended. `drip` keeps one connection and sends a begin every 1.5 s, then
//! prints how long the daemon let it live. `connect-flood` opens and closes
//! connections from 32 threads for `--repeat` seconds.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use warden_proto::*;

struct Opts {
    socket: String,
    op: String,
    user: String,
    rhost: Option<String>,
    service: String,
    tty: Option<String>,
    ruser: Option<String>,
    repeat: usize,
    vary_tty: bool,
    code: Option<String>,
    /// `fail` with this tag of a wrong password (a peer cannot know the key,
    /// but it can send any eight bytes).
    tag: Option<[u8; 8]>,
    /// The locale the request says the application runs in.
    locale: Option<String>,
}

fn parse() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |i: usize| args.get(i).cloned().unwrap_or_default();
    let mut o = Opts {
        socket: get(0),
        op: get(1),
        user: String::new(),
        rhost: None,
        service: "raw-client".into(),
        tty: None,
        ruser: None,
        repeat: 1,
        vary_tty: false,
        code: None,
        tag: None,
        locale: None,
    };
    let mut rest = args.iter().skip(2).peekable();
    if let Some(u) = rest.next_if(|a| !a.starts_with("--")) {
        o.user = u.clone();
    }
    // The old form: an rhost after the user.
    if let Some(r) = rest.next_if(|a| !a.starts_with("--")) {
        o.rhost = Some(r.clone());
    }
    while let Some(a) = rest.next() {
        let mut val = || rest.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--rhost" => o.rhost = Some(val()),
            "--service" => o.service = val(),
            "--tty" => o.tty = Some(val()),
            "--ruser" => o.ruser = Some(val()),
            "--repeat" => o.repeat = val().parse().unwrap_or(1),
            "--vary-tty" => o.vary_tty = true,
            "--code" => o.code = Some(val()),
            "--locale" => o.locale = Some(val()),
            "--tag" => o.tag = Some([val().bytes().next().unwrap_or(b'x'); 8]),
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    o
}

impl Opts {
    fn fields(&self, i: usize) -> AttemptFields {
        let tty = if self.vary_tty {
            Some(format!("/dev/pts/{i}"))
        } else {
            self.tty.clone()
        };
        AttemptFields {
            service: self.service.clone().into_bytes(),
            user: self.user.clone().into_bytes(),
            rhost: self.rhost.clone().map(String::into_bytes),
            tty: tty.map(String::into_bytes),
            ruser: self.ruser.clone().map(String::into_bytes),
            locale: self.locale.clone().map(String::into_bytes),
        }
    }

    fn body(&self, i: usize) -> RequestBody {
        match self.op.as_str() {
            "begin" => RequestBody::Begin(self.fields(i)),
            "fail" => RequestBody::Fail {
                attempt: None,
                fields: self.fields(i),
                repeat: self.tag,
            },
            "succeed" => RequestBody::Succeed {
                attempt: None,
                fields: self.fields(i),
            },
            // Never answered: `passed` prints what the connection says next,
            // an end of file (taken or refused alike, as the module sees it).
            "passed" => RequestBody::Passed {
                attempt: None,
                fields: self.fields(i),
            },
            "account" => RequestBody::Account(self.fields(i)),
            "locks" => RequestBody::Admin(AdminRequest::ListLocks),
            "unlock-user" => RequestBody::Admin(AdminRequest::UnlockUser(self.user.clone())),
            "unlock-all" => RequestBody::Admin(AdminRequest::UnlockAll),
            // The admin call wardenctl makes when the bus is down.
            "call-unlock-all" => RequestBody::Admin(AdminRequest::Call {
                method: "Unlock".into(),
                args: r#"["all",""]"#.into(),
            }),
            other => {
                eprintln!("unknown request {other:?}");
                std::process::exit(2);
            }
        }
    }
}

fn call_on(s: &mut UnixStream, body: RequestBody) -> Result<ResponseBody, String> {
    let bytes = encode_request(body).map_err(|e| e.to_string())?;
    write_frame(s, &bytes).map_err(|e| e.to_string())?;
    s.flush().map_err(|e| e.to_string())?;
    let reply = read_frame(s).map_err(|e| e.to_string())?;
    decode_response(&reply).map_err(|(_, e)| e)
}

fn call(socket: &str, body: RequestBody) -> Result<ResponseBody, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    call_on(&mut s, body)
}

/// A short name for an answer, for tallies.
fn label(r: &Result<ResponseBody, String>) -> String {
    match r {
        Ok(ResponseBody::Verdict(v)) if v.allowed => "allowed".into(),
        Ok(ResponseBody::Verdict(v)) => format!("refused:{}", v.reason),
        Ok(ResponseBody::Recorded) => "recorded".into(),
        Ok(ResponseBody::Notice { .. }) => "notice".into(),
        Ok(ResponseBody::NeedCode { .. }) => "need-code".into(),
        Ok(ResponseBody::Refused { .. }) => "refused-after-password".into(),
        Ok(ResponseBody::Account { locked, .. }) => format!("account-locked:{locked}"),
        Ok(ResponseBody::Locks(_)) => "locks".into(),
        Ok(ResponseBody::Unlocked(_)) => "unlocked".into(),
        Ok(ResponseBody::Json(_)) => "json".into(),
        Ok(ResponseBody::Error { code, .. }) => format!("error:{code:?}"),
        Err(_) => "io-error".into(),
    }
}

/// One whole attempt with a guessed code: how it ended.
fn guess(o: &Opts, i: usize) -> String {
    let verdict = call(&o.socket, RequestBody::Begin(o.fields(i)));
    let attempt = match &verdict {
        Ok(ResponseBody::Verdict(v)) if v.allowed => v.attempt,
        other => return format!("begin-{}", label(other)),
    };
    let asked = call(
        &o.socket,
        RequestBody::Succeed {
            attempt,
            fields: o.fields(i),
        },
    );
    if !matches!(asked, Ok(ResponseBody::NeedCode { .. })) {
        return format!("succeed-{}", label(&asked));
    }
    let code = o
        .code
        .clone()
        .unwrap_or_else(|| format!("{:06}", (i * 7919 + 13) % 1_000_000));
    let answer = call(
        &o.socket,
        RequestBody::Code {
            attempt,
            fields: o.fields(i),
            code: code.into_bytes(),
        },
    );
    format!("code-{}", label(&answer))
}

/// Holds one connection, sending a begin every 1.5 s, until the daemon closes it.
fn drip(o: &Opts) {
    let start = Instant::now();
    let Ok(mut s) = UnixStream::connect(&o.socket) else {
        println!("error: cannot connect");
        std::process::exit(1);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(120) {
        if call_on(&mut s, RequestBody::Begin(o.fields(sent))).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(1500));
    }
    println!(
        "closed after {:.1}s and {sent} requests",
        start.elapsed().as_secs_f64()
    );
}

/// Connects and hangs up from 32 threads, as fast as it can, for `secs`.
fn connect_flood(socket: &str, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let socket = socket.to_string();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < end {
                    if UnixStream::connect(&socket).is_ok() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let n: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    println!("connections {n}");
}

/// Sends one `Passed` and shuts the connection's write side, so wardend
/// reads it and then the end; prints "sent" once wardend has closed.
fn passed(o: &Opts) {
    let sent = UnixStream::connect(&o.socket).and_then(|mut s| {
        let bytes = encode_request(o.body(0)).map_err(std::io::Error::other)?;
        write_frame(&mut s, &bytes).map_err(std::io::Error::other)?;
        s.shutdown(std::net::Shutdown::Write)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut rest)
    });
    match sent {
        Ok(0) => println!("sent"),
        Ok(n) => println!("answered with {n} bytes"),
        Err(e) => println!("error: {e}"),
    }
}

fn main() {
    let o = parse();
    if o.op == "drip" {
        return drip(&o);
    }
    if o.op == "connect-flood" {
        return connect_flood(&o.socket, o.repeat as u64);
    }
    if o.op == "guess-codes" || o.repeat > 1 {
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..o.repeat {
            let l = if o.op == "guess-codes" {
                guess(&o, i)
            } else {
                label(&call(&o.socket, o.body(i)))
            };
            *tally.entry(l).or_insert(0) += 1;
        }
        for (l, n) in tally {
            println!("{l} {n}");
        }
        return;
    }
    if o.op == "passed" {
        return passed(&o);
    }
    match call(&o.socket, o.body(0)) {
        Ok(r) => println!("{r:?}"),
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
    }
}
