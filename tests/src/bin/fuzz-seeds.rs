//! Writes the fuzzers' seed corpora: real frames and request sequences, as the
//! module sends them. Usage: fuzz-seeds DIR (DIR/frame, DIR/request).

use warden_proto::{encode_request, write_frame, AdminRequest, AttemptFields, RequestBody};

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let f = |user: &str, rhost: Option<&str>| AttemptFields {
        service: b"sshd".to_vec(),
        user: user.as_bytes().to_vec(),
        rhost: rhost.map(|r| r.as_bytes().to_vec()),
        tty: Some(b"ssh".to_vec()),
        ruser: None,
        locale: None,
    };
    let bodies = vec![
        RequestBody::Begin(f("alice", Some("203.0.113.7"))),
        RequestBody::Fail {
            attempt: Some(1 << 32 | 1),
            fields: f("alice", Some("2001:db8::1")),
            repeat: Some([0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e]),
        },
        RequestBody::Succeed {
            attempt: None,
            fields: f("root", None),
        },
        RequestBody::Code {
            attempt: Some(7),
            fields: f("bob", Some("host.example")),
            code: b"123456".to_vec(),
        },
        RequestBody::Account(f("carol", None)),
        RequestBody::Admin(AdminRequest::UnlockUser("alice".into())),
    ];
    std::fs::create_dir_all(dir.join("frame")).unwrap();
    std::fs::create_dir_all(dir.join("request")).unwrap();
    let mut sequence = Vec::new();
    let mut guesses = Vec::new();
    for (i, b) in bodies.into_iter().enumerate() {
        let bytes = encode_request(b).unwrap();
        let mut frame = Vec::new();
        write_frame(&mut frame, &bytes).unwrap();
        std::fs::write(dir.join(format!("frame/seed-{i}")), &frame).unwrap();
        // request: [len, seconds to advance, origin (0 root, 1-2 a peer), body]...
        let record = |origin: u8, out: &mut Vec<u8>| {
            out.push(bytes.len().min(255) as u8);
            out.push(30);
            out.push(origin);
            out.extend_from_slice(&bytes[..bytes.len().min(255)]);
        };
        record(0, &mut sequence);
        // The reset attack: root guesses and failures, a peer's successes between.
        for origin in [0, 0, 1, 0, 1] {
            record(origin, &mut guesses);
        }
    }
    std::fs::write(dir.join("request/seed-sequence"), &sequence).unwrap();
    std::fs::write(dir.join("request/seed-peers"), &guesses).unwrap();
}
