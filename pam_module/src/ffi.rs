//! The libpam calls pam-bindings lacks.

use pam::module::PamHandle;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint};

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
    fn pam_fail_delay(pamh: *mut PamHandle, usec: c_uint) -> c_int;
}

/// Logs through libpam, which prefixes the service and module name and uses
/// the authpriv facility. The text goes through "%s", never as a format.
pub fn syslog(pamh: &PamHandle, priority: c_int, text: &str) {
    let Ok(text) = CString::new(text.replace('\0', "\\0")) else {
        return;
    };
    // SAFETY: pamh is the live handle libpam gave this call; both strings are
    // NUL-terminated and outlive the call.
    unsafe { pam_syslog(pamh, priority, c"%s".as_ptr(), text.as_ptr()) };
}

pub fn fail_delay(pamh: &mut PamHandle, usec: u32) {
    // SAFETY: pamh is the live handle libpam gave this call.
    unsafe { pam_fail_delay(pamh, usec) };
}
