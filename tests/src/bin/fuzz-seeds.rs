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
    };
    let bodies = vec![
        RequestBody::Begin(f("alice", Some("203.0.113.7"))),
        RequestBody::Fail {
            attempt: Some(1 << 32 | 1),
            fields: f("alice", Some("2001:db8::1")),
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
    for (i, b) in bodies.into_iter().enumerate() {
        let bytes = encode_request(b).unwrap();
        let mut frame = Vec::new();
        write_frame(&mut frame, &bytes).unwrap();
        std::fs::write(dir.join(format!("frame/seed-{i}")), &frame).unwrap();
        // request: [len, seconds to advance, body]...
        sequence.push(bytes.len().min(255) as u8);
        sequence.push(30);
        sequence.extend_from_slice(&bytes[..bytes.len().min(255)]);
    }
    std::fs::write(dir.join("request/seed-sequence"), &sequence).unwrap();
}
