//! What the module needs from its host application, as a trait, so that the
//! flow can be tested without libpam; and its implementation over libpam.

use crate::ffi;
use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost, RUser, Service, Tty, User};
use pam::module::PamHandle;
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Alert,
    Warning,
    Notice,
    Debug,
}

pub trait Host {
    /// The user being authenticated; may prompt for it (login does).
    fn user(&mut self) -> Option<Vec<u8>>;
    fn service(&self) -> Option<Vec<u8>>;
    fn rhost(&self) -> Option<Vec<u8>>;
    fn tty(&self) -> Option<Vec<u8>>;
    /// PAM_RUSER: who is asking (su and sudo set the invoking user).
    fn ruser(&self) -> Option<Vec<u8>>;
    /// The client's address from SSH_CONNECTION in the PAM environment, which
    /// sshd sets even when PAM_RHOST holds a name (UseDNS yes).
    fn ssh_client_ip(&self) -> Option<Vec<u8>>;
    /// The application's LC_MESSAGES, unless it is the C locale.
    fn locale(&self) -> Option<Vec<u8>>;
    /// Shows the user a line, as an error or as information.
    fn tell(&mut self, error: bool, text: &str);
    /// Asks with echo off (a second-factor code); `None` if the application
    /// cannot ask or the user gave nothing.
    fn prompt(&mut self, text: &str) -> Option<Answer>;
    fn log(&self, level: Level, text: &str);
    /// A broken configuration (a bad module argument): logged through
    /// pam_syslog, and on stderr too when no syslog socket answers, so that
    /// an admin testing the stack sees why every login fails.
    fn config_error(&self, text: &str);
    /// What preauth learned on this handle, if it ran.
    fn begun(&self) -> Option<Begun>;
    fn set_begun(&mut self, begun: Option<Begun>);
    /// Whether a password was given in this attempt (PAM_AUTHTOK is set and
    /// not empty): a conversation cut short, or an empty answer at the end of
    /// input, is no guess.
    fn password_given(&self) -> bool;
    /// The given password's tag under `key`, if a password was given.
    fn password_tag(
        &self,
        key: &warden_proto::repeat::RepeatKey,
    ) -> Option<warden_proto::repeat::Tag>;
    /// Whether `answer` is the password itself.
    fn is_password(&self, answer: &[u8]) -> bool;
    fn fail_delay(&mut self, micros: u32);
}

/// What was typed at a prompt; cleared from memory when dropped.
pub struct Answer(Vec<u8>);

impl Answer {
    pub fn new(bytes: Vec<u8>) -> Answer {
        Answer(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: b is a valid, aligned u8 of this vector; a volatile
            // write keeps the clearing from being optimised away.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// What preauth stores on the handle for authfail and authsucc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Begun {
    pub attempt: Option<u64>,
    /// The code prompt a right password would lead to.
    pub code_prompt: Option<String>,
    /// What is said after that prompt when the login cannot succeed anyway.
    pub code_refusal: Option<String>,
    /// A right password leads to nothing but success: authsucc reports it
    /// without waiting for an answer.
    pub quiet_success: bool,
    /// wardend's key for tagging a wrong password (`same_password_once`).
    pub repeat_key: Option<warden_proto::repeat::RepeatKey>,
}

/// The PAM data key linking an attempt's phases on one handle.
const ATTEMPT_KEY: &str = "pam_warden_attempt";
/// The PAM data key of the connection the handle's calls share.
const CONNECTION_KEY: &str = "pam_warden_connection";

/// A connection kept on the handle, with the process that opened it: after a
/// fork (sshd authenticates in a child) both processes hold the socket, and
/// only its opener may use it, or their requests and answers would cross.
/// libpam drops it, closing the socket, at pam_end.
struct Kept {
    pid: u32,
    stream: std::cell::Cell<Option<UnixStream>>,
}

/// The connection an earlier phase on this handle left, if this process
/// opened it.
pub fn take_connection(pamh: &PamHandle) -> Option<UnixStream> {
    // SAFETY: only this module writes CONNECTION_KEY, always as a Kept.
    let kept = unsafe { pamh.get_data::<Kept>(CONNECTION_KEY) }.ok()?;
    (kept.pid == std::process::id())
        .then(|| kept.stream.take())
        .flatten()
}

/// Leaves the connection on the handle for the next phase; without one, the
/// handle keeps none (a connection that failed is never kept).
pub fn keep_connection(pamh: &mut PamHandle, stream: Option<UnixStream>) {
    let _ = pamh.set_data(
        CONNECTION_KEY,
        Box::new(Kept {
            pid: std::process::id(),
            stream: std::cell::Cell::new(stream),
        }),
    );
}

pub struct LibPam<'a>(pub &'a mut PamHandle);

impl Host for LibPam<'_> {
    fn user(&mut self) -> Option<Vec<u8>> {
        if let Ok(Some(u)) = self.0.get_item::<User>() {
            return Some(u.0.to_bytes().to_vec());
        }
        self.0.get_user(None).ok().map(String::into_bytes)
    }

    fn service(&self) -> Option<Vec<u8>> {
        self.0
            .get_item::<Service>()
            .ok()
            .flatten()
            .map(|s| s.0.to_bytes().to_vec())
    }

    fn rhost(&self) -> Option<Vec<u8>> {
        self.0
            .get_item::<RHost>()
            .ok()
            .flatten()
            .map(|s| s.0.to_bytes().to_vec())
    }

    fn tty(&self) -> Option<Vec<u8>> {
        self.0
            .get_item::<Tty>()
            .ok()
            .flatten()
            .map(|s| s.0.to_bytes().to_vec())
    }

    fn ruser(&self) -> Option<Vec<u8>> {
        self.0
            .get_item::<RUser>()
            .ok()
            .flatten()
            .map(|s| s.0.to_bytes().to_vec())
    }

    fn locale(&self) -> Option<Vec<u8>> {
        ffi::messages_locale()
    }

    fn ssh_client_ip(&self) -> Option<Vec<u8>> {
        let conn = ffi::getenv(self.0, c"SSH_CONNECTION")?;
        conn.split(|b| *b == b' ')
            .next()
            .filter(|ip| !ip.is_empty())
            .map(<[u8]>::to_vec)
    }

    fn tell(&mut self, error: bool, text: &str) {
        if let Ok(Some(conv)) = self.0.get_item::<Conv>() {
            let style = if error { PAM_ERROR_MSG } else { PAM_TEXT_INFO };
            let _ = conv.send(style, text);
        }
    }

    fn prompt(&mut self, text: &str) -> Option<Answer> {
        let conv = self.0.get_item::<Conv>().ok().flatten()?;
        let secret = conv.send(PAM_PROMPT_ECHO_OFF, text).ok().flatten()?;
        Some(Answer::new(secret.as_bytes().to_vec()))
    }

    fn log(&self, level: Level, text: &str) {
        let priority: c_int = match level {
            Level::Alert => libc::LOG_ALERT,
            Level::Warning => libc::LOG_WARNING,
            Level::Notice => libc::LOG_NOTICE,
            Level::Debug => libc::LOG_DEBUG,
        };
        ffi::syslog(self.0, priority, text);
    }

    fn config_error(&self, text: &str) {
        ffi::syslog(self.0, libc::LOG_ALERT, text);
        if !syslog_reachable() {
            ffi::stderr_line(&format!("pam_warden: {text}"));
        }
    }

    fn begun(&self) -> Option<Begun> {
        // SAFETY: only this module writes ATTEMPT_KEY, always as Option<Begun>.
        unsafe { self.0.get_data::<Option<Begun>>(ATTEMPT_KEY) }
            .ok()
            .and_then(Clone::clone)
    }

    fn set_begun(&mut self, begun: Option<Begun>) {
        let _ = self.0.set_data(ATTEMPT_KEY, Box::new(begun));
    }

    fn password_tag(
        &self,
        key: &warden_proto::repeat::RepeatKey,
    ) -> Option<warden_proto::repeat::Tag> {
        let token = self.0.get_item::<AuthTok>().ok().flatten()?;
        let password = token.as_bytes();
        (!password.is_empty()).then(|| warden_proto::repeat::tag(key, password))
    }

    fn password_given(&self) -> bool {
        self.0
            .get_item::<AuthTok>()
            .ok()
            .flatten()
            .is_some_and(|t| !t.as_bytes().is_empty())
    }

    fn is_password(&self, answer: &[u8]) -> bool {
        let Ok(Some(t)) = self.0.get_item::<AuthTok>() else {
            return false;
        };
        let password = t.as_bytes();
        // Constant time over the answer's length: a secret on both sides.
        let mut diff = u8::from(password.len() != answer.len());
        for (i, b) in answer.iter().enumerate() {
            diff |= b ^ password.get(i).copied().unwrap_or(0);
        }
        diff == 0 && !answer.is_empty()
    }

    fn fail_delay(&mut self, micros: u32) {
        ffi::fail_delay(self.0, micros);
    }
}

/// Whether syslog's socket answers; where it does not (a container, a test),
/// libpam's pam_syslog drops the line.
fn syslog_reachable() -> bool {
    std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.connect("/dev/log"))
        .is_ok()
}
