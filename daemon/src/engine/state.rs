//! What is remembered about one key, and the arithmetic of lockouts.

use crate::config::{Lockout, Rule};
use crate::time::{millis, Time};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::time::Duration;

/// A short list of times. Most keys hold one or two failures, so they live
/// inline in the key's entry instead of in an allocation of their own: with a
/// million keys tracked, that is the difference between fitting in the memory
/// budget and not. It serialises as a plain sequence, like the `Vec` it replaced.
pub type Times = SmallVec<[Time; 2]>;

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

/// What is remembered about one key. Kept small because a host under a
/// distributed attack tracks a million of these: the failures and the last
/// activity sit in the entry itself, and the lock and lockout history, which
/// few keys ever have, sit behind one pointer that is empty for the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyState {
    /// Failure times, oldest first; only the newest `limit` can matter.
    pub failures: Times,
    pub last_active: Time,
    history: Option<Box<History>>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct History {
    lock: Option<Lock>,
    /// When each lockout of this key began, kept for `escalation_memory`.
    lockouts: Times,
}

impl KeyState {
    /// A key with failures and no lock history.
    pub fn new(failures: Times, last_active: Time) -> KeyState {
        KeyState {
            failures,
            last_active,
            history: None,
        }
    }

    pub fn lock(&self) -> Option<&Lock> {
        self.history.as_ref().and_then(|h| h.lock.as_ref())
    }

    pub fn lock_mut(&mut self) -> Option<&mut Lock> {
        self.history.as_mut().and_then(|h| h.lock.as_mut())
    }

    pub fn set_lock(&mut self, lock: Option<Lock>) {
        self.history.get_or_insert_with(Box::default).lock = lock;
        self.tidy();
    }

    pub fn lockouts(&self) -> &[Time] {
        self.history.as_ref().map_or(&[], |h| &h.lockouts)
    }

    pub fn push_lockout(&mut self, at: Time) {
        self.history
            .get_or_insert_with(Box::default)
            .lockouts
            .push(at);
    }

    pub fn pop_lockout(&mut self) {
        if let Some(h) = self.history.as_mut() {
            h.lockouts.pop();
        }
        self.tidy();
    }

    /// Forgets what no longer counts: failures outside the window, lockouts
    /// older than the escalation memory.
    pub fn prune(&mut self, window: Duration, memory: Duration, now: Time) {
        let cutoff = now.minus(window);
        self.failures.retain(|t| *t > cutoff);
        let cutoff = now.minus(memory);
        if let Some(h) = self.history.as_mut() {
            h.lockouts.retain(|t| *t > cutoff);
        }
        self.tidy();
    }

    /// Whether the key holds nothing worth keeping.
    pub fn is_idle(&self) -> bool {
        self.history.is_none() && self.failures.is_empty()
    }

    fn tidy(&mut self) {
        if self
            .history
            .as_ref()
            .is_some_and(|h| h.lock.is_none() && h.lockouts.is_empty())
        {
            self.history = None;
        }
    }
}

/// The stored form: the same fields, in the same order, as every build has
/// written, so the in-memory layout can change without touching the store.
#[derive(Serialize)]
struct StoredRef<'a> {
    failures: &'a [Time],
    lock: Option<&'a Lock>,
    lockouts: &'a [Time],
    last_active: Time,
}

#[derive(Deserialize)]
struct Stored {
    failures: Times,
    lock: Option<Lock>,
    lockouts: Times,
    last_active: Time,
}

impl Serialize for KeyState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredRef {
            failures: &self.failures,
            lock: self.lock(),
            lockouts: self.lockouts(),
            last_active: self.last_active,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for KeyState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Stored::deserialize(d)?;
        let history = (s.lock.is_some() || !s.lockouts.is_empty()).then(|| {
            Box::new(History {
                lock: s.lock,
                lockouts: s.lockouts,
            })
        });
        Ok(KeyState {
            failures: s.failures,
            last_active: s.last_active,
            history,
        })
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

/// A lock's random extra under the rule's `jitter`, in ms: `draw` (a u64
/// drawn at random, or derived from a secret) spread over 0..=jitter.
pub fn jitter_ms(rule: &Rule, draw: u64) -> u64 {
    match millis(rule.jitter) {
        0 => 0,
        j => draw % (j + 1),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
            jitter: Duration::ZERO,
            observe: false,
            scope: crate::config::UserScope::default(),
        }
    }

    /// The layout the store held before `Times` and the boxed lock: stores
    /// written by earlier builds must read back unchanged.
    #[derive(Serialize)]
    struct EarlierKeyState {
        failures: Vec<Time>,
        lock: Option<Lock>,
        lockouts: Vec<Time>,
        last_active: Time,
    }

    #[test]
    fn earlier_stored_states_read_back_unchanged() {
        let lock = Lock {
            since: Time(5),
            until: Some(Time(65)),
            length_ms: Some(60),
            by: LockedBy::Admin {
                uid: 0,
                reason: "r".into(),
            },
        };
        let earlier = EarlierKeyState {
            failures: vec![Time(1), Time(2), Time(3)],
            lock: Some(lock.clone()),
            lockouts: vec![Time(4)],
            last_active: Time(5),
        };
        let bytes = postcard::to_allocvec(&earlier).unwrap();
        let now: KeyState = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(now.failures.as_slice(), [Time(1), Time(2), Time(3)]);
        assert_eq!(now.lock(), Some(&lock));
        assert_eq!(now.lockouts(), [Time(4)]);
        assert_eq!(now.last_active, Time(5));
        assert_eq!(postcard::to_allocvec(&now).unwrap(), bytes);
    }

    #[test]
    fn a_key_without_locks_keeps_no_history() {
        let earlier = EarlierKeyState {
            failures: vec![Time(1)],
            lock: None,
            lockouts: vec![],
            last_active: Time(1),
        };
        let bytes = postcard::to_allocvec(&earlier).unwrap();
        let mut st: KeyState = postcard::from_bytes(&bytes).unwrap();
        assert!(st.history.is_none());
        assert_eq!(postcard::to_allocvec(&st).unwrap(), bytes);

        st.set_lock(Some(Lock {
            since: Time(2),
            until: Some(Time(3)),
            length_ms: Some(1),
            by: LockedBy::Rule,
        }));
        st.push_lockout(Time(2));
        assert!(!st.is_idle());
        st.set_lock(None);
        st.failures.clear();
        // The lockout is still remembered until the escalation memory passes.
        assert!(!st.is_idle());
        st.prune(
            Duration::from_millis(10),
            Duration::from_millis(10),
            Time(100),
        );
        assert!(st.is_idle());
        assert!(st.history.is_none());
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
