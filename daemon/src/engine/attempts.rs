//! Attempts from begin to end: reservations, failures, successes, codes,
//! and the account check. The table's expiries are not resolved here (see
//! `expiry`): a login settles only the keys it touches, so its answer never
//! waits on unrelated ones.

use super::*;

impl Engine {
    /// What `begin` would answer for this attempt now, without acting on it:
    /// `begin` acts on it and `explain` only tells it, so the two can never
    /// disagree. An expired lock counts as lifted and its failures as none,
    /// as the next settle leaves them. Crowding is `begin`'s own: it is about
    /// the attempts in flight, not about this one.
    pub(super) fn judge(&self, attempt: &Attempt, origin: Origin, now: Time) -> Judgement {
        let rhost = attempt.rhost.as_deref().filter(|r| !r.is_empty());
        let ip = rhost.and_then(parse_ip);
        let source = self.source(attempt);
        let familiar = self.familiar_for(attempt, &source, origin, now);
        let keys = self.keys_for(attempt, origin, &source, familiar, false);
        let admin = self.admin_keys(attempt);
        // Locks that cover more than this attempt's own keys: the address's
        // prefix, the user's overflow keys and the wrong-code rule. A familiar
        // source is spared the first two: someone else's neighbours cannot
        // lock the owner out of a place the owner has logged in from.
        let mut others = Vec::new();
        if !familiar {
            others.extend(ip.and_then(|ip| self.prefix_key(ip)));
            others.extend(self.overflow_keys(attempt, origin, &source));
        }
        others.push(self.code_key(attempt));
        others.extend(self.code_only_keys(attempt, origin, &source, familiar));
        let allowlisted = self.allowlisted(attempt, ip);
        let mut j = Judgement {
            ip,
            source,
            familiar,
            allowlisted,
            keys,
            admin,
            others,
            locked: Vec::new(),
            reason: Reason::plain(ReasonKind::Clear),
            would: None,
        };
        j.reason = self.reason_for(attempt, &mut j, now);
        j
    }

    /// The answer, and in `j.would` the first refusal that observe mode
    /// waived: what `enforce` would have answered instead.
    fn reason_for(&self, attempt: &Attempt, j: &mut Judgement, now: Time) -> Reason {
        let observe = self.policy.observe;
        let denied =
            j.ip.is_some_and(|ip| contains(&self.policy.deny_rhosts, ip));
        // A name cannot be checked against [deny]; rather than let it through
        // unchecked, a host with a deny list refuses it.
        let named = attempt.rhost.as_deref().is_some_and(|r| !r.is_empty());
        let unverifiable = named && j.ip.is_none() && !self.policy.deny_rhosts.is_empty();
        for (hit, kind) in [
            (denied, ReasonKind::Denied),
            (unverifiable, ReasonKind::Unverifiable),
        ] {
            if hit && !observe {
                return Reason::plain(kind);
            }
            if hit {
                j.would.get_or_insert(Reason::plain(kind));
            }
        }
        // An admin's explicit lock outranks the allowlist.
        j.locked = j
            .admin
            .iter()
            .filter(|k| self.is_locked(k, now))
            .cloned()
            .collect();
        if !j.locked.is_empty() {
            return self.locked_reason(&j.locked);
        }
        if j.allowlisted {
            return Reason::plain(ReasonKind::Allowlisted);
        }
        let (mut observed, mut enforced): (Vec<KeyId>, Vec<KeyId>) = j
            .keys
            .iter()
            .map(|(_, k)| k)
            .chain(j.others.iter())
            .filter(|k| self.is_locked(k, now))
            .cloned()
            .partition(|k| self.observed(k));
        if !enforced.is_empty() {
            enforced.sort();
            enforced.dedup();
            j.locked = enforced;
            return self.locked_reason(&j.locked);
        }
        if !observed.is_empty() {
            observed.sort();
            observed.dedup();
            j.would.get_or_insert(self.locked_reason(&observed));
        }
        // Exactness: failures already counted plus attempts still in flight may
        // not exceed the limit, so no more than `limit` password checks can run.
        let mut closest: Option<(usize, &KeyId, u32)> = None;
        for (rule_idx, k) in &j.keys {
            let rule = &self.policy.rules[*rule_idx];
            let expired = self
                .keys
                .get(k)
                .and_then(|s| s.lock())
                .is_some_and(|l| l.expired(now));
            let failures = if expired {
                0
            } else {
                self.failures_in_window(k, rule, now)
            };
            let reserved = self.reserved.get(k).copied().unwrap_or(0);
            if failures + reserved >= rule.limit {
                let busy = rule_reason(ReasonKind::Busy, rule, k, failures);
                if !rule.observe {
                    return busy;
                }
                j.would.get_or_insert(busy);
            }
            let used = failures + reserved;
            let closer = closest.is_none_or(|(ci, _, cu)| {
                u64::from(used) * u64::from(self.policy.rules[ci].limit)
                    > u64::from(cu) * u64::from(rule.limit)
            });
            if closer {
                closest = Some((*rule_idx, k, failures));
            }
        }
        match closest {
            Some((ri, k, failures)) => {
                rule_reason(ReasonKind::Clear, &self.policy.rules[ri], k, failures)
            }
            None => Reason::plain(ReasonKind::Clear),
        }
    }

    /// Starts an attempt: refuses it, or reserves its place under every rule.
    pub fn begin(
        &mut self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
        fx: &mut Effects,
    ) -> Verdict {
        let j = self.judge(attempt, origin, now);
        if matches!(j.reason.kind, ReasonKind::Denied | ReasonKind::Unverifiable) {
            return self.refuse(attempt, origin, now, j.reason, fx);
        }
        if let Some(uid) = self.crowded(origin) {
            self.pressure.crowded += 1;
            self.pressure.last_crowded = Some(now);
            fx.alerts.push(Alert::Crowded {
                in_flight: self.pending.len(),
                uid,
            });
            return self.refuse(attempt, origin, now, Reason::plain(ReasonKind::Crowded), fx);
        }
        match j.reason.kind {
            ReasonKind::Allowlisted => {
                let id = self.add_pending(attempt, origin, Vec::new(), true, now);
                Verdict {
                    attempt: Some(id),
                    reason: j.reason,
                }
            }
            ReasonKind::Locked => {
                let mut reason = j.reason;
                // An admin's lock is not a cool-off: only rule locks restart,
                // and the answer then gives their new end.
                if self.policy.extend_on_failure_while_locked && reason.admin.is_none() {
                    for k in &j.locked {
                        self.restart_cool_off(k, now, fx);
                    }
                    reason = self.locked_reason(&j.locked);
                }
                self.refuse(attempt, origin, now, reason, fx)
            }
            ReasonKind::Clear => {
                if let Some(would) = &j.would {
                    let mut e = refused_event(attempt, origin, now, would);
                    e.kind = EventKind::WouldRefuse;
                    fx.events.push(e);
                }
                let ids: Vec<KeyId> = j.keys.into_iter().map(|(_, k)| k).collect();
                for k in &ids {
                    self.settle(k, now, fx);
                    *self.reserved.entry(k.clone()).or_insert(0) += 1;
                }
                let id = self.add_pending(attempt, origin, ids, false, now);
                Verdict {
                    attempt: Some(id),
                    reason: j.reason,
                }
            }
            _ => self.refuse(attempt, origin, now, j.reason, fx),
        }
    }

    /// Records a failed attempt. `id` may be unknown: the daemon restarted in
    /// between, and the failure is then counted from the attempt's own fields.
    pub fn fail(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        kind: FailureKind,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        match self.take_pending(id, attempt, origin)? {
            Taken::Found(p) => {
                self.count_failure(&p.attempt, p.origin, &p.keys, p.allowlisted, kind, now, fx)
            }
            Taken::Stale => {
                let keys = self.resolve_keys_afresh(attempt, origin, now);
                let allow = self.allowlisted(attempt, attempt.rhost.as_deref().and_then(parse_ip));
                self.count_failure(attempt, origin, &keys, allow, kind, now, fx)
            }
            // Already resolved, or already counted when it was abandoned.
            Taken::Resolved => {}
        }
        Ok(())
    }

    /// The password passed and a code is needed: the attempt keeps its places
    /// and gets a fresh `attempt_timeout` to answer. False when the attempt is
    /// not pending in this run (the daemon restarted): the login must start over.
    pub fn await_code(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<bool, AttemptError> {
        let Some(id) = id else {
            return Ok(false);
        };
        let timeout = self.policy.attempt_timeout;
        let Some(p) = self.pending.get_mut(&id) else {
            return Ok(false);
        };
        check_owner(p, attempt, origin)?;
        self.deadlines.remove(&(p.deadline, id));
        p.deadline = now.plus(timeout);
        p.awaiting_code = true;
        self.deadlines.insert((p.deadline, id));
        Ok(true)
    }

    /// Whether this attempt passed its password and waits for a code.
    pub fn awaiting_code(&self, id: Option<AttemptId>, attempt: &Attempt, origin: Origin) -> bool {
        id.and_then(|id| self.pending.get(&id))
            .is_some_and(|p| p.awaiting_code && check_owner(p, attempt, origin).is_ok())
    }

    /// Ends an attempt that passed its password but may not log in (a code is
    /// required and none is set up): not a failure, but refused and audited.
    pub fn refuse_after_password(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        why: &str,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        self.take_pending(id, attempt, origin)?;
        let mut e = attempt_event(attempt, origin, now, EventKind::Refused);
        e.reason = Some(why.to_string());
        fx.events.push(e);
        Ok(())
    }

    /// Ends an attempt in which no password was given (the conversation was
    /// cut, or ended with an empty answer at the end of input): its place is
    /// freed and nothing is counted, as nothing was guessed.
    pub fn release(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        self.take_pending(id, attempt, origin)?;
        fx.events
            .push(attempt_event(attempt, origin, now, EventKind::Aborted));
        Ok(())
    }

    /// Records a successful attempt. From an unprivileged peer it only frees
    /// the attempt's places: that peer may be whoever holds the user's shell,
    /// and its word must not reset a count or make a source familiar.
    pub fn succeed(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        let taken = self.take_pending(id, attempt, origin)?;
        let mut e = attempt_event(attempt, origin, now, EventKind::Success);
        e.failures = None;
        fx.events.push(e);
        if origin != Origin::Root {
            return Ok(());
        }
        let mut keys = match taken {
            Taken::Found(p) => p.keys,
            // A success reported after its attempt timed out still resets: the
            // user was just slow at the prompt.
            Taken::Stale | Taken::Resolved => self.resolve_keys_afresh(attempt, origin, now),
        };
        keys.push(self.code_key(attempt));
        if self.policy.reset_on_success {
            for k in &keys {
                let tracks_user = self
                    .rule_named(k.rule())
                    .is_some_and(|r| r.tracks(Field::User));
                if !tracks_user {
                    // One good login from an address behind NAT must not wipe
                    // an attacker's record on that address.
                    continue;
                }
                if let Some(st) = self.keys.get_mut(k) {
                    if !st.failures.is_empty() {
                        st.failures.clear();
                        st.last_active = now;
                        fx.keys.push((k.clone(), Some(st.clone())));
                    }
                }
            }
        }
        if self.policy.familiar_enabled {
            let pair = (attempt.user.clone(), self.source(attempt));
            self.familiar.insert(pair.clone(), now);
            fx.familiar.push((pair, Some(now)));
        }
        self.evict_if_full(&keys, now, fx);
        Ok(())
    }

    /// For `account` with enforce_in_account: the lock, if any, on a key of this
    /// attempt that tracks the user (logins that skipped auth, like ssh keys).
    pub fn account_lock(&self, attempt: &Attempt, origin: Origin, now: Time) -> Option<Reason> {
        let source = self.source(attempt);
        let familiar = self.familiar_for(attempt, &source, origin, now);
        let mut locked: Vec<KeyId> = self
            .keys_for(attempt, origin, &source, familiar, false)
            .into_iter()
            .filter(|(i, _)| self.policy.rules[*i].tracks(Field::User))
            .map(|(_, k)| k)
            .chain(std::iter::once(KeyId::new(
                ADMIN_RULE,
                [("user", attempt.user.as_str())],
            )))
            .chain([self.code_key(attempt)])
            .filter(|k| self.is_locked(k, now) && !self.observed(k))
            .collect();
        if locked.is_empty() {
            return None;
        }
        locked.sort();
        Some(self.locked_reason(&locked))
    }

    /// Why an attempt from `origin` may not be added, if it may not: the uid
    /// that is at its own bound, or `None` inside for the global one.
    pub(super) fn crowded(&self, origin: Origin) -> Option<Option<u32>> {
        if self.pending.len() >= self.policy.max_attempts_in_flight {
            return Some(None);
        }
        if let Origin::Peer(uid) = origin {
            let mine = self.per_uid.get(&uid).copied().unwrap_or(0);
            if mine >= self.policy.max_attempts_per_uid {
                return Some(Some(uid));
            }
        }
        None
    }

    pub(super) fn add_pending(
        &mut self,
        attempt: &Attempt,
        origin: Origin,
        keys: Vec<KeyId>,
        allowlisted: bool,
        now: Time,
    ) -> AttemptId {
        self.counter = self.counter.wrapping_add(1);
        let id = AttemptId((u64::from(self.epoch) << 32) | u64::from(self.counter));
        let deadline = now.plus(self.policy.attempt_timeout);
        self.deadlines.insert((deadline, id));
        if let Origin::Peer(uid) = origin {
            *self.per_uid.entry(uid).or_insert(0) += 1;
        }
        self.pending.insert(
            id,
            Pending {
                attempt: attempt.clone(),
                origin,
                keys,
                allowlisted,
                deadline,
                awaiting_code: false,
            },
        );
        id
    }

    pub(super) fn take_pending(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
    ) -> Result<Taken, AttemptError> {
        let Some(id) = id else {
            return Ok(Taken::Stale);
        };
        if (id.0 >> 32) as u32 != self.epoch {
            return Ok(Taken::Stale);
        }
        let Some(p) = self.pending.get(&id) else {
            return Ok(Taken::Resolved);
        };
        check_owner(p, attempt, origin)?;
        let Some(p) = self.pending.remove(&id) else {
            return Ok(Taken::Resolved);
        };
        self.deadlines.remove(&(p.deadline, id));
        self.forget_pending(&p);
        if p.origin == Origin::Root {
            if let Some(w) = self.wiring_of(&p.attempt.service) {
                *w = Wiring {
                    ended: true,
                    unreported: 0,
                };
            }
        }
        Ok(Taken::Found(p))
    }

    pub(super) fn wiring_of(&mut self, service: &str) -> Option<&mut Wiring> {
        if !self.wiring.contains_key(service) && self.wiring.len() >= MAX_SERVICES {
            return None;
        }
        Some(self.wiring.entry(service.to_string()).or_default())
    }

    /// An abandoned root attempt of a service that has never reported an end:
    /// counts it, raises the alert when the service crosses the line, and
    /// says whether it is past it (and so not to be counted as a failure).
    pub(super) fn unreported(&mut self, p: &Pending, fx: &mut Effects) -> bool {
        if p.origin != Origin::Root {
            return false;
        }
        let Some(w) = self.wiring_of(&p.attempt.service) else {
            return false;
        };
        if w.ended {
            return false;
        }
        w.unreported = w.unreported.saturating_add(1);
        if w.unreported == HALF_WIRED_AFTER {
            fx.alerts.push(Alert::HalfWired {
                service: p.attempt.service.clone(),
            });
        }
        w.unreported >= HALF_WIRED_AFTER
    }

    /// Services that begin attempts and have never said how one ended.
    pub fn half_wired(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .wiring
            .iter()
            .filter(|(_, w)| !w.ended && w.unreported >= HALF_WIRED_AFTER)
            .map(|(s, _)| s.clone())
            .collect();
        out.sort();
        out
    }

    /// Releases what a pending attempt held: its places and its uid's count.
    pub(super) fn forget_pending(&mut self, p: &Pending) {
        for k in &p.keys {
            if let Some(n) = self.reserved.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.reserved.remove(k);
                }
            }
        }
        if let Origin::Peer(uid) = p.origin {
            if let Some(n) = self.per_uid.get_mut(&uid) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_uid.remove(&uid);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn count_failure(
        &mut self,
        attempt: &Attempt,
        origin: Origin,
        keys: &[KeyId],
        allowlisted: bool,
        kind: FailureKind,
        now: Time,
        fx: &mut Effects,
    ) {
        let mut e = attempt_event(
            attempt,
            origin,
            now,
            match kind {
                FailureKind::Password | FailureKind::Repeat => EventKind::Failure,
                FailureKind::Totp | FailureKind::TotpReplayed => EventKind::TotpFailure,
                FailureKind::Abandoned => EventKind::Abandoned,
            },
        );
        match kind {
            FailureKind::Totp => e.reason = Some("wrong".into()),
            FailureKind::TotpReplayed => e.reason = Some("replayed".into()),
            _ => {}
        }
        if allowlisted {
            // Allowlisted attempts are recorded but never counted toward a lock.
            e.reason.get_or_insert_with(|| "allowlisted".into());
            fx.events.push(e);
            return;
        }
        if kind == FailureKind::Repeat {
            // Not a new guess: a stale password in a phone or a mail client.
            e.reason = Some("repeat".into());
            fx.events.push(e);
            return;
        }
        fx.events.push(e);
        let mut keys = keys.to_vec();
        if kind.is_code() {
            // A code belongs to the user, not to a service: a wrong one counts
            // in every rule that tracks the user, whatever its `services`, so
            // that no service name makes code guessing free.
            for k in self.code_keys(attempt, origin, now) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let ip = attempt.rhost.as_deref().and_then(parse_ip);
        for k in &keys {
            let Some(rule) = self.rule_named(k.rule()).cloned() else {
                continue;
            };
            self.fail_key(k, &rule, attempt, ip, now, fx);
        }
        self.evict_if_full(&keys, now, fx);
    }

    pub(super) fn fail_key(
        &mut self,
        k: &KeyId,
        rule: &Rule,
        attempt: &Attempt,
        ip: Option<IpAddr>,
        now: Time,
        fx: &mut Effects,
    ) {
        let memory = self.policy.escalation_memory;
        let extend = self.policy.extend_on_failure_while_locked;
        self.settle(k, now, fx);
        let st = self.keys.entry(k.clone()).or_default();
        st.prune(rule.window, memory, now);
        st.failures.push(now);
        let limit = usize::try_from(rule.limit).unwrap_or(usize::MAX);
        if st.failures.len() > limit {
            let excess = st.failures.len() - limit;
            st.failures.drain(..excess);
        }
        st.last_active = now;
        if st.lock().is_some() {
            // A failure from an attempt that began before the lock landed.
            if extend {
                self.restart_cool_off(k, now, fx);
            } else {
                let st = st.clone();
                fx.keys.push((k.clone(), Some(st)));
            }
            return;
        }
        if st.failures.len() >= limit {
            let n = st.lockouts().len() + 1;
            let failures = u32::try_from(st.failures.len()).unwrap_or(u32::MAX);
            let until = self.lock_by_rule(k, rule, n, now);
            let kind = if rule.observe {
                EventKind::WouldLock
            } else {
                EventKind::Locked
            };
            let mut e = Event::about_key(now, kind, k);
            // The attempt that tipped the key over says where it came from.
            e.service = Some(attempt.service.clone());
            e.user = e.user.or_else(|| Some(attempt.user.clone()));
            e.rhost = e.rhost.or_else(|| attempt.rhost.clone());
            e.failures = Some(failures);
            e.until = Some(Until::from_option(until));
            fx.events.push(e);
            if let Some(st) = self.keys.get(k) {
                fx.keys.push((k.clone(), Some(st.clone())));
            }
            if let Some(ip) = ip {
                self.attribute(k, ip, now, fx);
            }
            return;
        }
        let st = st.clone();
        fx.keys.push((k.clone(), Some(st)));
    }

    /// Counts a new lock against the prefix its attempt came from; once the
    /// prefix has tipped `[aggregate] locks` live locks, it is locked itself.
    pub(super) fn attribute(&mut self, lock: &KeyId, ip: IpAddr, now: Time, fx: &mut Effects) {
        let (Some(agg), Some(prefix)) = (self.policy.aggregate.clone(), self.prefix_of(ip)) else {
            return;
        };
        let n = self.attribution.attach(lock, prefix.clone());
        let pk = KeyId::new(PREFIX_RULE, [("rhost", prefix.as_str())]);
        if n < agg.locks || self.is_locked(&pk, now) {
            return;
        }
        let times = self.keys.get(&pk).map_or(0, |s| {
            s.lockouts()
                .iter()
                .filter(|t| **t > now.minus(self.policy.escalation_memory))
                .count()
        });
        let until = self.lock_by_rule(&pk, &agg.rule, times + 1, now);
        let kind = if agg.rule.observe {
            EventKind::WouldLock
        } else {
            EventKind::Locked
        };
        let mut e = Event::about_key(now, kind, &pk);
        e.failures = Some(n);
        e.until = Some(Until::from_option(until));
        e.reason = Some(format!("{n} locks from this prefix"));
        fx.events.push(e);
        fx.keys.push((pk.clone(), self.keys.get(&pk).cloned()));
    }

    pub(super) fn refuse(
        &self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
        reason: Reason,
        fx: &mut Effects,
    ) -> Verdict {
        fx.events.push(refused_event(attempt, origin, now, &reason));
        Verdict {
            attempt: None,
            reason,
        }
    }
}

pub(super) enum Taken {
    Found(Pending),
    /// From before a restart, or never issued: count it from its own fields.
    Stale,
    /// Already resolved in this run.
    Resolved,
}

/// An unprivileged peer may end only the attempts it began itself, or it could
/// end a root peer's attempt before its failure arrives and so uncount it.
fn check_owner(p: &Pending, attempt: &Attempt, origin: Origin) -> Result<(), AttemptError> {
    if p.attempt.user != attempt.user {
        return Err(AttemptError::UserMismatch);
    }
    if origin != Origin::Root && p.origin != origin {
        return Err(AttemptError::NotYours);
    }
    Ok(())
}

/// What `judge` found: the attempt's keys, the locks around them, and the
/// answer `begin` would give.
pub(super) struct Judgement {
    pub(super) ip: Option<IpAddr>,
    pub(super) source: String,
    pub(super) familiar: bool,
    pub(super) allowlisted: bool,
    /// The attempt's own keys, one per rule that applies.
    pub(super) keys: Vec<(usize, KeyId)>,
    /// An admin's possible locks on it: the user, the address, ranges.
    pub(super) admin: Vec<KeyId>,
    /// Prefix, overflow and wrong-code keys.
    pub(super) others: Vec<KeyId>,
    /// The locks that refuse it, when `reason` is `Locked`.
    pub(super) locked: Vec<KeyId>,
    pub(super) reason: Reason,
    /// What observe mode let through that `enforce` would have refused.
    pub(super) would: Option<Reason>,
}
