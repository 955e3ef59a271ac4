//! pam_warden: asks wardend whether a login attempt may go ahead, and tells it
//! how the attempt ended. A thin shell over [`flow`]; see the README for the stack.
// The workspace [lints] table denies these too; said here as well, where a
// reader of the crate looks first: a panic in the module aborts the login.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub use warden_proto::args;
pub mod client;
mod ffi;
pub mod flow;
pub mod host;

use args::Options;
use client::SocketClient;
use host::LibPam;
use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};
use std::cell::RefCell;
use std::ffi::CStr;

struct PamWarden;
pam::pam_hooks!(PamWarden);

/// Parses the arguments and runs one phase of the flow against the socket,
/// over the connection an earlier phase on this handle left open.
fn run(
    pamh: &mut PamHandle,
    args: &[&CStr],
    phase: fn(&mut LibPam<'_>, &Options, &SocketClient<'_>) -> PamResultCode,
) -> PamResultCode {
    let opts = Options::parse(args.iter().filter_map(|a| a.to_str().ok()));
    let daemon = SocketClient {
        path: &opts.socket,
        root_path: &opts.root_socket,
        timeout: opts.timeout,
        kept: RefCell::new(host::take_connection(pamh)),
    };
    let code = phase(&mut LibPam(pamh), &opts, &daemon);
    host::keep_connection(pamh, daemon.kept.into_inner());
    code
}

impl PamHooks for PamWarden {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        run(pamh, &args, |h, o, d| flow::authenticate(h, o, d))
    }

    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        run(pamh, &args, |h, o, d| flow::account(h, o, d))
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// Proves that the module's own unwinder works in the process that loads it:
/// the module links gcc's static unwinder instead of libgcc_s (see build.rs),
/// and its entry points rely on unwinding to catch a panic before it reaches
/// libpam. Unwinds through a frame and catches it, without the panic hook
/// (which would write to stderr); 1 when caught. For tests; libpam never
/// calls it.
#[no_mangle]
pub extern "C" fn pam_warden_unwind_selftest() -> std::os::raw::c_int {
    let caught = std::panic::catch_unwind(|| std::panic::resume_unwind(Box::new(7u8)));
    match caught {
        Err(payload) if payload.downcast_ref::<u8>() == Some(&7) => 1,
        _ => 0,
    }
}
