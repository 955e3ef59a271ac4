//! What is remembered about one key, and the arithmetic of lockouts.

use crate::config::{Lockout, Rule};
use crate::time::{millis, Time};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who set a lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LockedBy {
    Rule,
    Admin { uid: u32, reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub since: Time,
    /// `None`: permanent, until an admin unlocks.
    pub until: Option<Time>,
    /// The cool-off length, restarted by failures while locked.
    pub length_ms: Option<u64>,
    pub by: LockedBy,
}

impl Lock {
    pub fn expired(&self, now: Time) -> bool {
        self.until.is_some_and(|u| u <= now)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyState {
    /// Failure times, oldest first; only the newest `limit` can matter.
    pub failures: Vec<Time>,
    pub lock: Option<Lock>,
    /// When each lockout of this key began, kept for `escalation_memory`.
    pub lockouts: Vec<Time>,
    pub last_active: Time,
}

impl KeyState {
    /// Forgets what no longer counts: failures outside the window, lockouts
    /// older than the escalation memory.
    pub fn prune(&mut self, window: Duration, memory: Duration, now: Time) {
        let cutoff = now.minus(window);
        self.failures.retain(|t| *t > cutoff);
        let cutoff = now.minus(memory);
        self.lockouts.retain(|t| *t > cutoff);
    }

    /// Whether the key holds nothing worth keeping.
    pub fn is_idle(&self) -> bool {
        self.lock.is_none() && self.failures.is_empty() && self.lockouts.is_empty()
    }
}

/// The length of the n-th lockout (n counts from 1) within the escalation memory:
/// lockout × escalate^(n−1), capped at max_lockout. `None` is permanent.
pub fn lockout_length(rule: &Rule, n: usize) -> Option<Duration> {
    let Lockout::For(base) = rule.lockout else {
        return None;
    };
    let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    let factor = rule.escalate.powi(exp);
    let cap = millis(rule.max_lockout.max(base)) as f64;
    let ms = (millis(base) as f64 * factor).min(cap);
    Some(Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Field;

    fn rule(lockout: Lockout, escalate: f64, max: u64) -> Rule {
        Rule {
            name: "r".into(),
            track: vec![Field::User],
            limit: 5,
            window: Duration::from_secs(900),
            lockout,
            escalate,
            max_lockout: Duration::from_secs(max),
            services: None,
        }
    }

    #[test]
    fn escalation_doubles_up_to_the_cap() {
        let r = rule(Lockout::For(Duration::from_secs(900)), 2.0, 86_400);
        let secs: Vec<u64> = (1..=9)
            .map(|n| lockout_length(&r, n).map(|d| d.as_secs()).unwrap_or(0))
            .collect();
        assert_eq!(
            secs,
            [900, 1800, 3600, 7200, 14_400, 28_800, 57_600, 86_400, 86_400]
        );
    }

    #[test]
    fn no_escalation_keeps_the_base() {
        let r = rule(Lockout::For(Duration::from_secs(60)), 1.0, 60);
        assert_eq!(lockout_length(&r, 7), Some(Duration::from_secs(60)));
        assert_eq!(lockout_length(&rule(Lockout::Permanent, 2.0, 0), 1), None);
    }

    #[test]
    fn huge_repeat_counts_saturate_at_the_cap() {
        let r = rule(Lockout::For(Duration::from_secs(60)), 100.0, 3600);
        assert_eq!(lockout_length(&r, 10_000), Some(Duration::from_secs(3600)));
    }
}
