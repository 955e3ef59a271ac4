//! pam_warden's arguments, as written in a PAM stack: parsed here so that the
//! module and `wardenctl doctor` read a line the same way.

use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_SOCKET: &str = "/run/warden/warden.sock";
/// Next to `socket` unless `root_socket=` says otherwise, as wardend places it.
pub const ROOT_SOCKET_NAME: &str = "warden-root.sock";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Preauth,
    Authfail,
    Authsucc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUnavailable {
    /// PAM_IGNORE: the rest of the stack decides, so an outage never locks admins out.
    Ignore,
    /// PAM_AUTHINFO_UNAVAIL.
    Deny,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub mode: Option<Mode>,
    pub socket: PathBuf,
    pub root_socket: PathBuf,
    pub timeout: Duration,
    pub on_unavailable: OnUnavailable,
    pub silent: bool,
    pub debug: bool,
    pub enforce_in_account: bool,
    /// Delay asked of libpam after a refusal, like pam_faillock's 2 s.
    pub fail_delay: Duration,
    /// Arguments not understood, to be logged and ignored.
    pub unknown: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: None,
            socket: PathBuf::from(DEFAULT_SOCKET),
            root_socket: root_socket_for(&PathBuf::from(DEFAULT_SOCKET)),
            timeout: Duration::from_millis(1000),
            on_unavailable: OnUnavailable::Ignore,
            silent: false,
            debug: false,
            enforce_in_account: false,
            fail_delay: Duration::from_secs(2),
            unknown: Vec::new(),
        }
    }
}

impl Options {
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Options {
        let mut o = Options::default();
        let mut root_given = false;
        for arg in args {
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg, None),
            };
            let ok = match (name, value) {
                ("preauth", None) => set(&mut o.mode, Some(Mode::Preauth)),
                ("authfail", None) => set(&mut o.mode, Some(Mode::Authfail)),
                ("authsucc", None) => set(&mut o.mode, Some(Mode::Authsucc)),
                ("silent", None) => set(&mut o.silent, true),
                ("debug", None) => set(&mut o.debug, true),
                ("enforce_in_account", None) => set(&mut o.enforce_in_account, true),
                ("nodelay", None) => set(&mut o.fail_delay, Duration::ZERO),
                ("socket", Some(p)) if p.starts_with('/') => set(&mut o.socket, PathBuf::from(p)),
                ("root_socket", Some(p)) if p.starts_with('/') => {
                    root_given = true;
                    set(&mut o.root_socket, PathBuf::from(p))
                }
                ("timeout_ms", Some(v)) => match v.parse::<u64>() {
                    // Bounded both ways: zero would fail every call, and a huge
                    // value would let a stuck daemon hang sshd.
                    Ok(ms) if (1..=30_000).contains(&ms) => {
                        set(&mut o.timeout, Duration::from_millis(ms))
                    }
                    _ => false,
                },
                ("on_unavailable", Some("ignore")) => {
                    set(&mut o.on_unavailable, OnUnavailable::Ignore)
                }
                ("on_unavailable", Some("deny")) => set(&mut o.on_unavailable, OnUnavailable::Deny),
                _ => false,
            };
            if !ok {
                o.unknown.push(arg.to_string());
            }
        }
        if !root_given {
            o.root_socket = root_socket_for(&o.socket);
        }
        o
    }
}

fn root_socket_for(socket: &std::path::Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or(std::path::Path::new("/"))
        .join(ROOT_SOCKET_NAME)
}

fn set<T>(slot: &mut T, value: T) -> bool {
    *slot = value;
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        let o = Options::parse([
            "preauth",
            "socket=/tmp/w.sock",
            "timeout_ms=250",
            "on_unavailable=deny",
            "silent",
            "debug",
        ]);
        assert_eq!(o.mode, Some(Mode::Preauth));
        assert_eq!(o.socket, PathBuf::from("/tmp/w.sock"));
        assert_eq!(o.root_socket, PathBuf::from("/tmp/warden-root.sock"));
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.on_unavailable, OnUnavailable::Deny);
        assert!(o.silent && o.debug && o.unknown.is_empty());
    }

    #[test]
    fn defaults_are_safe() {
        let o = Options::parse([]);
        assert_eq!(o.mode, None);
        assert_eq!(o.timeout, Duration::from_millis(1000));
        assert_eq!(o.on_unavailable, OnUnavailable::Ignore);
        assert!(!o.enforce_in_account);
    }

    #[test]
    fn unknown_and_bad_arguments_are_kept_for_the_log() {
        let o = Options::parse([
            "authfail",
            "deny=3",
            "timeout_ms=0",
            "timeout_ms=soon",
            "socket=relative",
            "on_unavailable=maybe",
        ]);
        assert_eq!(o.mode, Some(Mode::Authfail));
        assert_eq!(o.timeout, Duration::from_millis(1000));
        assert_eq!(
            o.unknown,
            [
                "deny=3",
                "timeout_ms=0",
                "timeout_ms=soon",
                "socket=relative",
                "on_unavailable=maybe"
            ]
        );
    }
}
