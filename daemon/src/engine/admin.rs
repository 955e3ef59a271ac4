//! An admin's actions: locks on users and ranges, and unlocks by selector.

use super::*;

impl Engine {
    /// Lifts locks and clears counters (and escalation history) for the selected
    /// keys, at most `limit` of them after `after` in key order, so that a big
    /// unlock never holds the engine for long. Returns how many keys were
    /// cleared, and where to go on from (`None` when done).
    pub fn unlock_page(
        &mut self,
        sel: &Selector,
        by_uid: u32,
        after: Option<&KeyId>,
        limit: usize,
        now: Time,
        fx: &mut Effects,
    ) -> Unlocked {
        self.tick(now, fx);
        let (chosen, next) = match sel {
            Selector::Key(id) => (vec![id.clone()], None),
            Selector::User(u) => {
                let chosen: Vec<KeyId> = self
                    .user_keys(u)
                    .into_iter()
                    .map(|(k, _)| k.clone())
                    .collect();
                (chosen, None)
            }
            Selector::All | Selector::Rhost(_) => {
                // An address lifts every lock that covers it (its own, a range,
                // a prefix); a network, those and every lock inside it.
                let (source, target) = match sel {
                    Selector::Rhost(r) => (Some(self.source_of_rhost(r)), rhost_net(r)),
                    _ => (None, None),
                };
                use std::ops::Bound::{Excluded, Unbounded};
                let lower = after.map_or(Unbounded, Excluded);
                let mut scanned = 0;
                let mut last = None;
                let mut chosen = Vec::new();
                for k in self.keys.range((lower, Unbounded)).map(|(k, _)| k) {
                    scanned += 1;
                    last = Some(k.clone());
                    let hit = match &source {
                        None => true,
                        Some(s) => {
                            let part = k.part("rhost");
                            part == Some(s.as_str())
                                || target
                                    .zip(part.and_then(rhost_net))
                                    .is_some_and(|(t, n)| n.contains(&t) || t.contains(&n))
                        }
                    };
                    if hit {
                        chosen.push(k.clone());
                    }
                    if scanned >= limit {
                        break;
                    }
                }
                (chosen, last.filter(|_| scanned >= limit))
            }
        };
        let mut out = Unlocked {
            cleared: 0,
            lifted: Vec::new(),
            next,
        };
        for k in &chosen {
            let Some(st) = self.keys.remove(k) else {
                continue;
            };
            out.cleared += 1;
            if let Some(lock) = st.lock() {
                self.locks.remove(k, lock.until);
                self.attribution.detach(k);
                let mut e = Event::about_key(now, self.unlocked_kind(k), k);
                e.by = Some(format!("uid={by_uid}"));
                fx.events.push(e);
                out.lifted.push(k.clone());
            }
            fx.keys.push((k.clone(), None));
        }
        out
    }

    /// Sets an admin lock on a user or an rhost; `length: None` is permanent.
    pub fn admin_lock(&mut self, req: &AdminLock, now: Time, fx: &mut Effects) -> KeyId {
        self.tick(now, fx);
        let AdminLock {
            target,
            value,
            length,
            reason,
            by_uid,
        } = req;
        let (target, length, by_uid) = (*target, *length, *by_uid);
        let value = match target {
            Field::Rhost => self.admin_rhost(value),
            _ => value.to_string(),
        };
        let k = KeyId::new(ADMIN_RULE, [(target.name(), value.as_str())]);
        let until = length.map(|d| now.plus(d));
        self.set_lock(
            &k,
            Lock {
                since: now,
                until,
                length_ms: length.map(millis),
                by: LockedBy::Admin {
                    uid: by_uid,
                    reason: reason.to_string(),
                },
            },
            now,
        );
        let st = self.keys.get(&k).cloned();
        let mut e = Event::about_key(now, EventKind::Locked, &k);
        e.until = Some(Until::from_option(until));
        e.by = Some(format!("uid={by_uid}"));
        e.reason = Some(reason.to_string());
        fx.events.push(e);
        fx.keys.push((k.clone(), st));
        k
    }

    /// All of [`unlock_page`](Self::unlock_page) at once (tests, fuzzing).
    pub fn unlock(&mut self, sel: &Selector, by_uid: u32, now: Time, fx: &mut Effects) -> usize {
        let mut page = self.unlock_page(sel, by_uid, None, 4096, now, fx);
        let mut n = page.cleared;
        while let Some(next) = page.next {
            page = self.unlock_page(sel, by_uid, Some(&next), 4096, now, fx);
            n += page.cleared;
        }
        n
    }

    pub(super) fn admin_keys(&self, attempt: &Attempt) -> Vec<KeyId> {
        let mut keys = vec![KeyId::new(ADMIN_RULE, [("user", attempt.user.as_str())])];
        if let Some(r) = attempt.rhost.as_deref().filter(|r| !r.is_empty()) {
            let source = self.source_of_rhost(r);
            keys.push(KeyId::new(ADMIN_RULE, [("rhost", source.as_str())]));
            if let Some(ip) = parse_ip(r) {
                for net in self.locks.ranges_containing(ip) {
                    keys.push(KeyId::new(
                        ADMIN_RULE,
                        [("rhost", net.to_string().as_str())],
                    ));
                }
            }
        }
        keys
    }

    /// How an admin's `--rhost` value is keyed: an address as its source, a
    /// network no wider than a source likewise, a wider one as itself.
    pub(super) fn admin_rhost(&self, value: &str) -> String {
        let Ok(net) = value.parse::<ipnet::IpNet>() else {
            return self.source_of_rhost(value);
        };
        let source_len = match net {
            ipnet::IpNet::V4(_) => self.policy.ipv4_prefix,
            ipnet::IpNet::V6(_) => self.policy.ipv6_prefix,
        };
        if net.prefix_len() >= source_len {
            cut(net.addr(), self.prefixes())
        } else {
            net.trunc().to_string()
        }
    }
}

impl Engine {
    /// Copies a lock made or lifted elsewhere (the fleet) into this engine,
    /// so that it still stands if this host must decide alone. Nothing is
    /// logged for it here: the fleet's event is. False when it changed
    /// nothing (an unlock of a lock this engine had already seen end).
    pub fn mirror_lock(
        &mut self,
        k: &KeyId,
        lock: Option<Lock>,
        now: Time,
        fx: &mut Effects,
    ) -> bool {
        match lock {
            Some(lock) => {
                let rule_lock = lock.by == LockedBy::Rule;
                self.set_lock(k, lock, now);
                if rule_lock {
                    // set_lock counts a rule lock as a lockout here; the
                    // fleet already counted it.
                    if let Some(st) = self.keys.get_mut(k) {
                        st.pop_lockout();
                    }
                }
            }
            None => {
                let Some(st) = self.keys.remove(k) else {
                    return false;
                };
                let Some(l) = st.lock() else {
                    fx.keys.push((k.clone(), None));
                    return false;
                };
                self.locks.remove(k, l.until);
                self.attribution.detach(k);
            }
        }
        fx.keys.push((k.clone(), self.keys.get(k).cloned()));
        true
    }

    /// This run's epoch, the high half of every attempt id it issues.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
}
