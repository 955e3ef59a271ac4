//! The policy engine: pure logic, handed the time, doing no I/O.
//!
//! It decides whether an attempt may begin, remembers how attempts end, and says
//! what must be written and logged through [`Effects`]. The daemon applies the
//! effects; tests drive the engine with simulated time.

mod admin;
mod attempts;
mod event;
mod expiry;
mod explain;
mod key;
mod locks;
mod plan;
mod resolve;
mod source;
mod state;

pub use crate::config::{ADMIN_RULE, CODE_RULE, PREFIX_RULE};
pub use event::{Event, EventKind, Reason, ReasonKind, Until};
pub use explain::{AddressReport, Explanation, KeyReport};
pub use key::{KeyId, ANY, UNFAMILIAR};
pub use plan::Plan;
pub use source::{cut, is_local, normalize_name, parse_ip, source_of, Prefixes, LOCAL_SOURCE};
pub use state::{jitter_ms, lockout_length, KeyState, Lock, LockedBy};

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
    /// A wrong password that repeats one of the user's last few
    /// (`same_password_once`): recorded, its place freed, counted nowhere.
    Repeat,
}

impl FailureKind {
    /// A wrong or replayed second-factor code.
    pub fn is_code(self) -> bool {
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
    /// The secret behind each lock's jitter (see [`Engine::with_jitter_seed`]).
    jitter_seed: u64,
    /// Users' groups as the service last read them, for rules scoped to
    /// groups; `None`: the account database could not say.
    groups: HashMap<String, Option<Vec<String>>>,
}

/// Users whose groups are kept at most; past it, all are forgotten and read
/// again at their next attempt.
const GROUPS_KEPT: usize = 65_536;

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
            jitter_seed: 0,
            groups: HashMap::new(),
        }
    }

    /// Hands in `user`'s groups from the account database (`None`: it could
    /// not say), before an attempt of theirs is decided, so that the engine
    /// decides on what it is given and never reads the database itself.
    pub fn note_groups(&mut self, user: &str, groups: Option<Vec<String>>) {
        if self.groups.len() >= GROUPS_KEPT && !self.groups.contains_key(user) {
            self.groups.clear();
        }
        self.groups.insert(user.to_string(), groups);
    }

    /// Whether the service has said anything of `user`'s groups.
    pub fn knows_groups(&self, user: &str) -> bool {
        self.groups.contains_key(user)
    }

    /// What the service last said of `user`'s groups; none when it said
    /// nothing (no rule is scoped to groups).
    pub(super) fn groups_of(&self, user: &str) -> Option<&[String]> {
        match self.groups.get(user) {
            Some(g) => g.as_deref(),
            None => Some(&[]),
        }
    }

    /// The secret each lock's jitter is derived from: drawn at random by the
    /// daemon, so that no one can tell a lock's end from its start, while the
    /// engine itself stays a function of what it is given.
    pub fn with_jitter_seed(mut self, seed: u64) -> Engine {
        self.jitter_seed = seed;
        self
    }

    /// The extra, in ms, on a lock of `k` under `rule` set or restarted at `now`.
    pub(super) fn jitter(&self, rule: &Rule, k: &KeyId, now: Time) -> u64 {
        use std::hash::{Hash, Hasher};
        if rule.jitter.is_zero() {
            return 0;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.jitter_seed, k, now.0).hash(&mut h);
        jitter_ms(rule, h.finish())
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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttemptError {
    #[error("the attempt id belongs to another user")]
    UserMismatch,
    #[error("the attempt was begun by another process; an unprivileged peer may end only its own")]
    NotYours,
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

/// A reason about one rule's key: how close it is to its limit.
pub fn rule_reason(kind: ReasonKind, rule: &Rule, key: &KeyId, failures: u32) -> Reason {
    Reason {
        kind,
        rule: Some(rule.name.clone()),
        key: Some(key.clone()),
        failures,
        limit: rule.limit,
        until: None,
        admin: None,
    }
}

/// An event about an attempt, as the log and the audit trail record it.
pub fn attempt_event(attempt: &Attempt, origin: Origin, now: Time, kind: EventKind) -> Event {
    let mut e = Event::new(now, kind);
    e.service = Some(attempt.service.clone());
    e.user = Some(attempt.user.clone());
    e.rhost = attempt.rhost.clone();
    e.tty = attempt.tty.clone();
    e.by = origin.by();
    e
}

pub fn refused_event(attempt: &Attempt, origin: Origin, now: Time, reason: &Reason) -> Event {
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
