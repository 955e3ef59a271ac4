//! The libpam calls pam-bindings lacks.

use pam::module::PamHandle;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint};

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
    fn pam_fail_delay(pamh: *mut PamHandle, usec: c_uint) -> c_int;
    fn pam_getenv(pamh: *const PamHandle, name: *const c_char) -> *const c_char;
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

/// A variable of the PAM environment (not the process's): sshd puts
/// SSH_CONNECTION there before it authenticates.
pub fn getenv(pamh: &PamHandle, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    // SAFETY: pamh is the live handle libpam gave this call and name is
    // NUL-terminated; libpam returns NULL or a string it owns, valid until the
    // environment changes, which nothing does while we copy it.
    unsafe {
        let p = pam_getenv(pamh, name.as_ptr());
        if p.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(p).to_bytes().to_vec())
    }
}

pub fn fail_delay(pamh: &mut PamHandle, usec: u32) {
    // SAFETY: pamh is the live handle libpam gave this call.
    unsafe { pam_fail_delay(pamh, usec) };
}

/// One line on the host application's stderr, written with write(2) and never
/// through Rust's stdio, which the module must not touch. Only for a broken
/// configuration when syslog is not there to take it.
pub fn stderr_line(text: &str) {
    let mut line = text.replace(['\n', '\0'], " ");
    line.push('\n');
    // SAFETY: fd 2 is the process's own, and the buffer outlives the call.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
    }
}

/// The application's LC_MESSAGES, as Linux-PAM's own modules translate by
/// it; `None` for the C locale (sshd never sets one).
pub fn messages_locale() -> Option<Vec<u8>> {
    // SAFETY: a NULL locale only asks; glibc returns a string it owns,
    // valid until the next setlocale, copied at once.
    let name = unsafe { libc::setlocale(libc::LC_MESSAGES, std::ptr::null()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and NUL-terminated by glibc.
    let bytes = unsafe { std::ffi::CStr::from_ptr(name) }
        .to_bytes()
        .to_vec();
    (!matches!(bytes.as_slice(), b"C" | b"POSIX" | b"")).then_some(bytes)
}
