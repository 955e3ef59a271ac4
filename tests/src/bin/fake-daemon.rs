//! An impostor wardend: listens on a socket, answers every request with
//! "Verification code: " so that a careless module would prompt and send what
//! is typed, and writes every byte it receives to a file. Run as an ordinary
//! user, it stands for a daemon planted in a user-writable directory.
//!
//! Usage: fake-daemon SOCKET CAPTURE

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(socket), Some(capture)) = (args.first(), args.get(1)) else {
        eprintln!("usage: fake-daemon SOCKET CAPTURE");
        std::process::exit(2);
    };
    let _ = std::fs::remove_file(socket);
    let listener = match UnixListener::bind(socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {socket}: {e}");
            std::process::exit(1);
        }
    };
    let _ = std::fs::write(capture, b"");
    let ask = warden_proto::encode_response(warden_proto::ResponseBody::NeedCode {
        prompt: "Verification code: ".into(),
    })
    .unwrap_or_default();
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(capture) {
            let _ = f.write_all(&buf[..n]);
        }
        let _ = warden_proto::write_frame(&mut stream, &ask);
    }
}
