//! Drives real libpam the way sshd does: `pam_start_confdir` with a private
//! PAM directory, rhost and tty set, then authenticate (and account).
//!
//! Usage: pam-driver CONFDIR SERVICE USER [--rhost R] [--tty T] [--password P]...
//!        [--account] [--repeat N]
//! Each `--password` answers one echo-off prompt, in order. Prints every message
//! the stack shows as `msg: TEXT`, then `auth: CODE` (and `account: CODE`).

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

#[repr(C)]
struct PamMessage {
    style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    data: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

const PAM_RHOST: c_int = 4;
const PAM_TTY: c_int = 3;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;

struct Answers {
    passwords: Vec<String>,
    next: usize,
}

extern "C" fn conversation(
    n: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    data: *mut c_void,
) -> c_int {
    // SAFETY: libpam hands n messages and expects n calloc'ed responses.
    unsafe {
        let answers = &mut *(data as *mut Answers);
        let out = libc::calloc(n as usize, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
        for i in 0..n as usize {
            let m = &**msgs.add(i);
            let text = CStr::from_ptr(m.msg).to_string_lossy();
            match m.style {
                PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                    let answer = answers
                        .passwords
                        .get(answers.next)
                        .cloned()
                        .unwrap_or_default();
                    answers.next += 1;
                    let c = CString::new(answer).unwrap_or_default();
                    (*out.add(i)).resp = libc::strdup(c.as_ptr());
                    println!("prompt: {}", text.trim());
                }
                _ => println!("msg: {text}"),
            }
        }
        *resp = out;
    }
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: pam-driver CONFDIR SERVICE USER [--rhost R] [--tty T] [--password P]... [--account]");
        std::process::exit(2);
    }
    let (confdir, service, user) = (&args[0], &args[1], &args[2]);
    let mut rhost = None;
    let mut tty = None;
    let mut passwords = Vec::new();
    let mut account = false;
    let mut rest = args[3..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--rhost" => rhost = rest.next().cloned(),
            "--tty" => tty = rest.next().cloned(),
            "--password" => passwords.extend(rest.next().cloned()),
            "--account" => account = true,
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let mut answers = Answers { passwords, next: 0 };
    let conv = PamConv {
        conv: conversation,
        data: &mut answers as *mut Answers as *mut c_void,
    };
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let (confdir, service, user) = (c(confdir), c(service), c(user));
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: plain libpam calls with valid, NUL-terminated strings.
    unsafe {
        let rc = pam_start_confdir(
            service.as_ptr(),
            user.as_ptr(),
            &conv,
            confdir.as_ptr(),
            &mut pamh,
        );
        if rc != 0 {
            println!("start: {rc}");
            std::process::exit(3);
        }
        if let Some(r) = rhost {
            let r = c(&r);
            pam_set_item(pamh, PAM_RHOST, r.as_ptr() as *const c_void);
        }
        if let Some(t) = tty {
            let t = c(&t);
            pam_set_item(pamh, PAM_TTY, t.as_ptr() as *const c_void);
        }
        let rc = pam_authenticate(pamh, 0);
        let name = CStr::from_ptr(pam_strerror(pamh, rc))
            .to_string_lossy()
            .into_owned();
        println!("auth: {rc} {name}");
        let mut last = rc;
        if account && rc == 0 {
            last = pam_acct_mgmt(pamh, 0);
            let name = CStr::from_ptr(pam_strerror(pamh, last))
                .to_string_lossy()
                .into_owned();
            println!("account: {last} {name}");
        }
        pam_end(pamh, last);
    }
}
