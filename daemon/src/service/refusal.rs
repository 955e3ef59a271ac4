//! The words a refused user reads for a reason; they depend only on the
//! reason, never on whether the account exists. The socket sends them, and
//! `explain` shows an admin the same words.

use crate::engine::{Reason, ReasonKind, Until};
use crate::time::Time;
use crate::words::Words;
use warden_proto::message::{self, Refusal};

/// Seconds until a timed end, rounded up.
pub fn seconds_left(until: Option<Until>, now: Time) -> Option<u64> {
    match until {
        Some(Until::At(t)) => Some(now.until(t).as_millis().div_ceil(1000) as u64),
        _ => None,
    }
}

/// The reason as the refused user is told it: under a rule with `jitter`,
/// the end rounded up to a whole multiple of the jitter from now, so that the
/// words do not give away the end the jitter blurs. Admins see the true end.
pub fn blurred(mut reason: Reason, rules: &[crate::config::Rule], now: Time) -> Reason {
    let jitter = reason
        .rule
        .as_deref()
        .filter(|_| reason.admin.is_none())
        .and_then(|name| rules.iter().find(|r| r.name == name))
        .map_or(0, |r| crate::time::millis(r.jitter));
    if let (Some(Until::At(t)), true) = (reason.until, jitter > 0) {
        let left = t.0.saturating_sub(now.0);
        reason.until = Some(Until::At(Time(now.0 + left.div_ceil(jitter) * jitter)));
    }
    reason
}

/// What the user reads: a lock after failures, an administrator's lock on the
/// account (with their words), or a lock on where the attempt comes from.
/// The words follow the lock that refused, never whether the account exists:
/// an unknown name locked the same way reads the same.
pub fn refusal_message(reason: &Reason, now: Time, words: &Words) -> String {
    let left = seconds_left(reason.until, now);
    let custom = words.custom();
    match reason.kind {
        ReasonKind::Busy | ReasonKind::Crowded => {
            words.plain(custom.crowded.as_ref(), message::CROWDED)
        }
        ReasonKind::Denied | ReasonKind::Unverifiable => {
            words.plain(custom.denied.as_ref(), message::DENIED)
        }
        _ => {
            let on_address = reason
                .key
                .as_ref()
                .is_some_and(|k| k.part("user").is_none() && k.part("rhost").is_some());
            let refusal = match (&reason.admin, on_address) {
                (admin, true) => Refusal::AddressLocked {
                    by_admin: admin.is_some(),
                    reason: admin.as_deref().unwrap_or(""),
                },
                (Some(said), false) => Refusal::AdminLocked { reason: said },
                (None, false) => Refusal::Locked,
            };
            words.refusal(&refusal, left)
        }
    }
}
