//! Indexes over the locks, kept in step with the key table, so that no path
//! has to scan every key to find, count, expire or page through locks.

use super::KeyId;
use crate::config::ADMIN_RULE;
use crate::time::Time;
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// Every locked key in key order (for `Status` and pages of `locks`), and the
/// timed ones by their end (for expiry, and for choosing which lock to drop
/// when the table holds nothing else).
#[derive(Default)]
pub struct LockIndex {
    all: BTreeSet<KeyId>,
    by_end: BTreeSet<(Time, KeyId)>,
    /// Admin locks on address ranges (`wardenctl lock --rhost 203.0.113.0/24`),
    /// so that an attempt checks just the few that can contain its address.
    ranges: BTreeSet<IpNet>,
}

/// The network an admin lock's key names, when it names one.
fn admin_range(k: &KeyId) -> Option<IpNet> {
    if k.rule() != ADMIN_RULE {
        return None;
    }
    k.part("rhost")?.parse().ok()
}

impl LockIndex {
    pub fn insert(&mut self, k: &KeyId, until: Option<Time>) {
        self.all.insert(k.clone());
        if let Some(t) = until {
            self.by_end.insert((t, k.clone()));
        }
        if let Some(net) = admin_range(k) {
            self.ranges.insert(net);
        }
    }

    pub fn remove(&mut self, k: &KeyId, until: Option<Time>) {
        self.all.remove(k);
        if let Some(t) = until {
            self.by_end.remove(&(t, k.clone()));
        }
        if let Some(net) = admin_range(k) {
            self.ranges.remove(&net);
        }
    }

    /// The admin range locks that contain `ip`.
    pub fn ranges_containing(&self, ip: IpAddr) -> impl Iterator<Item = &IpNet> {
        self.ranges.iter().filter(move |n| n.contains(&ip))
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// The timed lock that ends first, if it has ended by `now`.
    pub fn due(&self, now: Time) -> Option<(Time, KeyId)> {
        self.by_end.first().filter(|(t, _)| *t <= now).cloned()
    }

    /// Timed locks, soonest end first.
    pub fn by_end(&self) -> impl Iterator<Item = &(Time, KeyId)> {
        self.by_end.iter()
    }

    /// Every lock, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyId> {
        self.all.iter()
    }

    /// Up to `n` locked keys after `after`, in key order.
    pub fn page(&self, after: Option<&KeyId>, n: usize) -> Vec<KeyId> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        self.all
            .range((lower, Unbounded))
            .take(n)
            .cloned()
            .collect()
    }
}

/// Which address prefix tipped each live lock, and how many live locks each
/// prefix has tipped. In memory only: after a restart it is rebuilt from the
/// locks whose key names an address, which are the ones that matter most.
#[derive(Default)]
pub struct Attribution {
    of: HashMap<KeyId, String>,
    counts: HashMap<String, u32>,
}

impl Attribution {
    /// Records that `lock` came from `prefix`; returns that prefix's count.
    pub fn attach(&mut self, lock: &KeyId, prefix: String) -> u32 {
        if let Some(old) = self.of.get(lock) {
            if *old == prefix {
                return self.counts.get(&prefix).copied().unwrap_or(0);
            }
            self.detach(lock);
        }
        let n = self.counts.entry(prefix.clone()).or_insert(0);
        *n += 1;
        let n = *n;
        self.of.insert(lock.clone(), prefix);
        n
    }

    pub fn detach(&mut self, lock: &KeyId) {
        let Some(prefix) = self.of.remove(lock) else {
            return;
        };
        if let Some(n) = self.counts.get_mut(&prefix) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.counts.remove(&prefix);
            }
        }
    }

    #[cfg(test)]
    pub fn count(&self, prefix: &str) -> u32 {
        self.counts.get(prefix).copied().unwrap_or(0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_index_follows_inserts_and_removes() {
        let mut ix = LockIndex::default();
        let (a, b) = (
            KeyId::new("r", [("user", "a")]),
            KeyId::new("r", [("user", "b")]),
        );
        ix.insert(&a, Some(Time(10)));
        ix.insert(&b, None);
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.due(Time(9)), None);
        assert_eq!(ix.due(Time(10)), Some((Time(10), a.clone())));
        assert_eq!(ix.page(None, 1), std::slice::from_ref(&a));
        assert_eq!(ix.page(Some(&a), 5), std::slice::from_ref(&b));
        ix.remove(&a, Some(Time(10)));
        assert_eq!(ix.due(Time(100)), None);
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn attribution_counts_live_locks_per_prefix() {
        let mut at = Attribution::default();
        let k = |n: &str| KeyId::new("r", [("rhost", n)]);
        assert_eq!(at.attach(&k("a"), "p".into()), 1);
        assert_eq!(at.attach(&k("b"), "p".into()), 2);
        assert_eq!(at.attach(&k("b"), "p".into()), 2, "twice is once");
        at.detach(&k("a"));
        assert_eq!(at.count("p"), 1);
        at.detach(&k("b"));
        at.detach(&k("b"));
        assert_eq!(at.count("p"), 0);
    }
}
