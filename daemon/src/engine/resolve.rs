//! Key resolution: which keys an attempt counts against, what its source is,
//! and whether a key is locked.

use super::*;

impl Engine {
    pub(super) fn is_locked(&self, k: &KeyId, now: Time) -> bool {
        self.keys
            .get(k)
            .and_then(|s| s.lock())
            .is_some_and(|l| !l.expired(now))
    }

    /// A lock that observe mode keeps but does not enforce: a rule's (or
    /// wardend's own prefix and code rules') while its rule observes. An
    /// admin's lock is always enforced; so is a lock whose rule is gone.
    pub(super) fn observed(&self, k: &KeyId) -> bool {
        let by_rule = self
            .keys
            .get(k)
            .and_then(|s| s.lock())
            .is_none_or(|l| l.by == LockedBy::Rule);
        by_rule && self.policy.observes(k.rule())
    }

    /// How the end of `k`'s lock is logged: observe mode's lock ends quietly,
    /// so that no hook or firewall hears of a lock it never saw.
    pub(super) fn unlocked_kind(&self, k: &KeyId) -> EventKind {
        if self.observed(k) {
            EventKind::WouldUnlock
        } else {
            EventKind::Unlocked
        }
    }

    pub(super) fn is_tracked(&self, k: &KeyId) -> bool {
        self.keys.contains_key(k) || self.reserved.contains_key(k)
    }

    pub(super) fn locked_reason(&self, locked: &[KeyId]) -> Reason {
        // Report the lock that lasts longest.
        let mut best: Option<(&KeyId, &KeyState)> = None;
        for k in locked {
            let Some(st) = self.keys.get(k) else { continue };
            let until = |s: &KeyState| s.lock().map(|l| l.until.map_or(u64::MAX, |t| t.0));
            if best.is_none_or(|(_, b)| until(st) > until(b)) {
                best = Some((k, st));
            }
        }
        match best {
            Some((k, st)) => Reason {
                kind: ReasonKind::Locked,
                rule: Some(k.rule().to_string()),
                key: Some(k.clone()),
                failures: u32::try_from(st.failures.len()).unwrap_or(u32::MAX),
                limit: self.rule_named(k.rule()).map_or(0, |r| r.limit),
                until: st.lock().map(|l| Until::from_option(l.until)),
                admin: st.lock().and_then(|l| match &l.by {
                    LockedBy::Admin { reason, .. } => Some(reason.clone()),
                    _ => None,
                }),
            },
            None => Reason::plain(ReasonKind::Locked),
        }
    }

    pub(super) fn failures_in_window(&self, k: &KeyId, rule: &Rule, now: Time) -> u32 {
        let cutoff = now.minus(rule.window);
        self.keys.get(k).map_or(0, |st| {
            u32::try_from(st.failures.iter().filter(|t| **t > cutoff).count()).unwrap_or(u32::MAX)
        })
    }

    /// A rule by name: the configured ones, and wardend's own `prefix` and `code`.
    pub(super) fn rule_named(&self, name: &str) -> Option<&Rule> {
        self.policy.rule_named(name)
    }

    /// The window of each rule by name, for purging.
    pub(super) fn rule_windows(&self) -> HashMap<String, Duration> {
        let mut out: HashMap<String, Duration> = self
            .policy
            .rules
            .iter()
            .map(|r| (r.name.clone(), r.window))
            .collect();
        if let Some(a) = &self.policy.aggregate {
            out.insert(a.rule.name.clone(), a.rule.window);
        }
        let c = &self.policy.code_rule;
        out.insert(c.name.clone(), c.window);
        out
    }

    /// The names of the rules whose keys may name a user.
    pub(super) fn user_rule_names(&self) -> Vec<&str> {
        self.policy
            .rules
            .iter()
            .filter(|r| r.tracks(Field::User))
            .map(|r| r.name.as_str())
            .chain([ADMIN_RULE])
            .chain([self.policy.code_rule.name.as_str()])
            .collect()
    }

    pub(super) fn prefixes(&self) -> Prefixes {
        Prefixes {
            v4: self.policy.ipv4_prefix,
            v6: self.policy.ipv6_prefix,
        }
    }

    pub(super) fn source_of_rhost(&self, rhost: &str) -> String {
        source_of(Some(rhost), None, self.prefixes())
    }

    pub(super) fn source(&self, attempt: &Attempt) -> String {
        source_of(
            attempt.rhost.as_deref(),
            attempt.ruser.as_deref(),
            self.prefixes(),
        )
    }

    /// The aggregate prefix an address belongs to, when aggregation is on.
    pub(super) fn prefix_of(&self, ip: IpAddr) -> Option<String> {
        let a = self.policy.aggregate.as_ref()?;
        Some(cut(
            ip,
            Prefixes {
                v4: a.ipv4_prefix,
                v6: a.ipv6_prefix,
            },
        ))
    }

    pub(super) fn prefix_key(&self, ip: IpAddr) -> Option<KeyId> {
        self.prefix_of(ip)
            .map(|p| KeyId::new(PREFIX_RULE, [("rhost", p.as_str())]))
    }

    /// The key of the wrong-code rule, when no configured rule tracks users.
    /// The user's key under the wrong-code rule.
    pub(super) fn code_key(&self, attempt: &Attempt) -> KeyId {
        KeyId::new(
            &self.policy.code_rule.name,
            [("user", attempt.user.as_str())],
        )
    }

    pub(super) fn allowlisted(&self, attempt: &Attempt, ip: Option<IpAddr>) -> bool {
        self.policy.allow_users.contains(&attempt.user)
            || ip.is_some_and(|ip| contains(&self.policy.allow_rhosts, ip))
    }

    /// Only a root peer's attempt can come from a familiar source: an
    /// unprivileged peer is never the owner at a known place.
    pub(super) fn familiar_for(
        &self,
        attempt: &Attempt,
        source: &str,
        origin: Origin,
        now: Time,
    ) -> bool {
        if !self.policy.familiar_enabled || origin != Origin::Root {
            return false;
        }
        let cutoff = now.minus(self.policy.familiar_remember);
        self.familiar
            .get(&(attempt.user.clone(), source.to_string()))
            .is_some_and(|t| *t > cutoff)
    }

    /// Whether a user name already holds `max_keys_per_user` keys.
    pub(super) fn user_at_cap(&self, user: &str) -> bool {
        let cap = self.policy.max_keys_per_user;
        let mut n = 0;
        for rule in self.user_rule_names() {
            let start = KeyId::user_range_start(rule, user);
            n += self
                .keys
                .range(&start..)
                .take_while(|(k, _)| k.within(&start))
                .take(cap - n.min(cap))
                .count();
            if n >= cap {
                return true;
            }
        }
        false
    }

    /// The keys this attempt counts against, one per rule that applies to it.
    /// `all_services` ignores the rules' `services` (wrong codes).
    pub(super) fn keys_for(
        &self,
        attempt: &Attempt,
        origin: Origin,
        source: &str,
        familiar: bool,
        all_services: bool,
    ) -> Vec<(usize, KeyId)> {
        let mut at_cap: Option<bool> = None;
        let mut out = Vec::with_capacity(self.policy.rules.len());
        for (i, rule) in self.policy.rules.iter().enumerate() {
            // An unprivileged peer names its own service: it cannot choose one
            // that no rule covers.
            let every_service = all_services || origin != Origin::Root;
            if !every_service && !rule.applies_to_service(&attempt.service) {
                continue;
            }
            // Wrong codes count whatever the rule's users, as whatever its
            // services: no one may guess codes without limit.
            if !all_services
                && !rule
                    .scope
                    .covers(&attempt.user, self.groups_of(&attempt.user))
            {
                continue;
            }
            // A rule that names root in `users` is the admin's explicit choice.
            if rule.tracks(Field::User)
                && attempt.user == "root"
                && !self.policy.lock_root
                && !rule.scope.names("root")
            {
                continue;
            }
            // Local logins share no address: keying them all under one "local"
            // rhost would let any local user lock every other out.
            if rule.tracks(Field::Rhost) && is_local(source) {
                continue;
            }
            let split = self.policy.familiar_enabled && splits_by_familiarity(rule);
            let input = KeyInput {
                service: &attempt.service,
                user: &attempt.user,
                source,
                tty: attempt.tty.as_deref().unwrap_or(""),
                familiar: split.then_some(familiar),
            };
            let exact = key_for(rule, &input);
            let mut k = exact.clone();
            if !familiar && !self.is_tracked(&exact) {
                if let Some(over) = overflow_key(rule, &input) {
                    let full = *at_cap.get_or_insert_with(|| self.user_at_cap(&attempt.user));
                    if full {
                        k = over;
                    }
                }
            }
            out.push((i, k));
        }
        out
    }

    /// The overflow keys of every rule this attempt's user could overflow in,
    /// for the lock check at begin.
    pub(super) fn overflow_keys(
        &self,
        attempt: &Attempt,
        origin: Origin,
        source: &str,
    ) -> Vec<KeyId> {
        self.policy
            .rules
            .iter()
            .filter(|r| origin != Origin::Root || r.applies_to_service(&attempt.service))
            .filter(|r| r.scope.covers(&attempt.user, self.groups_of(&attempt.user)))
            .filter(|r| !(r.tracks(Field::Rhost) && is_local(source)))
            .filter_map(|rule| {
                let split = self.policy.familiar_enabled && splits_by_familiarity(rule);
                overflow_key(
                    rule,
                    &KeyInput {
                        service: &attempt.service,
                        user: &attempt.user,
                        source,
                        tty: "",
                        familiar: split.then_some(false),
                    },
                )
            })
            .collect()
    }

    /// The keys of rules that track the user but whose `users` or `groups`
    /// leave this one out: only wrong codes count there (see `code_keys`),
    /// so a lock on one must refuse the user, or an exempt account's codes
    /// could be guessed without limit. A rule's `services` keep their say.
    pub(super) fn code_only_keys(
        &self,
        attempt: &Attempt,
        origin: Origin,
        source: &str,
        familiar: bool,
    ) -> Vec<KeyId> {
        let everyone = |r: &Rule| r.scope == crate::config::UserScope::default();
        if self.policy.rules.iter().all(everyone) {
            return Vec::new();
        }
        let groups = self.groups_of(&attempt.user);
        self.keys_for(attempt, origin, source, familiar, true)
            .into_iter()
            .filter(|(i, _)| {
                let r = &self.policy.rules[*i];
                r.tracks(Field::User)
                    && !r.scope.covers(&attempt.user, groups)
                    && (origin != Origin::Root || r.applies_to_service(&attempt.service))
            })
            .map(|(_, k)| k)
            .collect()
    }

    /// Where a wrong code counts: every rule that tracks the user, whatever
    /// its services, or the wrong-code rule when none does.
    pub(super) fn code_keys(&self, attempt: &Attempt, origin: Origin, now: Time) -> Vec<KeyId> {
        let source = self.source(attempt);
        let familiar = self.familiar_for(attempt, &source, origin, now);
        self.keys_for(attempt, origin, &source, familiar, true)
            .into_iter()
            .filter(|(i, _)| self.policy.rules[*i].tracks(Field::User))
            .map(|(_, k)| k)
            .chain([self.code_key(attempt)])
            .collect()
    }

    pub(super) fn resolve_keys_afresh(
        &self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Vec<KeyId> {
        let source = self.source(attempt);
        let familiar = self.familiar_for(attempt, &source, origin, now);
        self.keys_for(attempt, origin, &source, familiar, false)
            .into_iter()
            .map(|(_, k)| k)
            .collect()
    }
}
