//! The policy engine: pure logic, handed the time, doing no I/O.
//!
//! It decides whether an attempt may begin, remembers how attempts end, and says
//! what must be written and logged through [`Effects`]. The daemon applies the
//! effects; tests drive the engine with simulated time.

mod event;
mod key;
mod state;

pub use event::{Event, EventKind, Reason, ReasonKind, Until};
pub use key::{parse_ip, source_of, KeyId, ADMIN_RULE, LOCAL_SOURCE};
pub use state::{lockout_length, KeyState, Lock, LockedBy};

use crate::config::{Field, Policy, Rule};
use crate::time::{millis, Time};
use key::{key_for, splits_by_familiarity, KeyInput};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

/// One login attempt, as PAM describes it: the protocol's validated form.
pub use warden_proto::Attempt;

/// Names an attempt between its start and its end. The high half is the engine's
/// epoch, so an id from before a restart is recognised as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// `Some` when the attempt may go ahead.
    pub attempt: Option<AttemptId>,
    pub reason: Reason,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.attempt.is_some()
    }
}

/// What an operation asks the daemon to do: persist and log.
#[derive(Debug, Default)]
pub struct Effects {
    pub events: Vec<Event>,
    /// Full new state of each touched key; `None` deletes it.
    pub keys: Vec<(KeyId, Option<KeyState>)>,
    /// `(user, source)`: the time of the last success there, or `None` to forget it.
    pub familiar: Vec<((String, String), Option<Time>)>,
    /// TOTP records to write (`None` removes one). The engine never sets these;
    /// the service adds them so they commit with the attempt they belong to.
    pub totp: Vec<(String, Option<crate::totp::TotpRecord>)>,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.keys.is_empty()
            && self.familiar.is_empty()
            && self.totp.is_empty()
    }

    /// Appends another operation's effects, keeping their order.
    pub fn absorb(&mut self, other: Effects) {
        self.events.extend(other.events);
        self.keys.extend(other.keys);
        self.familiar.extend(other.familiar);
        self.totp.extend(other.totp);
    }
}

/// How a failure came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    Password,
    /// A wrong second-factor code: it counts in the same rules as passwords.
    Totp,
    Abandoned,
}

/// An admin's lock on a user or an rhost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminLock {
    pub target: Field,
    pub value: String,
    /// `None`: permanent.
    pub length: Option<Duration>,
    pub reason: String,
    pub by_uid: u32,
}

/// What an admin unlock lifts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    User(String),
    Rhost(String),
    Key(KeyId),
    All,
}

struct Pending {
    attempt: Attempt,
    keys: Vec<KeyId>,
    allowlisted: bool,
    deadline: Time,
    /// The password passed; the attempt now waits for its TOTP code.
    awaiting_code: bool,
}

pub struct Engine {
    policy: Policy,
    /// A B-tree, not a hash map: its nodes are nearly full, where a hash table of
    /// a million entries sits at 48% load after its last doubling and so costs
    /// twice the memory. Lookups stay in the microseconds.
    keys: BTreeMap<KeyId, KeyState>,
    reserved: HashMap<KeyId, u32>,
    familiar: HashMap<(String, String), Time>,
    pending: HashMap<AttemptId, Pending>,
    deadlines: BTreeSet<(Time, AttemptId)>,
    expiries: BTreeSet<(Time, KeyId)>,
    epoch: u32,
    counter: u32,
}

impl Engine {
    /// `epoch` must differ between runs of the daemon (the daemon draws it at random).
    pub fn new(policy: Policy, epoch: u32) -> Engine {
        Engine {
            policy,
            keys: BTreeMap::new(),
            reserved: HashMap::new(),
            familiar: HashMap::new(),
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            expiries: BTreeSet::new(),
            epoch,
            counter: 0,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Swaps the policy; state under rules that no longer exist is purged later.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Loads state read back from the store.
    pub fn restore(
        &mut self,
        keys: impl IntoIterator<Item = (KeyId, KeyState)>,
        familiar: impl IntoIterator<Item = ((String, String), Time)>,
    ) {
        let keys = keys.into_iter().inspect(|(id, st)| {
            if let Some(until) = st.lock().and_then(|l| l.until) {
                self.expiries.insert((until, id.clone()));
            }
        });
        if self.keys.is_empty() {
            // Built in bulk from the store's sorted order: full nodes, no rebalancing.
            self.keys = keys.collect();
        } else {
            self.keys.extend(keys);
        }
        self.familiar.extend(familiar);
    }

    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    pub fn key(&self, id: &KeyId) -> Option<&KeyState> {
        self.keys.get(id)
    }

    /// Every key under a lock.
    pub fn locks(&self) -> impl Iterator<Item = (&KeyId, &KeyState)> {
        self.keys.iter().filter(|(_, st)| st.lock().is_some())
    }

    /// Every key that names this user, locked or not, with its state.
    pub fn user_keys(&self, user: &str) -> Vec<(&KeyId, &KeyState)> {
        self.keys
            .iter()
            .filter(|(k, _)| k.part("user") == Some(user))
            .collect()
    }

    pub fn pending_attempts(&self) -> usize {
        self.pending.len()
    }

    // ----- attempts -------------------------------------------------------

    /// Starts an attempt: refuses it, or reserves its place under every rule.
    pub fn begin(&mut self, attempt: &Attempt, now: Time, fx: &mut Effects) -> Verdict {
        self.tick(now, fx);
        let ip = attempt.rhost.as_deref().and_then(parse_ip);
        if ip.is_some_and(|ip| contains(&self.policy.deny_rhosts, ip)) {
            return self.refuse(attempt, now, Reason::plain(ReasonKind::Denied), fx);
        }
        // An admin's explicit lock outranks the allowlist.
        let admin_locked: Vec<KeyId> = self
            .admin_keys(attempt)
            .into_iter()
            .filter(|k| self.is_locked(k))
            .collect();
        if !admin_locked.is_empty() {
            return self.refuse(attempt, now, self.locked_reason(&admin_locked), fx);
        }
        if self.allowlisted(attempt, ip) {
            let id = self.add_pending(attempt, Vec::new(), true, now);
            return Verdict {
                attempt: Some(id),
                reason: Reason::plain(ReasonKind::Allowlisted),
            };
        }

        let keys = self.keys_for(attempt, now);
        let locked: Vec<KeyId> = keys
            .iter()
            .map(|(_, k)| k)
            .filter(|k| self.is_locked(k))
            .cloned()
            .collect();
        if !locked.is_empty() {
            if self.policy.extend_on_failure_while_locked {
                for k in &locked {
                    self.restart_cool_off(k, now, fx);
                }
            }
            return self.refuse(attempt, now, self.locked_reason(&locked), fx);
        }

        // Exactness: failures already counted plus attempts still in flight may
        // not exceed the limit, so no more than `limit` password checks can run.
        let mut closest: Option<(usize, &KeyId, u32)> = None;
        for (rule_idx, k) in &keys {
            let rule = &self.policy.rules[*rule_idx];
            let failures = self.failures_in_window(k, rule, now);
            let reserved = self.reserved.get(k).copied().unwrap_or(0);
            if failures + reserved >= rule.limit {
                let reason = Reason {
                    kind: ReasonKind::Busy,
                    rule: Some(rule.name.clone()),
                    key: Some(k.clone()),
                    failures,
                    limit: rule.limit,
                    until: None,
                };
                return self.refuse(attempt, now, reason, fx);
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
        let reason = match closest {
            Some((ri, k, failures)) => Reason {
                kind: ReasonKind::Clear,
                rule: Some(self.policy.rules[ri].name.clone()),
                key: Some(k.clone()),
                failures,
                limit: self.policy.rules[ri].limit,
                until: None,
            },
            None => Reason::plain(ReasonKind::Clear),
        };
        let ids: Vec<KeyId> = keys.into_iter().map(|(_, k)| k).collect();
        for k in &ids {
            *self.reserved.entry(k.clone()).or_insert(0) += 1;
        }
        let id = self.add_pending(attempt, ids, false, now);
        Verdict {
            attempt: Some(id),
            reason,
        }
    }

    /// Records a failed attempt. `id` may be unknown: the daemon restarted in
    /// between, and the failure is then counted from the attempt's own fields.
    pub fn fail(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        kind: FailureKind,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        self.tick(now, fx);
        match self.take_pending(id, attempt)? {
            Taken::Found(p) => {
                self.count_failure(&p.attempt, &p.keys, p.allowlisted, kind, now, fx)
            }
            Taken::Stale => {
                let keys = self.resolve_keys_afresh(attempt, now);
                let allow = self.allowlisted(attempt, attempt.rhost.as_deref().and_then(parse_ip));
                self.count_failure(attempt, &keys, allow, kind, now, fx)
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
        now: Time,
    ) -> Result<bool, AttemptError> {
        let Some(id) = id else {
            return Ok(false);
        };
        let timeout = self.policy.attempt_timeout;
        let Some(p) = self.pending.get_mut(&id) else {
            return Ok(false);
        };
        if p.attempt.user != attempt.user {
            return Err(AttemptError::UserMismatch);
        }
        self.deadlines.remove(&(p.deadline, id));
        p.deadline = now.plus(timeout);
        p.awaiting_code = true;
        self.deadlines.insert((p.deadline, id));
        Ok(true)
    }

    /// Whether this attempt passed its password and waits for a code.
    pub fn awaiting_code(&self, id: Option<AttemptId>, attempt: &Attempt) -> bool {
        id.and_then(|id| self.pending.get(&id))
            .is_some_and(|p| p.awaiting_code && p.attempt.user == attempt.user)
    }

    /// Ends an attempt that passed its password but may not log in (a code is
    /// required and none is set up): not a failure, but refused and audited.
    pub fn refuse_after_password(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        why: &str,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        self.tick(now, fx);
        self.take_pending(id, attempt)?;
        let mut e = attempt_event(attempt, now, EventKind::Refused);
        e.reason = Some(why.to_string());
        fx.events.push(e);
        Ok(())
    }

    /// Records a successful attempt.
    pub fn succeed(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        self.tick(now, fx);
        let keys = match self.take_pending(id, attempt)? {
            Taken::Found(p) => p.keys,
            // A success reported after its attempt timed out still resets: the
            // user was just slow at the prompt.
            Taken::Stale | Taken::Resolved => self.resolve_keys_afresh(attempt, now),
        };
        let mut e = attempt_event(attempt, now, EventKind::Success);
        e.failures = None;
        fx.events.push(e);
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
            let source = self.source(attempt);
            let pair = (attempt.user.clone(), source);
            self.familiar.insert(pair.clone(), now);
            fx.familiar.push((pair, Some(now)));
        }
        self.evict_if_full(fx);
        Ok(())
    }

    /// Resolves what time has decided: abandoned attempts become failures, and
    /// locks past their end are lifted (and logged, which pam_faillock never does).
    pub fn tick(&mut self, now: Time, fx: &mut Effects) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.pending.remove(&id) {
                self.release(&p.keys);
                self.count_failure(
                    &p.attempt,
                    &p.keys,
                    p.allowlisted,
                    FailureKind::Abandoned,
                    deadline,
                    fx,
                );
            }
        }
        while let Some((until, _)) = self.expiries.first() {
            if *until > now {
                break;
            }
            let Some((until, k)) = self.expiries.pop_first() else {
                break;
            };
            let Some(st) = self.keys.get_mut(&k) else {
                continue;
            };
            if st.lock().is_some_and(|l| l.until == Some(until)) {
                st.set_lock(None);
                // A finished cool-off starts a fresh budget; the lockout history
                // stays, so the next lock escalates.
                st.failures.clear();
                let mut e = Event::about_key(until, EventKind::Unlocked, &k);
                e.by = Some("expired".into());
                fx.events.push(e);
                fx.keys.push((k.clone(), Some(st.clone())));
            }
        }
    }

    // ----- admin ------------------------------------------------------------

    /// Lifts locks and clears counters (and escalation history) for the selected
    /// keys. Returns how many keys were cleared.
    pub fn unlock(&mut self, sel: &Selector, by_uid: u32, now: Time, fx: &mut Effects) -> usize {
        self.tick(now, fx);
        let source = match sel {
            Selector::Rhost(r) => Some(self.source_of_rhost(Some(r))),
            _ => None,
        };
        let chosen: Vec<KeyId> = self
            .keys
            .keys()
            .filter(|k| match sel {
                Selector::All => true,
                Selector::Key(id) => *k == id,
                Selector::User(u) => k.part("user") == Some(u.as_str()),
                Selector::Rhost(_) => k.part("rhost") == source.as_deref(),
            })
            .cloned()
            .collect();
        for k in &chosen {
            if let Some(st) = self.keys.remove(k) {
                if let Some(lock) = st.lock() {
                    if let Some(until) = lock.until {
                        self.expiries.remove(&(until, k.clone()));
                    }
                    let mut e = Event::about_key(now, EventKind::Unlocked, k);
                    e.by = Some(format!("uid={by_uid}"));
                    fx.events.push(e);
                }
                fx.keys.push((k.clone(), None));
            }
        }
        chosen.len()
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
            Field::Rhost => self.source_of_rhost(Some(value)),
            _ => value.to_string(),
        };
        let k = KeyId::new(ADMIN_RULE, [(target.name(), value.as_str())]);
        let until = length.map(|d| now.plus(d));
        let st = self.keys.entry(k.clone()).or_default();
        if let Some(old) = st.lock().and_then(|l| l.until) {
            self.expiries.remove(&(old, k.clone()));
        }
        st.set_lock(Some(Lock {
            since: now,
            until,
            length_ms: length.map(millis),
            by: LockedBy::Admin {
                uid: by_uid,
                reason: reason.to_string(),
            },
        }));
        st.last_active = now;
        let st = st.clone();
        if let Some(until) = until {
            self.expiries.insert((until, k.clone()));
        }
        let mut e = Event::about_key(now, EventKind::Locked, &k);
        e.until = Some(Until::from_option(until));
        e.by = Some(format!("uid={by_uid}"));
        e.reason = Some(reason.to_string());
        fx.events.push(e);
        fx.keys.push((k.clone(), Some(st)));
        k
    }

    /// Drops what no longer matters: idle keys, keys of rules that were removed,
    /// and familiar sources past `familiar.remember`.
    pub fn purge(&mut self, now: Time, fx: &mut Effects) {
        self.tick(now, fx);
        let memory = self.policy.escalation_memory;
        let mut dead = Vec::new();
        for (k, st) in self.keys.iter_mut() {
            if self.reserved.contains_key(k) {
                continue;
            }
            let window = match self.policy.rules.iter().find(|r| r.name == k.rule()) {
                Some(rule) => rule.window,
                None if st.lock().is_some() => continue,
                None => {
                    dead.push(k.clone());
                    continue;
                }
            };
            let before = (st.failures.len(), st.lockouts().len());
            st.prune(window, memory, now);
            if st.is_idle() {
                dead.push(k.clone());
            } else if before != (st.failures.len(), st.lockouts().len()) {
                fx.keys.push((k.clone(), Some(st.clone())));
            }
        }
        for k in dead {
            self.keys.remove(&k);
            fx.keys.push((k, None));
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
    }

    /// For `account` with enforce_in_account: the lock, if any, on a key of this
    /// attempt that tracks the user (logins that skipped auth, like ssh keys).
    pub fn account_lock(&self, attempt: &Attempt, now: Time) -> Option<Reason> {
        let mut locked: Vec<KeyId> = self
            .keys_for(attempt, now)
            .into_iter()
            .filter(|(i, _)| self.policy.rules[*i].tracks(Field::User))
            .map(|(_, k)| k)
            .chain(std::iter::once(KeyId::new(
                ADMIN_RULE,
                [("user", attempt.user.as_str())],
            )))
            .filter(|k| {
                self.keys
                    .get(k)
                    .and_then(|s| s.lock())
                    .is_some_and(|l| !l.expired(now))
            })
            .collect();
        if locked.is_empty() {
            return None;
        }
        locked.sort();
        Some(self.locked_reason(&locked))
    }

    // ----- internals --------------------------------------------------------

    fn add_pending(
        &mut self,
        attempt: &Attempt,
        keys: Vec<KeyId>,
        allowlisted: bool,
        now: Time,
    ) -> AttemptId {
        self.counter = self.counter.wrapping_add(1);
        let id = AttemptId((u64::from(self.epoch) << 32) | u64::from(self.counter));
        let deadline = now.plus(self.policy.attempt_timeout);
        self.deadlines.insert((deadline, id));
        self.pending.insert(
            id,
            Pending {
                attempt: attempt.clone(),
                keys,
                allowlisted,
                deadline,
                awaiting_code: false,
            },
        );
        id
    }

    fn take_pending(
        &mut self,
        id: Option<AttemptId>,
        attempt: &Attempt,
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
        if p.attempt.user != attempt.user {
            return Err(AttemptError::UserMismatch);
        }
        let Some(p) = self.pending.remove(&id) else {
            return Ok(Taken::Resolved);
        };
        self.deadlines.remove(&(p.deadline, id));
        self.release(&p.keys);
        Ok(Taken::Found(p))
    }

    fn release(&mut self, keys: &[KeyId]) {
        for k in keys {
            if let Some(n) = self.reserved.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.reserved.remove(k);
                }
            }
        }
    }

    fn count_failure(
        &mut self,
        attempt: &Attempt,
        keys: &[KeyId],
        allowlisted: bool,
        kind: FailureKind,
        now: Time,
        fx: &mut Effects,
    ) {
        let mut e = attempt_event(
            attempt,
            now,
            match kind {
                FailureKind::Password => EventKind::Failure,
                FailureKind::Totp => EventKind::TotpFailure,
                FailureKind::Abandoned => EventKind::Abandoned,
            },
        );
        if allowlisted {
            // Allowlisted attempts are recorded but never counted toward a lock.
            e.reason = Some("allowlisted".into());
            fx.events.push(e);
            return;
        }
        fx.events.push(e);
        for k in keys {
            let Some(rule) = self.rule_named(k.rule()).cloned() else {
                continue;
            };
            self.fail_key(k, &rule, attempt, now, fx);
        }
        self.evict_if_full(fx);
    }

    fn fail_key(&mut self, k: &KeyId, rule: &Rule, attempt: &Attempt, now: Time, fx: &mut Effects) {
        let memory = self.policy.escalation_memory;
        let extend = self.policy.extend_on_failure_while_locked;
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
            let length = lockout_length(rule, n);
            let until = length.map(|d| now.plus(d));
            st.set_lock(Some(Lock {
                since: now,
                until,
                length_ms: length.map(millis),
                by: LockedBy::Rule,
            }));
            st.push_lockout(now);
            let failures = u32::try_from(st.failures.len()).unwrap_or(u32::MAX);
            if let Some(until) = until {
                self.expiries.insert((until, k.clone()));
            }
            let mut e = Event::about_key(now, EventKind::Locked, k);
            // The attempt that tipped the key over says where it came from.
            e.service = Some(attempt.service.clone());
            e.user = e.user.or_else(|| Some(attempt.user.clone()));
            e.rhost = e.rhost.or_else(|| attempt.rhost.clone());
            e.failures = Some(failures);
            e.until = Some(Until::from_option(until));
            fx.events.push(e);
        }
        if let Some(st) = self.keys.get(k) {
            fx.keys.push((k.clone(), Some(st.clone())));
        }
    }

    fn restart_cool_off(&mut self, k: &KeyId, now: Time, fx: &mut Effects) {
        let Some(st) = self.keys.get_mut(k) else {
            return;
        };
        let Some(lock) = st.lock_mut() else {
            return;
        };
        let (Some(old), Some(len)) = (lock.until, lock.length_ms) else {
            return; // permanent
        };
        let new = Time(now.0.saturating_add(len)).max(old);
        lock.until = Some(new);
        st.last_active = now;
        if new != old {
            self.expiries.remove(&(old, k.clone()));
            self.expiries.insert((new, k.clone()));
        }
        fx.keys.push((k.clone(), Some(st.clone())));
    }

    fn refuse(&self, attempt: &Attempt, now: Time, reason: Reason, fx: &mut Effects) -> Verdict {
        fx.events.push(refused_event(attempt, now, &reason));
        Verdict {
            attempt: None,
            reason,
        }
    }

    fn is_locked(&self, k: &KeyId) -> bool {
        self.keys.get(k).is_some_and(|s| s.lock().is_some())
    }

    fn locked_reason(&self, locked: &[KeyId]) -> Reason {
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
            },
            None => Reason::plain(ReasonKind::Locked),
        }
    }

    fn failures_in_window(&self, k: &KeyId, rule: &Rule, now: Time) -> u32 {
        let cutoff = now.minus(rule.window);
        self.keys.get(k).map_or(0, |st| {
            u32::try_from(st.failures.iter().filter(|t| **t > cutoff).count()).unwrap_or(u32::MAX)
        })
    }

    fn rule_named(&self, name: &str) -> Option<&Rule> {
        self.policy.rules.iter().find(|r| r.name == name)
    }

    fn source_of_rhost(&self, rhost: Option<&str>) -> String {
        source_of(rhost, self.policy.ipv4_prefix, self.policy.ipv6_prefix)
    }

    fn source(&self, attempt: &Attempt) -> String {
        self.source_of_rhost(attempt.rhost.as_deref())
    }

    fn allowlisted(&self, attempt: &Attempt, ip: Option<IpAddr>) -> bool {
        self.policy.allow_users.contains(&attempt.user)
            || ip.is_some_and(|ip| contains(&self.policy.allow_rhosts, ip))
    }

    fn is_familiar(&self, user: &str, source: &str, now: Time) -> bool {
        let cutoff = now.minus(self.policy.familiar_remember);
        self.familiar
            .get(&(user.to_string(), source.to_string()))
            .is_some_and(|t| *t > cutoff)
    }

    /// The keys this attempt counts against, one per rule that applies to it.
    fn keys_for(&self, attempt: &Attempt, now: Time) -> Vec<(usize, KeyId)> {
        let source = self.source(attempt);
        let familiar =
            self.policy.familiar_enabled && self.is_familiar(&attempt.user, &source, now);
        let mut out = Vec::with_capacity(self.policy.rules.len());
        for (i, rule) in self.policy.rules.iter().enumerate() {
            if !rule.applies_to_service(&attempt.service) {
                continue;
            }
            if rule.tracks(Field::User) && attempt.user == "root" && !self.policy.lock_root {
                continue;
            }
            // Local logins share no address: keying them all under one "local"
            // rhost would let any local user lock every other out.
            if rule.tracks(Field::Rhost) && source == LOCAL_SOURCE {
                continue;
            }
            let split = self.policy.familiar_enabled && splits_by_familiarity(rule);
            let input = KeyInput {
                service: &attempt.service,
                user: &attempt.user,
                source: &source,
                tty: attempt.tty.as_deref().unwrap_or(""),
                familiar: split.then_some(familiar),
            };
            out.push((i, key_for(rule, &input)));
        }
        out
    }

    fn resolve_keys_afresh(&self, attempt: &Attempt, now: Time) -> Vec<KeyId> {
        self.keys_for(attempt, now)
            .into_iter()
            .map(|(_, k)| k)
            .collect()
    }

    fn admin_keys(&self, attempt: &Attempt) -> [KeyId; 2] {
        let source = self.source(attempt);
        [
            KeyId::new(ADMIN_RULE, [("user", attempt.user.as_str())]),
            KeyId::new(ADMIN_RULE, [("rhost", source.as_str())]),
        ]
    }

    /// Keeps memory bounded: past `max_tracked_keys`, the least recently active
    /// unlocked keys go first. A lock is never dropped to make room.
    fn evict_if_full(&mut self, fx: &mut Effects) {
        let max = self.policy.max_tracked_keys;
        if self.keys.len() <= max {
            return;
        }
        // Evict a percent below the bound at once, so the scan is amortised. The
        // scan borrows the keys and clones only the chosen ones: at a million
        // keys, cloning every key for the selection would add 50 MB and 1M
        // allocations to each round, under the engine's lock.
        let target = max - max / 100;
        let mut candidates: Vec<(Time, &KeyId)> = self
            .keys
            .iter()
            .filter(|(k, st)| st.lock().is_none() && !self.reserved.contains_key(*k))
            .map(|(k, st)| (st.last_active, k))
            .collect();
        let excess = self.keys.len().saturating_sub(target).min(candidates.len());
        if excess == 0 {
            return;
        }
        if excess < candidates.len() {
            candidates.select_nth_unstable(excess);
        }
        let chosen: Vec<KeyId> = candidates
            .into_iter()
            .take(excess)
            .map(|(_, k)| k.clone())
            .collect();
        for k in chosen {
            self.keys.remove(&k);
            fx.keys.push((k, None));
        }
    }
}

enum Taken {
    Found(Pending),
    /// From before a restart, or never issued: count it from its own fields.
    Stale,
    /// Already resolved in this run.
    Resolved,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttemptError {
    #[error("the attempt id belongs to another user")]
    UserMismatch,
}

fn contains(nets: &[ipnet::IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

fn attempt_event(attempt: &Attempt, now: Time, kind: EventKind) -> Event {
    let mut e = Event::new(now, kind);
    e.service = Some(attempt.service.clone());
    e.user = Some(attempt.user.clone());
    e.rhost = attempt.rhost.clone();
    e.tty = attempt.tty.clone();
    e
}

fn refused_event(attempt: &Attempt, now: Time, reason: &Reason) -> Event {
    let mut e = attempt_event(attempt, now, EventKind::Refused);
    e.rule = reason.rule.clone();
    e.key = reason.key.clone();
    e.until = reason.until;
    if reason.kind == ReasonKind::Locked {
        e.failures = Some(reason.failures);
    }
    e.reason = Some(reason.kind.name().into());
    e
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
