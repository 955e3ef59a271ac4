//! The policy engine: pure logic, handed the time, doing no I/O.
//!
//! It decides whether an attempt may begin, remembers how attempts end, and says
//! what must be written and logged through [`Effects`]. The daemon applies the
//! effects; tests drive the engine with simulated time.

mod event;
mod key;
mod locks;
mod source;
mod state;

pub use crate::config::{ADMIN_RULE, CODE_RULE, PREFIX_RULE};
pub use event::{Event, EventKind, Reason, ReasonKind, Until};
pub use key::{KeyId, ANY, UNFAMILIAR};
pub use source::{cut, is_local, normalize_name, parse_ip, source_of, Prefixes, LOCAL_SOURCE};
pub use state::{lockout_length, KeyState, Lock, LockedBy};

use crate::config::{Field, Policy, Rule};
use crate::time::{millis, Time};
use key::{key_for, overflow_key, splits_by_familiarity, KeyInput};
use locks::{Attribution, LockIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

/// One login attempt, as PAM describes it: the protocol's validated form.
pub use warden_proto::Attempt;

/// Names an attempt between its start and its end. The high half is the engine's
/// epoch, so an id from before a restart is recognised as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

/// Who reported an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// sshd, sudo, su, login: the application checked the password itself.
    Root,
    /// An unprivileged process acting for its own user, such as a screen
    /// locker. It may be the user's own shell, or an attacker holding it, so
    /// its word that a password was right proves nothing.
    Peer(u32),
}

impl Origin {
    /// What the log's `by` field says of it.
    fn by(self) -> Option<String> {
        match self {
            Origin::Root => None,
            Origin::Peer(uid) => Some(format!("uid={uid}")),
        }
    }
}

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

/// Something an admin must hear about; the daemon logs these, rate-limited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    /// The key table reached `max_tracked_keys`: keys were dropped to stay
    /// within it, locks among them when nothing else was left.
    TableFull {
        keys: usize,
        max: usize,
        evicted_keys: usize,
        evicted_locks: usize,
    },
    /// An attempt was refused because too many are in flight.
    Crowded { in_flight: usize, uid: Option<u32> },
    /// A service begins attempts and never says how they end: its stack has
    /// the preauth line without authfail and authsucc.
    HalfWired { service: String },
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
    /// Not persisted: the service takes them out and logs them.
    pub alerts: Vec<Alert>,
}

impl Effects {
    /// Whether there is anything to persist.
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
        self.alerts.extend(other.alerts);
    }
}

/// How a failure came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    Password,
    /// A wrong second-factor code: it counts in the same rules as passwords.
    Totp,
    /// A code already used: counted as a wrong one, recorded as replayed.
    TotpReplayed,
    Abandoned,
}

impl FailureKind {
    fn is_code(self) -> bool {
        matches!(self, FailureKind::Totp | FailureKind::TotpReplayed)
    }
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

/// What one page of an unlock did.
#[derive(Debug, Default)]
pub struct Unlocked {
    /// Keys cleared, locked or not.
    pub cleared: usize,
    /// The locks among them.
    pub lifted: Vec<KeyId>,
    /// Where to go on from, `None` when done.
    pub next: Option<KeyId>,
}

/// Counters of what keeping memory bounded has cost, for `Status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    /// Unlocked keys dropped to stay within `max_tracked_keys`.
    pub evicted_keys: u64,
    /// Locks dropped because the table held nothing else that could go.
    pub evicted_locks: u64,
    /// When the table was last full.
    pub last_full: Option<Time>,
    /// Attempts refused because too many were in flight.
    pub crowded: u64,
    pub last_crowded: Option<Time>,
}

/// What a service's stack has shown of itself in this run.
#[derive(Default)]
struct Wiring {
    /// Some attempt of it ended with a failure, success or release.
    ended: bool,
    /// Attempts abandoned while it had never reported an end.
    unreported: u32,
}

/// A service that abandons this many attempts without ever reporting an end
/// is taken to be wired by half, and its abandoned attempts stop counting.
pub const HALF_WIRED_AFTER: u32 = 2;
/// Services whose wiring is followed; names past it are not (they come from
/// root applications, so there are few).
const MAX_SERVICES: usize = 1024;

struct Pending {
    attempt: Attempt,
    origin: Origin,
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
    /// twice the memory. Its order is also the per-user index (see
    /// [`KeyId::user_range_start`]).
    keys: BTreeMap<KeyId, KeyState>,
    reserved: HashMap<KeyId, u32>,
    familiar: HashMap<(String, String), Time>,
    pending: HashMap<AttemptId, Pending>,
    deadlines: BTreeSet<(Time, AttemptId)>,
    locks: LockIndex,
    attribution: Attribution,
    /// Attempts in flight per unprivileged uid.
    per_uid: HashMap<u32, usize>,
    /// Per service of root peers: does its stack report how attempts end?
    wiring: HashMap<String, Wiring>,
    pressure: Pressure,
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
            locks: LockIndex::default(),
            attribution: Attribution::default(),
            per_uid: HashMap::new(),
            wiring: HashMap::new(),
            pressure: Pressure::default(),
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
        let keys: Vec<(KeyId, KeyState)> = keys.into_iter().collect();
        for (id, st) in &keys {
            if let Some(lock) = st.lock() {
                self.locks.insert(id, lock.until);
                if let Some(ip) = id.part("rhost").and_then(parse_ip) {
                    if let Some(prefix) = self.prefix_of(ip) {
                        if id.rule() != PREFIX_RULE {
                            self.attribution.attach(id, prefix);
                        }
                    }
                }
            }
        }
        if self.keys.is_empty() {
            // Built in bulk from the store's sorted order: full nodes, no rebalancing.
            self.keys = keys.into_iter().collect();
        } else {
            self.keys.extend(keys);
        }
        self.familiar.extend(familiar);
    }

    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }

    pub fn lock_count(&self) -> usize {
        self.locks.len()
    }

    pub fn pressure(&self) -> Pressure {
        self.pressure
    }

    pub fn key(&self, id: &KeyId) -> Option<&KeyState> {
        self.keys.get(id)
    }

    /// Up to `n` locks after `after`, in key order: callers page through a long
    /// list without holding the engine for all of it.
    pub fn locks_page(&self, after: Option<&KeyId>, n: usize) -> Vec<(KeyId, KeyState)> {
        self.locks
            .page(after, n)
            .into_iter()
            .filter_map(|k| self.keys.get(&k).cloned().map(|st| (k, st)))
            .collect()
    }

    /// Every key that names this user, locked or not, with its state: a few
    /// range lookups, never a scan.
    pub fn user_keys(&self, user: &str) -> Vec<(&KeyId, &KeyState)> {
        let mut out = Vec::new();
        for rule in self.user_rule_names() {
            let start = KeyId::user_range_start(rule, user);
            out.extend(
                self.keys
                    .range(&start..)
                    .take_while(|(k, _)| k.within(&start)),
            );
        }
        out
    }

    pub fn pending_attempts(&self) -> usize {
        self.pending.len()
    }

    /// The keys an attempt in flight holds places on (for tests and fuzzing).
    pub fn pending_keys(&self, id: AttemptId) -> Option<&[KeyId]> {
        self.pending.get(&id).map(|p| p.keys.as_slice())
    }

    /// Checks what the engine promises about its own state: on every key, the
    /// failures in the window plus the places held never exceed the limit, and
    /// the indexes agree with the table. For tests and fuzzing; O(n).
    pub fn check_invariants(&self, now: Time) -> Result<(), String> {
        for (k, n) in &self.reserved {
            let Some(rule) = self.rule_named(k.rule()) else {
                continue;
            };
            let f = self.failures_in_window(k, rule, now);
            if f + n > rule.limit && !self.is_locked(k, now) {
                return Err(format!(
                    "{k}: {f} failures + {n} places > limit {}",
                    rule.limit
                ));
            }
        }
        let locked = self.keys.values().filter(|s| s.lock().is_some()).count();
        if locked != self.locks.len() {
            return Err(format!(
                "{locked} locked keys, index holds {}",
                self.locks.len()
            ));
        }
        let by_uid: usize = self.per_uid.values().sum();
        let peers = self
            .pending
            .values()
            .filter(|p| matches!(p.origin, Origin::Peer(_)))
            .count();
        if by_uid != peers {
            return Err(format!(
                "{peers} peer attempts, per-uid counts sum to {by_uid}"
            ));
        }
        Ok(())
    }

    // ----- attempts -------------------------------------------------------

    /// Starts an attempt: refuses it, or reserves its place under every rule.
    pub fn begin(
        &mut self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
        fx: &mut Effects,
    ) -> Verdict {
        self.tick(now, fx);
        let rhost = attempt.rhost.as_deref().filter(|r| !r.is_empty());
        let ip = rhost.and_then(parse_ip);
        if ip.is_some_and(|ip| contains(&self.policy.deny_rhosts, ip)) {
            return self.refuse(attempt, origin, now, Reason::plain(ReasonKind::Denied), fx);
        }
        // A name cannot be checked against [deny]; rather than let it through
        // unchecked, a host with a deny list refuses it.
        if rhost.is_some() && ip.is_none() && !self.policy.deny_rhosts.is_empty() {
            let reason = Reason::plain(ReasonKind::Unverifiable);
            return self.refuse(attempt, origin, now, reason, fx);
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
        // An admin's explicit lock outranks the allowlist.
        let admin_locked: Vec<KeyId> = self
            .admin_keys(attempt)
            .into_iter()
            .filter(|k| self.is_locked(k, now))
            .collect();
        if !admin_locked.is_empty() {
            return self.refuse(attempt, origin, now, self.locked_reason(&admin_locked), fx);
        }
        if self.allowlisted(attempt, ip) {
            let id = self.add_pending(attempt, origin, Vec::new(), true, now);
            return Verdict {
                attempt: Some(id),
                reason: Reason::plain(ReasonKind::Allowlisted),
            };
        }

        let source = self.source(attempt);
        let familiar = self.familiar_for(attempt, &source, origin, now);
        let keys = self.keys_for(attempt, origin, &source, familiar, false);
        let mut locked: Vec<KeyId> = keys
            .iter()
            .map(|(_, k)| k)
            .filter(|k| self.is_locked(k, now))
            .cloned()
            .collect();
        // Locks that cover more than this attempt's own keys: the address's
        // prefix, the user's overflow keys and the wrong-code rule. A familiar
        // source is spared the first two: someone else's neighbours cannot
        // lock the owner out of a place the owner has logged in from.
        if !familiar {
            locked.extend(ip.and_then(|ip| self.prefix_key(ip)));
            locked.extend(self.overflow_keys(attempt, origin, &source));
        }
        locked.extend(self.code_key(attempt));
        locked.retain(|k| self.is_locked(k, now));
        if !locked.is_empty() {
            locked.sort();
            locked.dedup();
            if self.policy.extend_on_failure_while_locked {
                for k in &locked {
                    self.restart_cool_off(k, now, fx);
                }
            }
            return self.refuse(attempt, origin, now, self.locked_reason(&locked), fx);
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
                return self.refuse(attempt, origin, now, reason, fx);
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
        let id = self.add_pending(attempt, origin, ids, false, now);
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
        origin: Origin,
        kind: FailureKind,
        now: Time,
        fx: &mut Effects,
    ) -> Result<(), AttemptError> {
        self.tick(now, fx);
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
        self.tick(now, fx);
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
        self.tick(now, fx);
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
        self.tick(now, fx);
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
        keys.extend(self.code_key(attempt));
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
            self.drop_lock(&k, Some(until));
            let Some(st) = self.keys.get_mut(&k) else {
                continue;
            };
            // A finished cool-off starts a fresh budget; the lockout history
            // stays, so the next lock escalates.
            st.failures.clear();
            let st = st.clone();
            let mut e = Event::about_key(until, EventKind::Unlocked, &k);
            e.by = Some("expired".into());
            fx.events.push(e);
            fx.keys.push((k, Some(st)));
        }
    }

    // ----- admin ------------------------------------------------------------

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
                let mut e = Event::about_key(now, EventKind::Unlocked, k);
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
            .chain(self.code_key(attempt))
            .filter(|k| self.is_locked(k, now))
            .collect();
        if locked.is_empty() {
            return None;
        }
        locked.sort();
        Some(self.locked_reason(&locked))
    }

    // ----- internals --------------------------------------------------------

    /// Why an attempt from `origin` may not be added, if it may not: the uid
    /// that is at its own bound, or `None` inside for the global one.
    fn crowded(&self, origin: Origin) -> Option<Option<u32>> {
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

    fn add_pending(
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

    fn take_pending(
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

    fn wiring_of(&mut self, service: &str) -> Option<&mut Wiring> {
        if !self.wiring.contains_key(service) && self.wiring.len() >= MAX_SERVICES {
            return None;
        }
        Some(self.wiring.entry(service.to_string()).or_default())
    }

    /// An abandoned root attempt of a service that has never reported an end:
    /// counts it, raises the alert when the service crosses the line, and
    /// says whether it is past it (and so not to be counted as a failure).
    fn unreported(&mut self, p: &Pending, fx: &mut Effects) -> bool {
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
    fn forget_pending(&mut self, p: &Pending) {
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
    fn count_failure(
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
                FailureKind::Password => EventKind::Failure,
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

    fn fail_key(
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
            let mut e = Event::about_key(now, EventKind::Locked, k);
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
    fn attribute(&mut self, lock: &KeyId, ip: IpAddr, now: Time, fx: &mut Effects) {
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
        let mut e = Event::about_key(now, EventKind::Locked, &pk);
        e.failures = Some(n);
        e.until = Some(Until::from_option(until));
        e.reason = Some(format!("{n} locks from this prefix"));
        fx.events.push(e);
        fx.keys.push((pk.clone(), self.keys.get(&pk).cloned()));
    }

    /// Locks a key for its rule's n-th lockout; returns when it ends.
    fn lock_by_rule(&mut self, k: &KeyId, rule: &Rule, n: usize, now: Time) -> Option<Time> {
        let length = lockout_length(rule, n);
        let until = length.map(|d| now.plus(d));
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
    fn set_lock(&mut self, k: &KeyId, lock: Lock, now: Time) {
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
    fn drop_lock(&mut self, k: &KeyId, until: Option<Time>) {
        self.locks.remove(k, until);
        self.attribution.detach(k);
        if let Some(st) = self.keys.get_mut(k) {
            st.set_lock(None);
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
        let st = st.clone();
        if new != old {
            self.locks.remove(k, Some(old));
            self.locks.insert(k, Some(new));
        }
        fx.keys.push((k.clone(), Some(st)));
    }

    fn refuse(
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

    fn is_locked(&self, k: &KeyId, now: Time) -> bool {
        self.keys
            .get(k)
            .and_then(|s| s.lock())
            .is_some_and(|l| !l.expired(now))
    }

    fn is_tracked(&self, k: &KeyId) -> bool {
        self.keys.contains_key(k) || self.reserved.contains_key(k)
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

    /// A rule by name: the configured ones, and wardend's own `prefix` and `code`.
    fn rule_named(&self, name: &str) -> Option<&Rule> {
        self.policy
            .rules
            .iter()
            .find(|r| r.name == name)
            .or_else(|| {
                self.policy
                    .aggregate
                    .as_ref()
                    .map(|a| &a.rule)
                    .filter(|r| r.name == name)
            })
            .or_else(|| self.policy.code_rule.as_ref().filter(|r| r.name == name))
    }

    /// The window of each rule by name, for purging.
    fn rule_windows(&self) -> HashMap<String, Duration> {
        let mut out: HashMap<String, Duration> = self
            .policy
            .rules
            .iter()
            .map(|r| (r.name.clone(), r.window))
            .collect();
        if let Some(a) = &self.policy.aggregate {
            out.insert(a.rule.name.clone(), a.rule.window);
        }
        if let Some(c) = &self.policy.code_rule {
            out.insert(c.name.clone(), c.window);
        }
        out
    }

    /// The names of the rules whose keys may name a user.
    fn user_rule_names(&self) -> Vec<&str> {
        self.policy
            .rules
            .iter()
            .filter(|r| r.tracks(Field::User))
            .map(|r| r.name.as_str())
            .chain([ADMIN_RULE])
            .chain(self.policy.code_rule.as_ref().map(|r| r.name.as_str()))
            .collect()
    }

    fn prefixes(&self) -> Prefixes {
        Prefixes {
            v4: self.policy.ipv4_prefix,
            v6: self.policy.ipv6_prefix,
        }
    }

    fn source_of_rhost(&self, rhost: &str) -> String {
        source_of(Some(rhost), None, self.prefixes())
    }

    fn source(&self, attempt: &Attempt) -> String {
        source_of(
            attempt.rhost.as_deref(),
            attempt.ruser.as_deref(),
            self.prefixes(),
        )
    }

    /// The aggregate prefix an address belongs to, when aggregation is on.
    fn prefix_of(&self, ip: IpAddr) -> Option<String> {
        let a = self.policy.aggregate.as_ref()?;
        Some(cut(
            ip,
            Prefixes {
                v4: a.ipv4_prefix,
                v6: a.ipv6_prefix,
            },
        ))
    }

    fn prefix_key(&self, ip: IpAddr) -> Option<KeyId> {
        self.prefix_of(ip)
            .map(|p| KeyId::new(PREFIX_RULE, [("rhost", p.as_str())]))
    }

    /// The key of the wrong-code rule, when no configured rule tracks users.
    fn code_key(&self, attempt: &Attempt) -> Option<KeyId> {
        self.policy
            .code_rule
            .as_ref()
            .map(|r| KeyId::new(&r.name, [("user", attempt.user.as_str())]))
    }

    fn allowlisted(&self, attempt: &Attempt, ip: Option<IpAddr>) -> bool {
        self.policy.allow_users.contains(&attempt.user)
            || ip.is_some_and(|ip| contains(&self.policy.allow_rhosts, ip))
    }

    /// Only a root peer's attempt can come from a familiar source: an
    /// unprivileged peer is never the owner at a known place.
    fn familiar_for(&self, attempt: &Attempt, source: &str, origin: Origin, now: Time) -> bool {
        if !self.policy.familiar_enabled || origin != Origin::Root {
            return false;
        }
        let cutoff = now.minus(self.policy.familiar_remember);
        self.familiar
            .get(&(attempt.user.clone(), source.to_string()))
            .is_some_and(|t| *t > cutoff)
    }

    /// Whether a user name already holds `max_keys_per_user` keys.
    fn user_at_cap(&self, user: &str) -> bool {
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
    fn keys_for(
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
            if rule.tracks(Field::User) && attempt.user == "root" && !self.policy.lock_root {
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
    fn overflow_keys(&self, attempt: &Attempt, origin: Origin, source: &str) -> Vec<KeyId> {
        self.policy
            .rules
            .iter()
            .filter(|r| origin != Origin::Root || r.applies_to_service(&attempt.service))
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

    /// Where a wrong code counts: every rule that tracks the user, whatever
    /// its services, or the wrong-code rule when none does.
    fn code_keys(&self, attempt: &Attempt, origin: Origin, now: Time) -> Vec<KeyId> {
        if let Some(k) = self.code_key(attempt) {
            return vec![k];
        }
        let source = self.source(attempt);
        let familiar = self.familiar_for(attempt, &source, origin, now);
        self.keys_for(attempt, origin, &source, familiar, true)
            .into_iter()
            .filter(|(i, _)| self.policy.rules[*i].tracks(Field::User))
            .map(|(_, k)| k)
            .collect()
    }

    fn resolve_keys_afresh(&self, attempt: &Attempt, origin: Origin, now: Time) -> Vec<KeyId> {
        let source = self.source(attempt);
        let familiar = self.familiar_for(attempt, &source, origin, now);
        self.keys_for(attempt, origin, &source, familiar, false)
            .into_iter()
            .map(|(_, k)| k)
            .collect()
    }

    fn admin_keys(&self, attempt: &Attempt) -> Vec<KeyId> {
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
    fn admin_rhost(&self, value: &str) -> String {
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

    /// Keeps memory bounded: past `max_tracked_keys`, unlocked keys go, those
    /// furthest from their limit and least recently active first. The keys of the operation at hand are
    /// never dropped: evicting the key under attack right after its failure
    /// would switch its lockout off. When only locks are left to drop, the
    /// rule locks that end soonest go, loudly; admin and prefix locks never.
    fn evict_if_full(&mut self, protect: &[KeyId], now: Time, fx: &mut Effects) {
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
                let mut e = Event::about_key(now, EventKind::Unlocked, k);
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
    #[error("the attempt was begun by another process; an unprivileged peer may end only its own")]
    NotYours,
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

/// The addresses a key's rhost part (or an admin's value) stands for: a
/// network, or an address as its own /32 or /128.
fn rhost_net(part: &str) -> Option<ipnet::IpNet> {
    part.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| parse_ip(part).map(ipnet::IpNet::from))
}

fn contains(nets: &[ipnet::IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

fn attempt_event(attempt: &Attempt, origin: Origin, now: Time, kind: EventKind) -> Event {
    let mut e = Event::new(now, kind);
    e.service = Some(attempt.service.clone());
    e.user = Some(attempt.user.clone());
    e.rhost = attempt.rhost.clone();
    e.tty = attempt.tty.clone();
    e.by = origin.by();
    e
}

fn refused_event(attempt: &Attempt, origin: Origin, now: Time, reason: &Reason) -> Event {
    let mut e = attempt_event(attempt, origin, now, EventKind::Refused);
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
