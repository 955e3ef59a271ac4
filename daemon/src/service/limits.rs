//! Rate limits on what unprivileged callers may cost the daemon: requests per
//! uid (token buckets), and log lines, with a summary of what was held back.

use crate::engine::{Event, EventKind, Origin};
use crate::time::Time;
use std::collections::HashMap;
use std::sync::Mutex;

/// A token bucket per uid: `burst` requests at once, then `per_sec`.
pub struct Budgets {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<u32, (f64, Time)>>,
}

impl Budgets {
    pub fn new(burst: u32, per_sec: f64) -> Budgets {
        Budgets {
            burst: f64::from(burst),
            per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `uid`'s bucket; false when it is empty.
    pub fn take(&self, uid: u32, now: Time) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        // Full buckets hold nothing worth keeping; drop them now and then so
        // the map stays as small as the set of busy uids.
        if buckets.len() > 4096 {
            let (burst, rate) = (self.burst, self.per_sec);
            buckets.retain(|_, (tokens, at)| refill(*tokens, *at, now, burst, rate) < burst);
        }
        let (tokens, at) = buckets.entry(uid).or_insert((self.burst, now));
        let available = refill(*tokens, *at, now, self.burst, self.per_sec);
        if available < 1.0 {
            *tokens = available;
            *at = now;
            return false;
        }
        *tokens = available - 1.0;
        *at = now;
        true
    }
}

fn refill(tokens: f64, at: Time, now: Time, burst: f64, per_sec: f64) -> f64 {
    let secs = at.until(now).as_secs_f64();
    (tokens + secs * per_sec).min(burst)
}

/// Who a log line is charged to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Charge {
    /// Everything an unprivileged peer caused.
    Peer(u32),
    /// Refusals of attempts on one user name: a locked account hammered by a
    /// remote guesser costs no password check per try, so nothing else
    /// bounds them.
    Refused(String),
}

/// How many lines each charge may write per window.
pub const LINES_PER_WINDOW: u32 = 10;
/// Short enough that a summary follows a flood closely.
pub const WINDOW_MS: u64 = 10_000;
/// Past this many distinct charges in one window, the rest share one.
const MAX_CHARGES: usize = 10_000;

/// Decides which event lines are written, and reports what was held back.
/// Locks, unlocks, successes and root peers' failures are always written:
/// they are what fail2ban and an admin read, and each costs a password check.
pub struct LogLimiter {
    state: Mutex<LimiterState>,
}

struct LimiterState {
    since: Time,
    counts: HashMap<Charge, (u32, u64)>,
    overflow: u64,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter {
            state: Mutex::new(LimiterState {
                since: Time(0),
                counts: HashMap::new(),
                overflow: 0,
            }),
        }
    }
}

impl LogLimiter {
    /// Whether this event's line may be written now.
    pub fn admit(&self, e: &Event, origin: Origin, now: Time) -> bool {
        if matches!(
            e.kind,
            EventKind::Locked | EventKind::Unlocked | EventKind::WouldLock | EventKind::WouldUnlock
        ) {
            return true;
        }
        let charge = match origin {
            Origin::Peer(uid) => Charge::Peer(uid),
            Origin::Root if matches!(e.kind, EventKind::Refused | EventKind::WouldRefuse) => {
                Charge::Refused(e.user.clone().unwrap_or_default())
            }
            Origin::Root => return true,
        };
        let Ok(mut st) = self.state.lock() else {
            return true;
        };
        if st.since.0 == 0 {
            st.since = now;
        }
        if !st.counts.contains_key(&charge) && st.counts.len() >= MAX_CHARGES {
            st.overflow += 1;
            return false;
        }
        let (written, held) = st.counts.entry(charge).or_insert((0, 0));
        if *written < LINES_PER_WINDOW {
            *written += 1;
            true
        } else {
            *held += 1;
            false
        }
    }

    /// Once a window has passed: one summary line per charge that had lines
    /// held back, and a fresh window.
    pub fn summaries(&self, now: Time) -> Vec<String> {
        let Ok(mut st) = self.state.lock() else {
            return Vec::new();
        };
        if st.since.0 == 0 || now.0 < st.since.0 + WINDOW_MS {
            return Vec::new();
        }
        let secs = st.since.until(now).as_secs();
        let mut out: Vec<String> = st
            .counts
            .iter()
            .filter(|(_, (_, held))| *held > 0)
            .map(|(c, (_, held))| match c {
                Charge::Peer(uid) => format!(
                    "log-suppressed events={held} uid={uid} window={secs}s reason=\"more than {LINES_PER_WINDOW} lines from an unprivileged peer\""
                ),
                Charge::Refused(user) => format!(
                    "log-suppressed events={held} kind=refused user={} window={secs}s",
                    crate::logline::quote(user)
                ),
            })
            .collect();
        if st.overflow > 0 {
            out.push(format!(
                "log-suppressed events={} window={secs}s reason=\"too many distinct sources\"",
                st.overflow
            ));
        }
        out.sort();
        st.counts.clear();
        st.overflow = 0;
        st.since = now;
        out
    }
}

/// Alerts of one kind are logged at most once per this.
const ALERT_EVERY_MS: u64 = 60_000;

/// Lets each kind of alert out at most once a minute, counting the rest.
#[derive(Default)]
pub struct AlertGate {
    last: Mutex<HashMap<&'static str, (Time, u64)>>,
}

impl AlertGate {
    /// `Some(n)` when the alert may be logged now, with how many of its kind
    /// were held back since the last one.
    pub fn admit(&self, kind: &'static str, now: Time) -> Option<u64> {
        let Ok(mut last) = self.last.lock() else {
            return Some(0);
        };
        match last.get_mut(kind) {
            Some((at, held)) if now.0 < at.0 + ALERT_EVERY_MS => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held;
                *at = now;
                *held = 0;
                Some(n)
            }
            None => {
                last.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate() {
        let b = Budgets::new(3, 1.0);
        let t = Time(1_000_000);
        assert!((0..3).all(|_| b.take(7, t)));
        assert!(!b.take(7, t));
        assert!(b.take(8, t), "another uid has its own bucket");
        assert!(!b.take(7, Time(t.0 + 500)));
        assert!(b.take(7, Time(t.0 + 1600)));
        assert!(!b.take(7, Time(t.0 + 1700)));
    }

    #[test]
    fn peer_lines_are_capped_and_summarised() {
        let l = LogLimiter::default();
        let mut e = Event::new(Time(1), EventKind::Failure);
        e.user = Some("mallory".into());
        let t = Time(5_000);
        let written = (0..100)
            .filter(|_| l.admit(&e, Origin::Peer(1000), t))
            .count();
        assert_eq!(written, LINES_PER_WINDOW as usize);
        assert!(l.admit(&e, Origin::Root, t), "root failures always");
        let locked = Event::new(Time(1), EventKind::Locked);
        assert!(l.admit(&locked, Origin::Peer(1000), t), "locks always");
        assert!(
            l.summaries(Time(t.0 + 1000)).is_empty(),
            "not before the window ends"
        );
        let s = l.summaries(Time(t.0 + WINDOW_MS + 1000));
        assert_eq!(s.len(), 1);
        assert!(
            s[0].starts_with("log-suppressed events=90 uid=1000"),
            "{s:?}"
        );
        assert!(
            l.admit(&e, Origin::Peer(1000), Time(t.0 + WINDOW_MS + 2000)),
            "a fresh window"
        );
    }

    #[test]
    fn alerts_pass_once_a_minute() {
        let g = AlertGate::default();
        assert_eq!(g.admit("table-full", Time(1000)), Some(0));
        assert_eq!(g.admit("table-full", Time(2000)), None);
        assert_eq!(g.admit("table-full", Time(3000)), None);
        assert_eq!(g.admit("crowded", Time(3000)), Some(0));
        assert_eq!(g.admit("table-full", Time(62_000)), Some(2));
        assert_eq!(g.admit("table-full", Time(62_001)), None);
    }
}
