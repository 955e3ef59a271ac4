//! The same wrong password counted once (`same_password_once`): the tags of
//! each user's last few wrong passwords, with when each was last seen. Only
//! in memory, with the key that made them: a restart forgets both, and then
//! a repeat counts again, which is stricter, never looser.

use crate::time::Time;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use subtle::ConstantTimeEq;
use warden_proto::repeat::{RepeatKey, Tag};
use zeroize::Zeroizing;

/// Wrong passwords remembered per user, as Entra's smart lockout does.
pub const REMEMBERED: usize = 3;

pub struct Repeats {
    key: Zeroizing<RepeatKey>,
    seen: HashMap<String, VecDeque<(Tag, Time)>>,
    /// Users remembered at most: past it, what is out of the window goes,
    /// and then everything (repeats count again).
    cap: usize,
}

impl Repeats {
    pub fn new(key: RepeatKey, cap: usize) -> Repeats {
        Repeats {
            key: Zeroizing::new(key),
            seen: HashMap::new(),
            cap,
        }
    }

    pub fn key(&self) -> RepeatKey {
        *self.key
    }

    /// Whether `tag` is one of `user`'s last wrong passwords seen within
    /// `window`; it is remembered (or its time renewed) either way, so a
    /// client that repeats a stale password forever is counted once.
    pub fn repeated(&mut self, user: &str, tag: &Tag, window: Duration, now: Time) -> bool {
        let cutoff = now.minus(window);
        let ring = self.seen.entry(user.to_string()).or_default();
        ring.retain(|(_, t)| *t > cutoff);
        let hit = ring.iter().position(|(t, _)| bool::from(t.ct_eq(tag)));
        // A repeat becomes the newest again, so the last to be pushed out.
        if let Some(i) = hit {
            ring.remove(i);
        }
        ring.push_back((*tag, now));
        while ring.len() > REMEMBERED {
            ring.pop_front();
        }
        if self.seen.len() > self.cap {
            self.seen
                .retain(|_, ring| ring.iter().any(|(_, t)| *t > cutoff));
            if self.seen.len() > self.cap {
                self.seen.clear();
            }
        }
        hit.is_some()
    }

    /// Users remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(900);

    #[test]
    fn a_repeat_of_the_last_three_counts_once_within_the_window() {
        let mut r = Repeats::new([9; 32], 100);
        let t = Time(1_000_000);
        let (a, b, c, d) = ([1; 8], [2; 8], [3; 8], [4; 8]);
        assert!(!r.repeated("alice", &a, W, t));
        assert!(r.repeated("alice", &a, W, t.plus(Duration::from_secs(60))));
        assert!(
            !r.repeated("bob", &a, W, t),
            "one user's tags are not another's"
        );
        for x in [&b, &c] {
            assert!(!r.repeated("alice", x, W, t));
        }
        assert!(r.repeated("alice", &a, W, t));
        // A fourth pushes out the oldest.
        assert!(!r.repeated("alice", &d, W, t));
        assert!(!r.repeated("alice", &b, W, t), "b was the oldest and went");
        // A repeat renews its time; past the window from then, it counts again.
        let later = t.plus(Duration::from_secs(800));
        assert!(r.repeated("alice", &d, W, later));
        assert!(r.repeated("alice", &d, W, later.plus(Duration::from_secs(800))));
        assert!(!r.repeated("alice", &d, W, later.plus(Duration::from_secs(2000))));
    }

    #[test]
    fn a_flood_of_names_is_bounded_and_forgets_toward_counting() {
        let mut r = Repeats::new([9; 32], 10);
        let t = Time(1_000_000);
        assert!(!r.repeated("owner", &[5; 8], W, t));
        for i in 0..50 {
            r.repeated(&format!("u{i}"), &[1; 8], W, t);
            assert!(r.len() <= 10, "{}", r.len());
        }
        assert!(
            !r.repeated("owner", &[5; 8], W, t),
            "forgotten: counted again"
        );
    }
}
