//! What time decides: abandoned attempts, locks past their end, idle state,
//! and eviction when the table is full. Runs from the daemon's tick and
//! housekeeping, never on a login's path, except `settle` for one key.

use super::*;

impl Engine {
    /// Resolves what time has decided: abandoned attempts become failures, and
    /// locks past their end are lifted (and logged, which pam_faillock never does).
    pub fn tick(&mut self, now: Time, fx: &mut Effects) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.pending.remove(&id) {
                self.forget_pending(&p);
                if self.unreported(&p, fx) {
                    let mut e = attempt_event(&p.attempt, p.origin, deadline, EventKind::Abandoned);
                    e.reason = Some(
                        "uncounted: this service's stack never reports how attempts end".into(),
                    );
                    fx.events.push(e);
                    continue;
                }
                self.count_failure(
                    &p.attempt,
                    p.origin,
                    &p.keys,
                    p.allowlisted,
                    FailureKind::Abandoned,
                    deadline,
                    fx,
                );
            }
        }
        while let Some((until, k)) = self.locks.due(now) {
            self.lift_expired(k, until, fx);
        }
    }

    /// Lifts one key's lock if its end has passed. A login settles the keys
    /// it touches, so that it sees what a tick would have left without
    /// waiting on every other expiry due in the table.
    pub(super) fn settle(&mut self, k: &KeyId, now: Time, fx: &mut Effects) {
        let due = self
            .keys
            .get(k)
            .and_then(|s| s.lock())
            .filter(|l| l.expired(now))
            .and_then(|l| l.until);
        if let Some(until) = due {
            self.lift_expired(k.clone(), until, fx);
        }
    }

    fn lift_expired(&mut self, k: KeyId, until: Time, fx: &mut Effects) {
        self.drop_lock(&k, Some(until));
        let Some(st) = self.keys.get_mut(&k) else {
            return;
        };
        // A finished cool-off starts a fresh budget; the lockout history
        // stays, so the next lock escalates.
        st.failures.clear();
        let st = st.clone();
        let mut e = Event::about_key(until, self.unlocked_kind(&k), &k);
        e.by = Some("expired".into());
        fx.events.push(e);
        fx.keys.push((k, Some(st)));
    }

    /// Drops what no longer matters among up to `limit` keys after `after`:
    /// idle keys, keys of rules that were removed; and, on the last page,
    /// familiar sources past `familiar.remember`. Returns where to go on from.
    pub fn purge_page(
        &mut self,
        after: Option<&KeyId>,
        limit: usize,
        now: Time,
        fx: &mut Effects,
    ) -> Option<KeyId> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.tick(now, fx);
        let memory = self.policy.escalation_memory;
        let lower = after.map_or(Unbounded, Excluded).map(Clone::clone);
        let mut dead = Vec::new();
        let mut scanned = 0;
        let mut last = None;
        let rules = self.rule_windows();
        for (k, st) in self.keys.range_mut((lower, Unbounded)) {
            scanned += 1;
            last = Some(k.clone());
            if !self.reserved.contains_key(k) {
                match rules.get(k.rule()) {
                    Some(window) => {
                        let before = (st.failures.len(), st.lockouts().len());
                        st.prune(*window, memory, now);
                        if st.is_idle() {
                            dead.push(k.clone());
                        } else if before != (st.failures.len(), st.lockouts().len()) {
                            fx.keys.push((k.clone(), Some(st.clone())));
                        }
                    }
                    None if st.lock().is_some() => {}
                    None => dead.push(k.clone()),
                }
            }
            if scanned >= limit {
                break;
            }
        }
        for k in dead {
            self.keys.remove(&k);
            fx.keys.push((k, None));
        }
        if scanned >= limit {
            return last;
        }
        let cutoff = now.minus(self.policy.familiar_remember);
        let stale: Vec<(String, String)> = self
            .familiar
            .iter()
            .filter(|(_, t)| **t <= cutoff)
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            self.familiar.remove(&p);
            fx.familiar.push((p, None));
        }
        None
    }

    /// All of [`purge_page`](Self::purge_page) at once (tests, fuzzing).
    pub fn purge(&mut self, now: Time, fx: &mut Effects) {
        let mut after = None;
        while let Some(next) = self.purge_page(after.as_ref(), 4096, now, fx) {
            after = Some(next);
        }
    }

    /// Locks a key for its rule's n-th lockout; returns when it ends.
    pub(super) fn lock_by_rule(
        &mut self,
        k: &KeyId,
        rule: &Rule,
        n: usize,
        now: Time,
    ) -> Option<Time> {
        let length = lockout_length(rule, n);
        let extra = std::time::Duration::from_millis(self.jitter(rule, k, now));
        let until = length.map(|d| now.plus(d + extra));
        let lock = Lock {
            since: now,
            until,
            length_ms: length.map(millis),
            by: LockedBy::Rule,
        };
        self.set_lock(k, lock, now);
        until
    }

    /// Puts a lock on a key (creating it), keeping the indexes in step.
    pub(super) fn set_lock(&mut self, k: &KeyId, lock: Lock, now: Time) {
        let st = self.keys.entry(k.clone()).or_default();
        if let Some(old) = st.lock() {
            self.locks.remove(k, old.until);
        }
        let until = lock.until;
        let rule_lock = lock.by == LockedBy::Rule;
        st.set_lock(Some(lock));
        if rule_lock {
            st.push_lockout(now);
        }
        st.last_active = now;
        self.locks.insert(k, until);
    }

    /// Takes a key's lock off, keeping the indexes in step. `until` must be
    /// the lock's end as the index holds it.
    pub(super) fn drop_lock(&mut self, k: &KeyId, until: Option<Time>) {
        self.locks.remove(k, until);
        self.attribution.detach(k);
        if let Some(st) = self.keys.get_mut(k) {
            st.set_lock(None);
        }
    }

    pub(super) fn restart_cool_off(&mut self, k: &KeyId, now: Time, fx: &mut Effects) {
        // A restart gets a jitter of its own, or a guesser who keeps failing
        // while locked could time the end from his last failure.
        let extra = self
            .rule_named(k.rule())
            .map_or(0, |r| self.jitter(r, k, now));
        let Some(st) = self.keys.get_mut(k) else {
            return;
        };
        let Some(lock) = st.lock_mut() else {
            return;
        };
        let (Some(old), Some(len)) = (lock.until, lock.length_ms) else {
            return; // permanent
        };
        let new = Time(now.0.saturating_add(len).saturating_add(extra)).max(old);
        lock.until = Some(new);
        st.last_active = now;
        let st = st.clone();
        if new != old {
            self.locks.remove(k, Some(old));
            self.locks.insert(k, Some(new));
        }
        fx.keys.push((k.clone(), Some(st)));
    }

    /// Keeps memory bounded: past `max_tracked_keys`, unlocked keys go, those
    /// furthest from their limit and least recently active first. The keys of the operation at hand are
    /// never dropped: evicting the key under attack right after its failure
    /// would switch its lockout off. When only locks are left to drop, the
    /// rule locks that end soonest go, loudly; admin and prefix locks never.
    pub(super) fn evict_if_full(&mut self, protect: &[KeyId], now: Time, fx: &mut Effects) {
        let max = self.policy.max_tracked_keys;
        if self.keys.len() <= max {
            return;
        }
        // Evict a percent below the bound at once, so the scan is amortised. The
        // scan borrows the keys and clones only the chosen ones.
        let target = max - max / 100;
        let excess = self.keys.len().saturating_sub(target);
        // Furthest from their limit first, then least recently active: a key
        // an attacker has brought close to its limit can only be pushed out
        // by as many keys at least as close, each of which cost a guess.
        let limits: HashMap<&str, u32> = self
            .policy
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.limit.max(1)))
            .collect();
        let nearness = |k: &KeyId, st: &KeyState| -> u64 {
            let limit = u64::from(limits.get(k.rule()).copied().unwrap_or(u32::MAX));
            st.failures.len() as u64 * 1_000_000 / limit
        };
        let mut candidates: Vec<(u64, Time, &KeyId)> = self
            .keys
            .iter()
            .filter(|(k, st)| {
                st.lock().is_none() && !self.reserved.contains_key(*k) && !protect.contains(k)
            })
            .map(|(k, st)| (nearness(k, st), st.last_active, k))
            .collect();
        let take = excess.min(candidates.len());
        if take > 0 && take < candidates.len() {
            candidates.select_nth_unstable(take);
        }
        let chosen: Vec<KeyId> = candidates
            .into_iter()
            .take(take)
            .map(|(_, _, k)| k.clone())
            .collect();
        for k in &chosen {
            self.keys.remove(k);
            fx.keys.push((k.clone(), None));
        }
        let mut dropped_locks = Vec::new();
        let mut left = excess - take;
        if left > 0 {
            for (until, k) in self.locks.by_end() {
                if left == 0 {
                    break;
                }
                let by_rule = self
                    .keys
                    .get(k)
                    .and_then(|s| s.lock())
                    .is_some_and(|l| l.by == LockedBy::Rule);
                if by_rule && k.rule() != PREFIX_RULE && !protect.contains(k) {
                    dropped_locks.push((*until, k.clone()));
                    left -= 1;
                }
            }
            if left > 0 {
                // Only permanent rule locks are left: the oldest go.
                let mut permanent: Vec<(Time, &KeyId)> = self
                    .locks
                    .iter()
                    .filter(|k| !protect.contains(k) && k.rule() != PREFIX_RULE)
                    .filter_map(|k| {
                        let lock = self.keys.get(k)?.lock()?;
                        (lock.by == LockedBy::Rule && lock.until.is_none())
                            .then_some((lock.since, k))
                    })
                    .collect();
                permanent.sort();
                for (_, k) in permanent.into_iter().take(left) {
                    dropped_locks.push((Time(u64::MAX), k.clone()));
                }
            }
            for (until, k) in &dropped_locks {
                let until = (until.0 != u64::MAX).then_some(*until);
                self.drop_lock(k, until);
                self.keys.remove(k);
                let mut e = Event::about_key(now, self.unlocked_kind(k), k);
                e.by = Some("evicted".into());
                fx.events.push(e);
                fx.keys.push((k.clone(), None));
            }
        }
        self.pressure.evicted_keys += chosen.len() as u64;
        self.pressure.evicted_locks += dropped_locks.len() as u64;
        self.pressure.last_full = Some(now);
        fx.alerts.push(Alert::TableFull {
            keys: self.keys.len(),
            max,
            evicted_keys: chosen.len(),
            evicted_locks: dropped_locks.len(),
        });
    }
}
