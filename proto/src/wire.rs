//! Requests, responses and their validation.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const VERSION: u16 = 4;
pub const MAX_USER: usize = 256;
pub const MAX_RHOST: usize = 255;
pub const MAX_TTY: usize = 64;
/// PAM_RUSER: the user asking, as su and sudo set it.
pub const MAX_RUSER: usize = 256;
pub const MAX_SERVICE: usize = 64;
/// A TOTP code is 6 digits and a recovery code 12 letters; room for spacing.
pub const MAX_CODE: usize = 64;

/// The attempt as it crosses the wire: raw bytes, so that the daemon, not the
/// decoder, says exactly what is wrong with a field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFields {
    pub service: Vec<u8>,
    pub user: Vec<u8>,
    pub rhost: Option<Vec<u8>>,
    pub tty: Option<Vec<u8>>,
    /// PAM_RUSER: who is asking. su and sudo set it to the invoking user, so
    /// that one local user's guesses at another's password are told apart
    /// from the owner's own local logins.
    pub ruser: Option<Vec<u8>>,
    /// The PAM application's LC_MESSAGES (`de_DE.UTF-8`), so that wardend
    /// speaks the user's language as Linux-PAM's own modules do; `None` or
    /// `C` for English.
    pub locale: Option<Vec<u8>>,
}

/// A validated attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub service: String,
    pub user: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub ruser: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FieldError {
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0} is {1} bytes, over the limit of {2}")]
    TooLong(&'static str, usize, usize),
    #[error("{0} contains a NUL byte")]
    Nul(&'static str),
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
}

fn field(name: &'static str, bytes: &[u8], max: usize) -> Result<String, FieldError> {
    if bytes.len() > max {
        return Err(FieldError::TooLong(name, bytes.len(), max));
    }
    if bytes.contains(&0) {
        return Err(FieldError::Nul(name));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| FieldError::Utf8(name))
}

impl AttemptFields {
    pub fn validate(&self) -> Result<Attempt, FieldError> {
        let service = field("service", &self.service, MAX_SERVICE)?;
        let user = field("user", &self.user, MAX_USER)?;
        if service.is_empty() {
            return Err(FieldError::Empty("service"));
        }
        if user.is_empty() {
            return Err(FieldError::Empty("user"));
        }
        let opt = |name, v: &Option<Vec<u8>>, max| -> Result<Option<String>, FieldError> {
            match v {
                None => Ok(None),
                Some(b) if b.is_empty() => Ok(None),
                Some(b) => field(name, b, max).map(Some),
            }
        };
        Ok(Attempt {
            service,
            user,
            rhost: opt("rhost", &self.rhost, MAX_RHOST)?,
            tty: opt("tty", &self.tty, MAX_TTY)?,
            ruser: opt("ruser", &self.ruser, MAX_RUSER)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u16,
    pub body: RequestBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// preauth: may this attempt go ahead? Reserves its place if so.
    Begin(AttemptFields),
    /// authfail: the password was wrong. `repeat` is its tag under the
    /// verdict's `repeat_key` (see `repeat`), when preauth gave one.
    Fail {
        attempt: Option<u64>,
        fields: AttemptFields,
        repeat: Option<crate::repeat::Tag>,
    },
    /// authsucc: the password was right.
    Succeed {
        attempt: Option<u64>,
        fields: AttemptFields,
    },
    /// authsucc after a verdict with `quiet_success`: the password was right,
    /// recorded like `Succeed` but never answered, so the login does not wait
    /// for a round trip whose answer was known at preauth.
    Passed {
        attempt: Option<u64>,
        fields: AttemptFields,
    },
    /// The code typed at the "Verification code: " prompt, after `NeedCode`.
    Code {
        attempt: Option<u64>,
        fields: AttemptFields,
        code: Vec<u8>,
    },
    /// The conversation ended with no password given (Ctrl-C, end of input):
    /// not a guess. The attempt's place is freed and nothing is counted.
    Release {
        attempt: Option<u64>,
        fields: AttemptFields,
    },
    /// The application answered the code prompt with the password itself, as
    /// sshd's password method answers every prompt: it cannot ask for a code.
    /// Refused, and not counted as a wrong code.
    NoCode {
        attempt: Option<u64>,
        fields: AttemptFields,
    },
    /// account with enforce_in_account: is the user's own key locked?
    Account(AttemptFields),
    /// Root peers only.
    Admin(AdminRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    ListLocks,
    UnlockUser(String),
    UnlockRhost(String),
    UnlockAll,
    /// A D-Bus admin method by name (`Status`, `ListLocks`, `Explain`, ...),
    /// its arguments a JSON array as D-Bus takes them; answered with
    /// `ResponseBody::Json`. For wardenctl when the bus is down.
    Call {
        method: String,
        args: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub version: u16,
    pub body: ResponseBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub allowed: bool,
    pub attempt: Option<u64>,
    /// `clear`, `allowlisted`, `locked`, `denied` or `busy`.
    pub reason: String,
    pub rule: Option<String>,
    pub failures: u32,
    /// Seconds until the lock ends; `None` when permanent or not locked.
    pub seconds_left: Option<u64>,
    /// What to tell the user when refused.
    pub message: Option<String>,
    /// When the user would be asked for a code after a right password: the
    /// prompt, which the module shows after a wrong password too, so that
    /// the conversation never tells which it was.
    pub code_prompt: Option<String>,
    /// Shown after that prompt whatever the answers, when the login cannot
    /// succeed anyway (a code is required and none is set up).
    pub code_refusal: Option<String>,
    /// A right password can lead to nothing but success (no code, no notice):
    /// authsucc may report it with `Passed` and not wait for an answer.
    pub quiet_success: bool,
    /// The key to tag a wrong password with at authfail, so that a repeat of
    /// one of the user's last wrong passwords counts once; given to root
    /// peers only, and only while `same_password_once` is on.
    pub repeat_key: Option<crate::repeat::RepeatKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub rule: String,
    /// `user=alice rhost=203.0.113.7`.
    pub key: String,
    pub failures: u32,
    pub since: u64,
    /// Unix seconds; `None` is permanent.
    pub until: Option<u64>,
    pub lockouts: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The body did not decode.
    Malformed,
    TooLarge,
    /// The peer speaks another protocol version.
    Version,
    /// A field is too long, has a NUL byte, or is not UTF-8.
    BadField,
    /// The peer may not act for this user, or is not root.
    Forbidden,
    /// The store could not make the record durable.
    Store,
    /// The daemon is at its connection limit.
    Busy,
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseBody {
    Verdict(Verdict),
    Recorded,
    /// Recorded; show the user this line.
    Notice {
        message: String,
    },
    /// authsucc: prompt for a second-factor code (echo off) and send `Code`.
    NeedCode {
        prompt: String,
    },
    /// The password was right but the login may not go on (wrong code, or a
    /// required code that is not set up); show the user this line unless it
    /// is empty (a wrong code says nothing a wrong password would not).
    Refused {
        message: String,
    },
    Account {
        locked: bool,
        message: Option<String>,
    },
    Locks(Vec<LockInfo>),
    Unlocked(u32),
    /// The answer to `AdminRequest::Call`, as D-Bus would give it, in JSON.
    Json(String),
    Error {
        code: ErrorCode,
        message: String,
    },
}

pub fn encode_request(body: RequestBody) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(&Request {
        version: VERSION,
        body,
    })
}

pub fn encode_response(body: ResponseBody) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(&Response {
        version: VERSION,
        body,
    })
}

/// Decodes a request; see [`decode`].
pub fn decode_request(bytes: &[u8]) -> Result<RequestBody, (ErrorCode, String)> {
    decode::<Request>(bytes, "request").map(|r| r.body)
}

pub fn decode_response(bytes: &[u8]) -> Result<ResponseBody, (ErrorCode, String)> {
    decode::<Response>(bytes, "response").map(|r| r.body)
}

/// Checks the version before the body, so that a peer of another version gets
/// a version error rather than a decoding one.
fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, (ErrorCode, String)> {
    let (version, _) = postcard::take_from_bytes::<u16>(bytes)
        .map_err(|e| (ErrorCode::Malformed, format!("no version: {e}")))?;
    if version != VERSION {
        return Err((
            ErrorCode::Version,
            format!("protocol version {version} is not {VERSION}: pam_warden and wardend must come from the same release"),
        ));
    }
    postcard::from_bytes(bytes)
        .map_err(|e| (ErrorCode::Malformed, format!("malformed {what}: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fields(user: &[u8]) -> AttemptFields {
        AttemptFields {
            service: b"sshd".to_vec(),
            user: user.to_vec(),
            rhost: Some(b"203.0.113.7".to_vec()),
            tty: None,
            ruser: None,
            locale: None,
        }
    }

    #[test]
    fn requests_round_trip() {
        let body = RequestBody::Fail {
            attempt: Some(42),
            fields: fields(b"alice"),
            repeat: Some([1, 2, 3, 4, 5, 6, 7, 8]),
        };
        let bytes = encode_request(body.clone()).unwrap();
        assert_eq!(decode_request(&bytes).unwrap(), body);
    }

    #[test]
    fn other_versions_are_named() {
        let bytes = postcard::to_allocvec(&Request {
            version: 9,
            body: RequestBody::Admin(AdminRequest::ListLocks),
        })
        .unwrap();
        let (code, msg) = decode_request(&bytes).unwrap_err();
        assert_eq!(code, ErrorCode::Version);
        assert!(msg.contains("version 9"));
    }

    #[test]
    fn garbage_is_malformed() {
        let (code, _) = decode_request(&[VERSION as u8, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(code, ErrorCode::Malformed);
        assert_eq!(decode_request(&[]).unwrap_err().0, ErrorCode::Malformed);
    }

    #[test]
    fn fields_are_checked() {
        assert_eq!(fields(b"alice").validate().unwrap().user, "alice");
        assert_eq!(
            fields(&[b'a'; 257]).validate(),
            Err(FieldError::TooLong("user", 257, 256))
        );
        assert!(fields(&[b'a'; 256]).validate().is_ok());
        assert_eq!(fields(b"al\0ice").validate(), Err(FieldError::Nul("user")));
        assert_eq!(
            fields(b"al\xffice").validate(),
            Err(FieldError::Utf8("user"))
        );
        assert_eq!(fields(b"").validate(), Err(FieldError::Empty("user")));
        let mut f = fields(b"alice");
        f.rhost = Some(vec![b'h'; 256]);
        assert_eq!(f.validate(), Err(FieldError::TooLong("rhost", 256, 255)));
        f.rhost = Some(Vec::new());
        assert_eq!(f.validate().unwrap().rhost, None);
        f.ruser = Some(b"b\0b".to_vec());
        assert_eq!(f.validate(), Err(FieldError::Nul("ruser")));
    }
}
