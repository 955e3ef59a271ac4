//! The wire protocol between pam_warden and wardend.
//!
//! A frame is a u32 big-endian length followed by that many bytes of body, at
//! most [`MAX_FRAME`]. Bodies are postcard-encoded [`Request`]s and
//! [`Response`]s, each opening with the protocol version. Blocking I/O only: the
//! PAM module uses this crate inside sshd and sudo, where no async runtime runs.
// The workspace [lints] table denies these too; said here as well, where a
// reader of the crate looks first: a panic in the module aborts the login.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod args;
mod frame;
pub mod message;
pub mod repeat;
mod wire;

pub use frame::{
    body_len, body_len_up_to, encode_frame, encode_frame_up_to, header_error, read_frame,
    read_frame_up_to, write_frame, FrameError, HEADER, MAX_ADMIN_FRAME, MAX_FRAME,
};
pub use message::locked_message;
pub use wire::{
    decode_request, decode_response, encode_request, encode_response, AdminRequest, Attempt,
    AttemptFields, ErrorCode, FieldError, LockInfo, Request, RequestBody, Response, ResponseBody,
    Verdict, MAX_CODE, MAX_RHOST, MAX_RUSER, MAX_SERVICE, MAX_TTY, MAX_USER, VERSION,
};
