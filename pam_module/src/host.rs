//! What the module needs from its host application, as a trait, so that the
//! flow can be tested without libpam; and its implementation over libpam.

use crate::ffi;
use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::{RHost, RUser, Service, Tty, User};
use pam::module::PamHandle;
use std::os::raw::c_int;

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
    /// Shows the user a line, as an error or as information.
    fn tell(&mut self, error: bool, text: &str);
    /// Asks with echo off (a second-factor code); `None` if the application
    /// cannot ask or the user gave nothing.
    fn prompt(&mut self, text: &str) -> Option<pam::secret::SecretBytes>;
    fn log(&self, level: Level, text: &str);
    /// The attempt begun by preauth on this handle, if any.
    fn attempt(&self) -> Option<u64>;
    fn set_attempt(&mut self, id: Option<u64>);
    fn fail_delay(&mut self, micros: u32);
}

/// The PAM data key linking an attempt's phases on one handle.
const ATTEMPT_KEY: &str = "pam_warden_attempt";

/// Stored on the handle by preauth and read back by authfail and authsucc.
struct AttemptData(Option<u64>);

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

    fn prompt(&mut self, text: &str) -> Option<pam::secret::SecretBytes> {
        let conv = self.0.get_item::<Conv>().ok().flatten()?;
        conv.send(PAM_PROMPT_ECHO_OFF, text).ok().flatten()
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

    fn attempt(&self) -> Option<u64> {
        // SAFETY: only this module writes ATTEMPT_KEY, always as AttemptData.
        unsafe { self.0.get_data::<AttemptData>(ATTEMPT_KEY) }
            .ok()
            .and_then(|d| d.0)
    }

    fn set_attempt(&mut self, id: Option<u64>) {
        let _ = self.0.set_data(ATTEMPT_KEY, Box::new(AttemptData(id)));
    }

    fn fail_delay(&mut self, micros: u32) {
        ffi::fail_delay(self.0, micros);
    }
}
