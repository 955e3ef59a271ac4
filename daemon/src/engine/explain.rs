//! What `begin` would answer for an attempt now, and why, without changing
//! anything: for an admin asking why someone is refused. The answer is
//! `begin`'s own judgement (`Engine::judge`), so the two cannot drift apart.

use super::*;

/// One key an attempt counts against, or one lock that covers it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyReport {
    pub key: KeyId,
    /// Failures within the rule's window (0 once a lock has ended: the next
    /// login settles it).
    pub failures: u32,
    /// Places held by attempts in flight.
    pub in_flight: u32,
    pub limit: u32,
    /// Its lock, if one stands now.
    pub lock: Option<Lock>,
    /// Lockouts within the escalation memory.
    pub lockouts: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The attempt's source as rules key it (`203.0.113.0/24`, `local`, ...).
    pub source: String,
    /// Whether the source is familiar for this user (a success from it
    /// within `familiar.remember`).
    pub familiar: bool,
    /// The user's familiar sources, and when each was last seen.
    pub familiar_sources: Vec<(String, Time)>,
    pub allowlisted: bool,
    /// The keys the attempt counts against, one per rule that applies.
    pub keys: Vec<KeyReport>,
    /// Locks beyond those keys that cover the attempt: an admin's lock on the
    /// user, the address or a range, a prefix lock, the user's overflow keys
    /// and the wrong-code rule.
    pub covering: Vec<KeyReport>,
    /// What `begin` would answer now.
    pub verdict: Reason,
    /// In observe mode, the refusal it waives: what `enforce` would answer.
    pub would: Option<Reason>,
}

/// What stands against an address, whoever tries from it.
#[derive(Clone, Debug, PartialEq)]
pub struct AddressReport {
    pub source: String,
    pub denied: bool,
    pub allowlisted: bool,
    /// The keys of rules that track the address alone.
    pub keys: Vec<KeyReport>,
    /// Locks that cover it: an admin's on the address or a range, a prefix lock.
    pub covering: Vec<KeyReport>,
}

impl Engine {
    /// Locks and counts on an address, for `rhost-status`; read-only.
    pub fn address(&self, ip: IpAddr, now: Time) -> AddressReport {
        let rhost = ip.to_string();
        let source = self.source_of_rhost(&rhost);
        let keys = self
            .policy
            .rules
            .iter()
            .filter(|r| r.track == [Field::Rhost])
            .map(|r| {
                let k = KeyId::new(&r.name, [("rhost", source.as_str())]);
                self.key_report(&k, r.limit, now)
            })
            .collect();
        let probe = Attempt {
            service: String::new(),
            user: String::new(),
            rhost: Some(rhost),
            tty: None,
            ruser: None,
        };
        let covering = self
            .admin_keys(&probe)
            .into_iter()
            .filter(|k| k.part("rhost").is_some())
            .chain(self.prefix_key(ip))
            .filter(|k| self.is_locked(k, now))
            .map(|k| self.key_report(&k, self.rule_named(k.rule()).map_or(0, |r| r.limit), now))
            .collect();
        AddressReport {
            source,
            denied: contains(&self.policy.deny_rhosts, ip),
            allowlisted: contains(&self.policy.allow_rhosts, ip),
            keys,
            covering,
        }
    }

    fn key_report(&self, k: &KeyId, limit: u32, now: Time) -> KeyReport {
        let st = self.keys.get(k);
        let lock = st.and_then(|s| s.lock());
        let ended = lock.is_some_and(|l| l.expired(now));
        let failures = match self.rule_named(k.rule()) {
            _ if ended => 0,
            Some(rule) => self.failures_in_window(k, rule, now),
            None => st.map_or(0, |s| u32::try_from(s.failures.len()).unwrap_or(u32::MAX)),
        };
        KeyReport {
            key: k.clone(),
            failures,
            in_flight: self.reserved.get(k).copied().unwrap_or(0),
            limit,
            lock: lock.filter(|l| !l.expired(now)).cloned(),
            lockouts: st.map_or(0, |s| u32::try_from(s.lockouts().len()).unwrap_or(u32::MAX)),
        }
    }

    pub fn explain(&self, attempt: &Attempt, origin: Origin, now: Time) -> Explanation {
        let j = self.judge(attempt, origin, now);
        let cutoff = now.minus(self.policy.familiar_remember);
        let mut familiar_sources: Vec<(String, Time)> = self
            .familiar
            .iter()
            .filter(|((u, _), t)| *u == attempt.user && **t > cutoff)
            .map(|((_, s), t)| (s.clone(), *t))
            .collect();
        familiar_sources.sort_by_key(|s| std::cmp::Reverse(s.1));
        let keys = j
            .keys
            .iter()
            .map(|(i, k)| self.key_report(k, self.policy.rules[*i].limit, now))
            .collect();
        let covering = j
            .admin
            .iter()
            .chain(j.others.iter())
            .filter(|k| self.is_locked(k, now))
            .map(|k| self.key_report(k, self.rule_named(k.rule()).map_or(0, |r| r.limit), now))
            .collect();
        Explanation {
            source: j.source,
            familiar: j.familiar,
            familiar_sources,
            allowlisted: j.allowlisted,
            keys,
            covering,
            verdict: j.reason,
            would: j.would,
        }
    }
}
