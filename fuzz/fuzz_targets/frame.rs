//! The socket's first line of defence: a frame, then a request, then its fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_proto::{decode_request, read_frame, RequestBody};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = read_frame(&mut &data[..]) else {
        return;
    };
    match decode_request(&body) {
        Ok(RequestBody::Begin(f)) | Ok(RequestBody::Account(f)) => {
            let _ = f.validate();
        }
        Ok(RequestBody::Fail { fields, .. })
        | Ok(RequestBody::Succeed { fields, .. })
        | Ok(RequestBody::Code { fields, .. }) => {
            let _ = fields.validate();
        }
        _ => {}
    }
});
