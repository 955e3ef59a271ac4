//! Sends one request to wardend's socket and prints the answer, for tests that
//! act as a particular (often unprivileged) peer.
//!
//! Usage: raw-client SOCKET begin|fail|succeed USER [RHOST]
//!        raw-client SOCKET locks | unlock-user USER | unlock-all

use std::io::Write;
use std::os::unix::net::UnixStream;
use warden_proto::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |i: usize| args.get(i).cloned().unwrap_or_default();
    let fields = || AttemptFields {
        service: b"raw-client".to_vec(),
        user: get(2).into_bytes(),
        rhost: args.get(3).map(|r| r.clone().into_bytes()),
        tty: None,
        ruser: None,
    };
    let body = match get(1).as_str() {
        "begin" => RequestBody::Begin(fields()),
        "fail" => RequestBody::Fail {
            attempt: None,
            fields: fields(),
        },
        "succeed" => RequestBody::Succeed {
            attempt: None,
            fields: fields(),
        },
        "locks" => RequestBody::Admin(AdminRequest::ListLocks),
        "unlock-user" => RequestBody::Admin(AdminRequest::UnlockUser(get(2))),
        "unlock-all" => RequestBody::Admin(AdminRequest::UnlockAll),
        other => {
            eprintln!("unknown request {other:?}");
            std::process::exit(2);
        }
    };
    let result = (|| -> Result<ResponseBody, String> {
        let mut s = UnixStream::connect(get(0)).map_err(|e| e.to_string())?;
        let bytes = encode_request(body).map_err(|e| e.to_string())?;
        write_frame(&mut s, &bytes).map_err(|e| e.to_string())?;
        s.flush().map_err(|e| e.to_string())?;
        let reply = read_frame(&mut s).map_err(|e| e.to_string())?;
        decode_response(&reply).map_err(|(_, e)| e)
    })();
    match result {
        Ok(r) => println!("{r:?}"),
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
    }
}
