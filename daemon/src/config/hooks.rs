//! `[[hook]]`: commands wardend runs when a lock is made or lifted, to tell
//! someone (the account's owner by mail, a chat channel, a ticket).

use super::types::{Dur, Problem};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// The longest a hook may run before it is killed.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookEvent {
    Locked,
    Unlocked,
}

impl HookEvent {
    pub fn name(self) -> &'static str {
        match self {
            HookEvent::Locked => "locked",
            HookEvent::Unlocked => "unlocked",
        }
    }

    fn parse(s: &str) -> Option<HookEvent> {
        [HookEvent::Locked, HookEvent::Unlocked]
            .into_iter()
            .find(|e| e.name() == s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hook {
    pub on: Vec<HookEvent>,
    /// The program (an absolute path) and its arguments; no shell.
    pub exec: Vec<String>,
    /// Who it runs as.
    pub user: String,
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHook {
    pub on: Spanned<Vec<String>>,
    pub exec: Spanned<Vec<String>>,
    #[serde(default = "default_user")]
    pub user: Spanned<String>,
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<Dur>,
}

fn default_user() -> Spanned<String> {
    Spanned::new(0..0, "nobody".into())
}

fn default_timeout() -> Spanned<Dur> {
    Spanned::new(0..0, Dur(Duration::from_secs(10)))
}

impl RawHook {
    /// A hook that could never run is refused when the config is read, not
    /// found out at the first lock.
    pub(super) fn check(&self) -> Result<(), Problem> {
        let on = self.on.get_ref();
        if on.is_empty() {
            return Err((
                self.on.span(),
                "names no event; use on = [\"locked\"], [\"unlocked\"] or both".into(),
            ));
        }
        if let Some(bad) = on.iter().find(|e| HookEvent::parse(e).is_none()) {
            return Err((
                self.on.span(),
                format!("unknown event \"{bad}\"; the events are \"locked\" and \"unlocked\""),
            ));
        }
        let Some(program) = self.exec.get_ref().first() else {
            return Err((
                self.exec.span(),
                "is empty; give the program's absolute path and its arguments".into(),
            ));
        };
        if !program.starts_with('/') {
            return Err((
                self.exec.span(),
                format!(
                    "\"{program}\" is not an absolute path; hooks run with no PATH of the admin's"
                ),
            ));
        }
        if !std::path::Path::new(program).is_file() {
            return Err((
                self.exec.span(),
                format!("\"{program}\" does not exist; install it or remove the hook"),
            ));
        }
        let user = self.user.get_ref();
        if !matches!(nix::unistd::User::from_name(user), Ok(Some(_))) {
            return Err((
                self.user.span(),
                format!("no user \"{user}\" on this host; hooks run as an existing user (nobody by default)"),
            ));
        }
        let t = self.timeout.get_ref().0;
        if t.is_zero() || t > MAX_TIMEOUT {
            return Err((
                self.timeout.span(),
                "must be more than 0 and at most 5m".into(),
            ));
        }
        Ok(())
    }

    pub(super) fn into_hook(self) -> Hook {
        Hook {
            on: self
                .on
                .into_inner()
                .iter()
                .filter_map(|e| HookEvent::parse(e))
                .collect(),
            exec: self.exec.into_inner(),
            user: self.user.into_inner(),
            timeout: self.timeout.into_inner().0,
        }
    }
}
