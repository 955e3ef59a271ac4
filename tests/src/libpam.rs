//! Real libpam, called in-process as sshd does: `pam_start_confdir` with a
//! private PAM directory, rhost and tty set, a conversation answering from a
//! list, then `pam_authenticate` (and `pam_acct_mgmt`).

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

const PAM_TTY: c_int = 3;
const PAM_RHOST: c_int = 4;
const PAM_RUSER: c_int = 8;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;

/// One login attempt's inputs.
pub struct Login<'a> {
    pub confdir: &'a str,
    pub service: &'a str,
    pub user: &'a str,
    pub rhost: Option<&'a str>,
    pub tty: Option<&'a str>,
    /// PAM_RUSER, as su and sudo set it to the invoking user.
    pub ruser: Option<&'a str>,
    /// Answers to echo-off prompts, in order.
    pub answers: &'a [String],
    pub account: bool,
}

/// What the stack did.
#[derive(Debug, Default)]
pub struct Result {
    pub auth: i32,
    pub auth_name: String,
    pub account: Option<(i32, String)>,
    pub prompts: Vec<String>,
    pub messages: Vec<String>,
}

struct Conversation<'a> {
    answers: &'a [String],
    next: usize,
    prompts: Vec<String>,
    messages: Vec<String>,
}

extern "C" fn converse(
    n: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    data: *mut c_void,
) -> c_int {
    // SAFETY: libpam hands n messages and expects n calloc'ed responses that it frees.
    unsafe {
        let c = &mut *(data as *mut Conversation<'_>);
        let out = libc::calloc(n as usize, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
        for i in 0..n as usize {
            let m = &**msgs.add(i);
            let text = CStr::from_ptr(m.msg).to_string_lossy().trim().to_string();
            match m.style {
                PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                    let answer = c.answers.get(c.next).cloned().unwrap_or_default();
                    c.next += 1;
                    let a = CString::new(answer).unwrap_or_default();
                    (*out.add(i)).resp = libc::strdup(a.as_ptr());
                    c.prompts.push(text);
                }
                _ => c.messages.push(text),
            }
        }
        *resp = out;
    }
    0
}

pub fn login(l: &Login<'_>) -> Result {
    let cs = |s: &str| CString::new(s).unwrap_or_default();
    let (confdir, service, user) = (cs(l.confdir), cs(l.service), cs(l.user));
    let mut conv_state = Conversation {
        answers: l.answers,
        next: 0,
        prompts: Vec::new(),
        messages: Vec::new(),
    };
    let conv = PamConv {
        conv: converse,
        data: &mut conv_state as *mut Conversation<'_> as *mut c_void,
    };
    let mut out = Result::default();
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: plain libpam calls with NUL-terminated strings that outlive them.
    unsafe {
        let rc = pam_start_confdir(
            service.as_ptr(),
            user.as_ptr(),
            &conv,
            confdir.as_ptr(),
            &mut pamh,
        );
        if rc != 0 {
            out.auth = rc;
            out.auth_name = format!("pam_start_confdir failed: {rc}");
            return out;
        }
        let rhost = l.rhost.map(cs);
        let tty = l.tty.map(cs);
        let ruser = l.ruser.map(cs);
        if let Some(r) = &rhost {
            pam_set_item(pamh, PAM_RHOST, r.as_ptr() as *const c_void);
        }
        if let Some(r) = &ruser {
            pam_set_item(pamh, PAM_RUSER, r.as_ptr() as *const c_void);
        }
        if let Some(t) = &tty {
            pam_set_item(pamh, PAM_TTY, t.as_ptr() as *const c_void);
        }
        let rc = pam_authenticate(pamh, 0);
        out.auth = rc;
        out.auth_name = CStr::from_ptr(pam_strerror(pamh, rc))
            .to_string_lossy()
            .into_owned();
        let mut last = rc;
        if l.account && rc == 0 {
            last = pam_acct_mgmt(pamh, 0);
            let name = CStr::from_ptr(pam_strerror(pamh, last))
                .to_string_lossy()
                .into_owned();
            out.account = Some((last, name));
        }
        pam_end(pamh, last);
    }
    out.prompts = conv_state.prompts;
    out.messages = conv_state.messages;
    out
}
