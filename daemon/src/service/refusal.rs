//! The words a refused user reads for a reason; they depend only on the
//! reason, never on whether the account exists. The socket sends them, and
//! `explain` shows an admin the same words.

use crate::engine::{Reason, ReasonKind, Until};
use crate::time::Time;
use warden_proto::{locked_message, message};

/// Seconds until a timed end, rounded up.
pub fn seconds_left(until: Option<Until>, now: Time) -> Option<u64> {
    match until {
        Some(Until::At(t)) => Some(now.until(t).as_millis().div_ceil(1000) as u64),
        _ => None,
    }
}

pub fn refusal_message(reason: &Reason, now: Time) -> String {
    match reason.kind {
        ReasonKind::Busy | ReasonKind::Crowded => message::CROWDED.into(),
        ReasonKind::Denied | ReasonKind::Unverifiable => message::DENIED.into(),
        _ => locked_message(seconds_left(reason.until, now)),
    }
}
