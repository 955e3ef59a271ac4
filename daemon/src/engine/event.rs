//! Events: what the engine tells the log and the audit trail, and the reasons it
//! gives with every decision.

use super::key::KeyId;
use crate::time::Time;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A password was wrong.
    Failure,
    /// A TOTP or recovery code was wrong.
    TotpFailure,
    /// An attempt that was never resolved, counted as a failure.
    Abandoned,
    Success,
    /// An attempt refused at its start.
    Refused,
    Locked,
    Unlocked,
    /// An attempt that ended with no password given: not a guess, not counted.
    Aborted,
    /// Observe mode: a rule locked a key, which refuses nothing.
    WouldLock,
    /// Observe mode: an attempt let through that `enforce` would have refused.
    WouldRefuse,
    /// Observe mode: a lock that refused nothing ended.
    WouldUnlock,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::Failure,
        EventKind::TotpFailure,
        EventKind::Abandoned,
        EventKind::Success,
        EventKind::Refused,
        EventKind::Locked,
        EventKind::Unlocked,
        EventKind::Aborted,
        EventKind::WouldLock,
        EventKind::WouldRefuse,
        EventKind::WouldUnlock,
    ];

    /// A kind by the name the log and `history --kind` use.
    pub fn named(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Failure => "failure",
            EventKind::TotpFailure => "totp",
            EventKind::Abandoned => "abandoned",
            EventKind::Success => "success",
            EventKind::Refused => "refused",
            EventKind::Locked => "locked",
            EventKind::Unlocked => "unlocked",
            EventKind::Aborted => "aborted",
            EventKind::WouldLock => "would-lock",
            EventKind::WouldRefuse => "would-refuse",
            EventKind::WouldUnlock => "would-unlock",
        }
    }
}

/// When a lock ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Until {
    At(Time),
    Permanent,
}

impl Until {
    pub fn from_option(t: Option<Time>) -> Until {
        t.map_or(Until::Permanent, Until::At)
    }
}

/// Why an attempt was let through or refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReasonKind {
    /// No rule is near its limit: `rule`/`key`/`failures` name the closest one.
    Clear,
    /// On `[allow]`: never locked.
    Allowlisted,
    /// A key is locked.
    Locked,
    /// The rhost is on `[deny]`.
    Denied,
    /// Every remaining place under a limit is held by attempts in progress.
    Busy,
    /// Too many attempts are in flight, in all or from this unprivileged uid.
    Crowded,
    /// The rhost is a name, which `[deny]` cannot be checked against.
    Unverifiable,
}

impl ReasonKind {
    /// Whether `begin` lets an attempt with this reason go ahead.
    pub fn allows(self) -> bool {
        matches!(self, ReasonKind::Clear | ReasonKind::Allowlisted)
    }

    pub fn name(self) -> &'static str {
        match self {
            ReasonKind::Clear => "clear",
            ReasonKind::Allowlisted => "allowlisted",
            ReasonKind::Locked => "locked",
            ReasonKind::Denied => "denied",
            ReasonKind::Busy => "busy",
            ReasonKind::Crowded => "crowded",
            ReasonKind::Unverifiable => "unverifiable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub kind: ReasonKind,
    pub rule: Option<String>,
    pub key: Option<KeyId>,
    pub failures: u32,
    pub limit: u32,
    pub until: Option<Until>,
    /// An admin's lock: their words (possibly empty). `None` for a rule's.
    pub admin: Option<String>,
}

impl Reason {
    pub fn plain(kind: ReasonKind) -> Reason {
        Reason {
            kind,
            rule: None,
            key: None,
            failures: 0,
            limit: 0,
            until: None,
            admin: None,
        }
    }
}

/// One line of the log and one record of the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time: Time,
    pub kind: EventKind,
    pub service: Option<String>,
    pub user: Option<String>,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub rule: Option<String>,
    pub key: Option<KeyId>,
    pub failures: Option<u32>,
    pub until: Option<Until>,
    /// Who acted: `uid=N` for an admin or an unprivileged peer reporting for
    /// itself, `expired` for a lock that ran out, `evicted` for one dropped
    /// from a full table.
    pub by: Option<String>,
    /// Refusals: which reason; admin locks: the admin's words.
    pub reason: Option<String>,
}

impl Event {
    pub fn new(time: Time, kind: EventKind) -> Event {
        Event {
            time,
            kind,
            service: None,
            user: None,
            rhost: None,
            tty: None,
            rule: None,
            key: None,
            failures: None,
            until: None,
            by: None,
            reason: None,
        }
    }

    /// An event about a key rather than an attempt: the key's own fields fill in
    /// user and rhost, so that a lock's log line says whom it concerns.
    pub fn about_key(time: Time, kind: EventKind, key: &KeyId) -> Event {
        let mut e = Event::new(time, kind);
        e.rule = Some(key.rule().to_string());
        e.user = key.part("user").map(str::to_string);
        e.rhost = key.part("rhost").map(str::to_string);
        e.tty = key.part("tty").map(str::to_string);
        e.service = key.part("service").map(str::to_string);
        e.key = Some(key.clone());
        e
    }
}
