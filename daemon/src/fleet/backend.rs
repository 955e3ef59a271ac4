//! The fleet behind the service seam: each decision is one call of a Redis
//! function; while Redis is away, `on_unavailable` decides.

use super::journal::Entry;
use super::wire::{
    locked_reason, BeginArg, BeginOut, FailArg, FamArg, FinishArg, HoldArg, KeysArg, LockArg,
    LockOut, Locked, Now, StateOut, UnlockArg, UnlockOut,
};
use super::{FleetBackend, FleetError, Held, Spec, LEASE_GRACE_MS};
use crate::config::{Config, Field, OnUnavailable, ADMIN_RULE};
use crate::engine::{
    attempt_event, refused_event, rule_reason, AddressReport, AdminLock, Alert, Attempt,
    AttemptError, AttemptId, Event, EventKind, Explanation, FailureKind, KeyId, KeyReport,
    KeyState, Lock, LockedBy, Origin, Reason, ReasonKind, Selector, Unlocked, Verdict,
};
use crate::service::backend::{
    Backend, BoxFuture, CodeEntry, CodeVerdict, Decided, Decision, Proof, TotpChange,
};
use crate::service::{CodeOutcome, Counts, Durable, ServiceError};
use crate::store::{AuditQuery, Durability};
use crate::time::{millis, Time};
use crate::totp::TotpRecord;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

fn decided<T>(value: T, durable: Option<Durable>) -> Result<Decision<T>, ServiceError> {
    Ok(Decision { value, durable })
}

fn fleet_err(e: FleetError) -> ServiceError {
    ServiceError::Unavailable(e.to_string())
}

fn failure_kind(kind: FailureKind) -> EventKind {
    match kind {
        FailureKind::Password | FailureKind::Repeat => EventKind::Failure,
        FailureKind::Totp | FailureKind::TotpReplayed => EventKind::TotpFailure,
        FailureKind::Abandoned => EventKind::Abandoned,
    }
}

/// A lock as the library reports it, as the engine keeps one.
pub(super) fn lock_from(l: &LockOut) -> Lock {
    Lock {
        since: Time(l.since.max(0).unsigned_abs()),
        until: (l.until >= 0).then(|| Time(l.until.unsigned_abs())),
        length_ms: (l.len >= 0).then(|| l.len.unsigned_abs()),
        by: if l.by == "admin" {
            LockedBy::Admin {
                uid: l.uid.parse().unwrap_or(0),
                reason: l.why.clone(),
            }
        } else {
            LockedBy::Rule
        },
    }
}

fn state_from(s: &StateOut) -> Option<(KeyId, KeyState)> {
    let k = KeyId::parse(&s.k).ok()?;
    let failures = s.failures.iter().map(|t| Time(*t)).collect();
    let last = s
        .failures
        .iter()
        .chain(&s.lockouts)
        .max()
        .copied()
        .unwrap_or(0);
    let mut st = KeyState::new(failures, Time(last));
    for t in &s.lockouts {
        st.push_lockout(Time(*t));
    }
    if let Some(l) = &s.lock {
        st.set_lock(Some(lock_from(l)));
    }
    Some((k, st))
}

impl FleetBackend {
    fn begin_arg<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        member: String,
        dry: bool,
    ) -> Result<(BeginArg<'a>, crate::engine::Plan), ServiceError> {
        let (plan, policy) = {
            let p = self.plans();
            (p.plan(a, origin), p.policy().clone())
        };
        let memory = policy.escalation_memory;
        let lease = millis(policy.attempt_timeout) + LEASE_GRACE_MS;
        let fam = plan.familiar_keys.as_ref().map(|keys| FamArg {
            user: a.user.clone(),
            source: plan.source.clone(),
            remember: millis(policy.familiar_remember),
            keys: self.specs(keys, memory),
        });
        let arg = BeginArg {
            p: self.prefix(),
            host: self.host(),
            stream_length: self.fleet.stream_length,
            id: member,
            lease,
            lease_ttl: lease + 60_000,
            dry,
            allow: plan.allowlisted,
            extend: self.extend.load(Ordering::Relaxed),
            admin: plan.admin.iter().map(ToString::to_string).collect(),
            others: plan.others.iter().map(ToString::to_string).collect(),
            keys: self.specs(&plan.keys, memory),
            fam,
            service: &a.service,
            user: &a.user,
            rhost: a.rhost.as_deref(),
        };
        Ok((arg, plan))
    }

    fn limit_of(&self, rule: &str) -> u32 {
        self.plans().rule(rule).map_or(0, |r| r.limit)
    }

    /// The verdict in a begin's answer, and the keys it reserved on.
    fn verdict_of(
        &self,
        out: &BeginOut,
        plan: &crate::engine::Plan,
    ) -> (Reason, Vec<(crate::config::Rule, KeyId)>) {
        let keys = if out.familiar {
            plan.familiar_keys.clone().unwrap_or_default()
        } else {
            plan.keys.clone()
        };
        let reason = match out.kind.as_str() {
            "locked" => locked_reason(&out.locks, |r| self.limit_of(r)),
            "allowlisted" => Reason::plain(ReasonKind::Allowlisted),
            kind @ ("busy" | "clear") => {
                let kind = if kind == "busy" {
                    ReasonKind::Busy
                } else {
                    ReasonKind::Clear
                };
                match out.i.and_then(|i| keys.get(i.wrapping_sub(1))) {
                    Some((rule, k)) => rule_reason(kind, rule, k, out.failures),
                    None => Reason::plain(kind),
                }
            }
            _ => Reason::plain(ReasonKind::Busy),
        };
        (reason, keys)
    }

    async fn fleet_begin(
        &self,
        a: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<Decision<Verdict>, FleetError> {
        let id = self.next_id();
        let member = self.member(id);
        let (arg, plan) = self
            .begin_arg(a, origin, member.clone(), false)
            .map_err(|e| FleetError::Config(e.to_string()))?;
        if let Some(reason) = plan.refused.clone() {
            return Ok(self.refuse(a, origin, now, reason));
        }
        if let Some(uid) = self.crowded(origin) {
            let in_flight = self.held.lock().map(|h| h.len()).unwrap_or(0);
            self.alarms.raise(&Alert::Crowded { in_flight, uid }, now);
            let reason = Reason::plain(ReasonKind::Crowded);
            return Ok(self.refuse(a, origin, now, reason));
        }
        let out: BeginOut = self.link.call("warden_begin", &arg).await?;
        let (reason, keys) = self.verdict_of(&out, &plan);
        if !reason.kind.allows() {
            return Ok(self.refuse(a, origin, now, reason));
        }
        let policy = self.policy();
        let allowlisted = reason.kind == ReasonKind::Allowlisted;
        let specs = if allowlisted {
            Vec::new()
        } else {
            self.specs(&keys, policy.escalation_memory)
        };
        if let Ok(mut held) = self.held.lock() {
            held.insert(
                id,
                Held {
                    attempt: a.clone(),
                    origin,
                    member,
                    specs,
                    allowlisted,
                    familiar: out.familiar,
                    deadline: now.plus(policy.attempt_timeout),
                    awaiting_code: false,
                },
            );
        }
        Ok(Decision {
            value: Verdict {
                attempt: Some(id),
                reason,
            },
            durable: None,
        })
    }

    fn take_held(
        &self,
        id: Option<AttemptId>,
        a: &Attempt,
        origin: Origin,
    ) -> Result<Option<Held>, AttemptError> {
        let Some(id) = id else { return Ok(None) };
        let Ok(mut held) = self.held.lock() else {
            return Ok(None);
        };
        let Some(h) = held.get(&id) else {
            return Ok(None);
        };
        if h.attempt.user != a.user {
            return Err(AttemptError::UserMismatch);
        }
        if origin != Origin::Root && h.origin != origin {
            return Err(AttemptError::NotYours);
        }
        if h.origin == Origin::Root {
            if let Ok(mut ended) = self.ended.lock() {
                if ended.len() < 1024 {
                    ended.insert(h.attempt.service.clone());
                }
            }
        }
        Ok(held.remove(&id))
    }

    /// A refusal: its event recorded, its answer no attempt.
    fn refuse(&self, a: &Attempt, origin: Origin, now: Time, reason: Reason) -> Decision<Verdict> {
        let e = refused_event(a, origin, now, &reason);
        Decision {
            durable: self.record(vec![e], origin, Durability::Immediate),
            value: Verdict {
                attempt: None,
                reason,
            },
        }
    }

    /// Counts a failure in the fleet; when Redis is away, in the journal and
    /// the local engine instead.
    async fn count_failure(
        &self,
        member: String,
        specs: Vec<Spec>,
        a: &Attempt,
        origin: Origin,
        kind: FailureKind,
        now: Time,
    ) -> Result<Decision<Result<(), AttemptError>>, ServiceError> {
        if self.fail_in_fleet(&member, &specs, a).await {
            let mut e = attempt_event(a, origin, now, failure_kind(kind));
            match kind {
                FailureKind::Totp => e.reason = Some("wrong".into()),
                FailureKind::TotpReplayed => e.reason = Some("replayed".into()),
                _ => {}
            }
            let d = self.record(vec![e], origin, Durability::Immediate);
            return decided(Ok(()), d);
        }
        if self.mode() == OnUnavailable::Ignore {
            let e = attempt_event(a, origin, now, failure_kind(kind));
            let d = self.record(vec![e], origin, Durability::Immediate);
            return decided(Ok(()), d);
        }
        self.journal_fail(member, specs, a, now)?;
        self.local.fail(None, a, origin, kind, now).await
    }

    /// Counts a failure the local engine also counts: in the fleet when it
    /// answers, else in the journal for the replay.
    async fn tell_fleet(
        &self,
        member: String,
        specs: Vec<Spec>,
        a: &Attempt,
        now: Time,
    ) -> Result<(), ServiceError> {
        if self.fail_in_fleet(&member, &specs, a).await {
            return Ok(());
        }
        self.journal_fail(member, specs, a, now)
    }

    /// One failure through `warden_fail`, while the fleet is up; false when it
    /// was not counted there (down, or the call failed and the host degraded).
    async fn fail_in_fleet(&self, member: &str, specs: &[Spec], a: &Attempt) -> bool {
        if !self.up() {
            return false;
        }
        let arg = FailArg {
            p: self.prefix(),
            host: self.host(),
            stream_length: self.fleet.stream_length,
            id: member.to_string(),
            at: None,
            extend: self.extend.load(Ordering::Relaxed),
            keys: specs.to_vec(),
            service: &a.service,
            user: &a.user,
            rhost: a.rhost.as_deref(),
        };
        match self.link.call::<Locked>("warden_fail", &arg).await {
            Ok(out) => {
                self.safeguard(&out.locked).await;
                true
            }
            Err(e) => {
                self.degrade(&e);
                false
            }
        }
    }

    /// A failure the fleet did not take, kept for the replay.
    fn journal_fail(
        &self,
        member: String,
        keys: Vec<Spec>,
        a: &Attempt,
        now: Time,
    ) -> Result<(), ServiceError> {
        self.journal_append(&Entry::Fail {
            id: member,
            at: now.0,
            keys,
            service: a.service.clone(),
            user: a.user.clone(),
            rhost: a.rhost.clone(),
        })
    }

    fn journal_append(&self, e: &Entry) -> Result<(), ServiceError> {
        self.journal
            .append(e)
            .map_err(|e| ServiceError::Unavailable(format!("cannot write the fleet journal: {e}")))
    }

    /// The keys a failure of this attempt counts on, when no lease says;
    /// `None` for an allowlisted attempt, which counts on none.
    fn fresh_specs(&self, a: &Attempt, origin: Origin) -> Option<Vec<Spec>> {
        let p = self.plans();
        let plan = p.plan(a, origin);
        (!plan.allowlisted).then(|| self.specs(&plan.keys, p.policy().escalation_memory))
    }

    /// Adds where a wrong code counts too: a code belongs to the user, so
    /// every rule that tracks the user, whatever its services.
    fn add_code_specs(&self, specs: &mut Vec<Spec>, a: &Attempt, origin: Origin, familiar: bool) {
        let p = self.plans();
        let memory = p.policy().escalation_memory;
        for (r, k) in p.plan_code_keys(a, origin, familiar) {
            let name = k.to_string();
            if !specs.iter().any(|s| s.k == name) {
                specs.push(Spec::new(&r, &k, memory));
            }
        }
    }

    /// Ends an attempt without a failure: frees its places; a root success
    /// also resets the user's counts and makes its source familiar.
    async fn finish(&self, h: Option<&Held>, a: &Attempt, origin: Origin, success: bool) {
        if !self.up() {
            self.release_later(h);
            return;
        }
        let policy = self.policy();
        let (member, mut keys) = match h {
            Some(h) => (h.member.clone(), h.specs.clone()),
            None => (String::new(), Vec::new()),
        };
        let root_success = success && origin == Origin::Root;
        if root_success && h.is_none() {
            keys = self.fresh_specs(a, origin).unwrap_or_default();
        }
        let mut reset = Vec::new();
        if root_success && policy.reset_on_success {
            let planner = self.plans();
            for s in &keys {
                let rule = KeyId::parse(&s.k)
                    .ok()
                    .and_then(|k| planner.rule(k.rule()).map(|r| r.tracks(Field::User)));
                if rule == Some(true) {
                    reset.push(s.k.clone());
                }
            }
            let r = &policy.code_rule;
            reset.push(KeyId::new(&r.name, [("user", a.user.as_str())]).to_string());
        }
        let fam = (root_success && policy.familiar_enabled).then(|| FamArg {
            user: a.user.clone(),
            source: self.plans().plan(a, origin).source,
            remember: millis(policy.familiar_remember),
            keys: Vec::new(),
        });
        let arg = FinishArg {
            p: self.prefix(),
            id: member,
            keys: keys.iter().map(|s| s.k.clone()).collect(),
            reset,
            fam,
        };
        if let Err(e) = self.link.call::<Now>("warden_finish", &arg).await {
            self.degrade(&e);
            self.release_later(h);
        }
    }

    /// Ends a fleet attempt that counts as nothing (a release, a refusal
    /// after the password): frees its places and records `event`.
    async fn end_uncounted(
        &self,
        id: Option<AttemptId>,
        a: &Attempt,
        origin: Origin,
        event: Event,
        durability: Durability,
    ) -> Result<Decision<Result<(), AttemptError>>, ServiceError> {
        let held = match self.take_held(id, a, origin) {
            Ok(h) => h,
            Err(e) => return decided(Err(e), None),
        };
        self.finish(held.as_ref(), a, origin, false).await;
        decided(Ok(()), self.record(vec![event], origin, durability))
    }

    /// Places the fleet could not be told to free: journalled, so the
    /// replay frees them, and they never turn into abandoned failures at
    /// their deadline on another host.
    fn release_later(&self, h: Option<&Held>) {
        let Some(h) = h.filter(|h| !h.specs.is_empty()) else {
            return;
        };
        let entry = Entry::Release {
            id: h.member.clone(),
            keys: h.specs.iter().map(|s| s.k.clone()).collect(),
        };
        if let Err(e) = self.journal.append(&entry) {
            self.alarms.log().error(&format!(
                "fleet-journal-error error={}",
                crate::logline::quote(&e.to_string())
            ));
        }
    }

    /// Why an attempt may not be added, if too many are in flight: in all,
    /// or from this unprivileged uid (the engine's own bounds).
    fn crowded(&self, origin: Origin) -> Option<Option<u32>> {
        let policy = self.policy();
        let held = self.held.lock().ok()?;
        if held.len() >= policy.max_attempts_in_flight {
            return Some(None);
        }
        if let Origin::Peer(uid) = origin {
            let mine = held.values().filter(|h| h.origin == origin).count();
            if mine >= policy.max_attempts_per_uid {
                return Some(Some(uid));
            }
        }
        None
    }

    pub(super) async fn lock_states(&self, keys: Vec<String>) -> Result<Vec<StateOut>, FleetError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let arg = KeysArg {
            p: self.prefix(),
            host: self.host(),
            stream_length: self.fleet.stream_length,
            keys,
            max: 0,
        };
        self.link.call("warden_state", &arg).await
    }

    async fn members(&self, set: String) -> Result<Vec<String>, FleetError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(set);
        self.link.query(cmd).await
    }

    pub(super) async fn fleet_unlock(
        &self,
        sel: &Selector,
        by_uid: u32,
    ) -> Result<Unlocked, FleetError> {
        let keys: Vec<String> = match sel {
            Selector::Key(k) => vec![k.to_string()],
            Selector::User(u) => {
                let mut v = self.members(self.key(&format!("u:{u}"))).await?;
                v.push(KeyId::new(ADMIN_RULE, [("user", u.as_str())]).to_string());
                v
            }
            Selector::Rhost(r) => {
                let source = self.plans().admin_rhost_key(r);
                let mut v = self.members(self.key(&format!("a:{source}"))).await?;
                v.push(KeyId::new(ADMIN_RULE, [("rhost", source.as_str())]).to_string());
                v
            }
            Selector::All => {
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(self.key("lockkeys")).arg(0).arg(-1);
                self.link.query(cmd).await?
            }
        };
        let arg = UnlockArg {
            p: self.prefix(),
            host: self.host(),
            stream_length: self.fleet.stream_length,
            keys,
            by: format!("uid={by_uid}"),
        };
        let out: UnlockOut = self.link.call("warden_unlock", &arg).await?;
        Ok(Unlocked {
            cleared: out.cleared,
            lifted: out
                .lifted
                .iter()
                .filter_map(|k| KeyId::parse(k).ok())
                .collect(),
            next: None,
        })
    }

    async fn fleet_explain(&self, a: &Attempt, origin: Origin) -> Result<Explanation, FleetError> {
        let (arg, plan) = self
            .begin_arg(a, origin, String::new(), true)
            .map_err(|e| FleetError::Config(e.to_string()))?;
        let out: BeginOut = self.link.call("warden_begin", &arg).await?;
        let (mut verdict, keys) = self.verdict_of(&out, &plan);
        if let Some(r) = plan.refused.clone() {
            verdict = r;
        }
        let own: Vec<String> = keys.iter().map(|(_, k)| k.to_string()).collect();
        let covering: Vec<String> = plan
            .admin
            .iter()
            .chain(plan.others.iter())
            .map(ToString::to_string)
            .collect();
        let states = self
            .lock_states(own.iter().chain(covering.iter()).cloned().collect())
            .await?;
        let report = |s: &StateOut| -> Option<KeyReport> {
            let k = KeyId::parse(&s.k).ok()?;
            Some(KeyReport {
                limit: self.limit_of(k.rule()),
                key: k,
                failures: u32::try_from(s.failures.len()).unwrap_or(u32::MAX),
                in_flight: s.held,
                lock: s.lock.as_ref().map(lock_from),
                lockouts: u32::try_from(s.lockouts.len()).unwrap_or(u32::MAX),
            })
        };
        Ok(Explanation {
            source: plan.source.clone(),
            familiar: out.familiar,
            familiar_sources: Vec::new(),
            allowlisted: plan.allowlisted,
            keys: states
                .iter()
                .filter(|s| own.contains(&s.k))
                .filter_map(report)
                .collect(),
            covering: states
                .iter()
                .filter(|s| !own.contains(&s.k) && s.lock.is_some())
                .filter_map(report)
                .collect(),
            verdict,
            // A fleet has no observe mode (the config refuses it).
            would: None,
        })
    }

    async fn fleet_account(
        &self,
        a: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<Option<Reason>, FleetError> {
        let keys: Vec<String> = {
            // The planner holds no state a panic could have left half-made;
            // refusing to look would let a locked user in.
            let p = self.plans();
            let plan = p.plan(a, origin);
            let mut keys: Vec<String> = plan
                .keys
                .iter()
                .chain(plan.familiar_keys.iter().flatten())
                .filter(|(r, _)| r.tracks(Field::User))
                .map(|(_, k)| k.to_string())
                .collect();
            keys.push(KeyId::new(ADMIN_RULE, [("user", a.user.as_str())]).to_string());
            keys.extend(plan.others.iter().map(ToString::to_string));
            keys
        };
        let states = self.lock_states(keys).await?;
        let locks: Vec<LockOut> = states
            .into_iter()
            .filter_map(|s| s.lock)
            .filter(|l| l.until < 0 || l.until.unsigned_abs() > now.0)
            .collect();
        if locks.is_empty() {
            return Ok(None);
        }
        Ok(Some(locked_reason(&locks, |r| self.limit_of(r))))
    }

    /// Attempts of this host's past their deadline: counted as abandoned,
    /// except for services whose stacks have never reported an end.
    async fn abandon_expired(&self, now: Time) {
        let expired: Vec<Held> = match self.held.lock() {
            Ok(mut held) => {
                let ids: Vec<AttemptId> = held
                    .iter()
                    .filter(|(_, h)| h.deadline <= now)
                    .map(|(id, _)| *id)
                    .collect();
                ids.into_iter().filter_map(|id| held.remove(&id)).collect()
            }
            Err(_) => return,
        };
        for h in expired {
            let reported = h.origin != Origin::Root
                || self
                    .ended
                    .lock()
                    .map(|e| e.contains(&h.attempt.service))
                    .unwrap_or(true);
            if h.allowlisted || !reported {
                if !reported {
                    self.alarms.raise(
                        &Alert::HalfWired {
                            service: h.attempt.service.clone(),
                        },
                        now,
                    );
                }
                self.finish(Some(&h), &h.attempt, h.origin, false).await;
                let mut e = attempt_event(&h.attempt, h.origin, h.deadline, EventKind::Abandoned);
                if !reported {
                    e.reason = Some(
                        "uncounted: this service's stack never reports how attempts end".into(),
                    );
                }
                self.record(vec![e], h.origin, Durability::Immediate);
                continue;
            }
            let _ = self
                .count_failure(
                    h.member.clone(),
                    h.specs.clone(),
                    &h.attempt,
                    h.origin,
                    FailureKind::Abandoned,
                    now,
                )
                .await;
        }
    }
}

impl Backend for FleetBackend {
    fn begin<'a>(&'a self, a: &'a Attempt, origin: Origin, now: Time) -> Decided<'a, Verdict> {
        Box::pin(async move {
            if self.up() {
                match self.fleet_begin(a, origin, now).await {
                    Ok(d) => return Ok(d),
                    Err(e) => self.degrade(&e),
                }
            }
            match self.mode() {
                OnUnavailable::Local => self.local.begin(a, origin, now).await,
                OnUnavailable::Deny => {
                    Ok(self.refuse(a, origin, now, Reason::plain(ReasonKind::Crowded)))
                }
                OnUnavailable::Ignore => decided(
                    Verdict {
                        attempt: Some(self.next_id()),
                        reason: Reason::plain(ReasonKind::Allowlisted),
                    },
                    None,
                ),
            }
        })
    }

    fn fail<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        kind: FailureKind,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>> {
        Box::pin(async move {
            if let Some(local_id) = id.filter(|_| self.is_local_id(id)) {
                // Begun by this host alone during an outage: counted here,
                // and told to the fleet now or when it returns.
                if self.mode() == OnUnavailable::Local {
                    let mut specs = self.fresh_specs(a, origin);
                    if let Some(s) = specs.as_mut().filter(|_| kind.is_code()) {
                        self.add_code_specs(s, a, origin, false);
                    }
                    self.tell_fleet(self.member(local_id), specs.unwrap_or_default(), a, now)
                        .await?;
                }
                return self.local.fail(id, a, origin, kind, now).await;
            }
            if kind == FailureKind::Repeat {
                let mut e = attempt_event(a, origin, now, EventKind::Failure);
                e.reason = Some("repeat".into());
                return self
                    .end_uncounted(id, a, origin, e, Durability::Immediate)
                    .await;
            }
            let held = match self.take_held(id, a, origin) {
                Ok(h) => h,
                Err(e) => return decided(Err(e), None),
            };
            let (member, mut specs, familiar) = match held {
                Some(h) if h.allowlisted => {
                    let mut e = attempt_event(a, origin, now, failure_kind(kind));
                    e.reason = Some("allowlisted".into());
                    let d = self.record(vec![e], origin, Durability::Immediate);
                    return decided(Ok(()), d);
                }
                Some(h) => (h.member, h.specs, h.familiar),
                None => (
                    self.stray_member(),
                    self.fresh_specs(a, origin).unwrap_or_default(),
                    false,
                ),
            };
            if kind.is_code() {
                self.add_code_specs(&mut specs, a, origin, familiar);
            }
            self.count_failure(member, specs, a, origin, kind, now)
                .await
        })
    }

    fn succeed<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>> {
        Box::pin(async move {
            if self.is_local_id(id) {
                return self.local.succeed(id, a, origin, now).await;
            }
            let held = match self.take_held(id, a, origin) {
                Ok(h) => h,
                Err(e) => return decided(Err(e), None),
            };
            if !self.up() {
                // Its places are freed by the replay; the reset and the
                // familiar source stay this host's (a success is not
                // replayed: it could undo failures made after it).
                self.release_later(held.as_ref());
                return self.local.succeed(None, a, origin, now).await;
            }
            self.finish(held.as_ref(), a, origin, true).await;
            let mut e = attempt_event(a, origin, now, EventKind::Success);
            e.failures = None;
            let d = self.record(vec![e], origin, Durability::Deferred);
            decided(Ok(()), d)
        })
    }

    fn release<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>> {
        Box::pin(async move {
            if self.is_local_id(id) {
                return self.local.release(id, a, origin, now).await;
            }
            // Committed before its answer, as on a single host (a release
            // is rare, and its line precedes the reply).
            let e = attempt_event(a, origin, now, EventKind::Aborted);
            self.end_uncounted(id, a, origin, e, Durability::Immediate)
                .await
        })
    }

    fn refuse_after_password<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        why: &'a str,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>> {
        Box::pin(async move {
            if self.is_local_id(id) {
                return self
                    .local
                    .refuse_after_password(id, a, origin, why, now)
                    .await;
            }
            let mut e = attempt_event(a, origin, now, EventKind::Refused);
            e.reason = Some(why.to_string());
            self.end_uncounted(id, a, origin, e, Durability::Immediate)
                .await
        })
    }

    fn await_code<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, bool> {
        Box::pin(async move {
            if self.is_local_id(id) {
                return self.local.await_code(id, a, origin, now).await;
            }
            let Some(id) = id else {
                return decided(false, None);
            };
            let policy = self.policy();
            let (member, keys) = {
                let Ok(mut held) = self.held.lock() else {
                    return decided(false, None);
                };
                let Some(h) = held.get_mut(&id) else {
                    return decided(false, None);
                };
                if h.attempt.user != a.user {
                    return Err(ServiceError::from(AttemptError::UserMismatch));
                }
                if origin != Origin::Root && h.origin != origin {
                    return Err(ServiceError::from(AttemptError::NotYours));
                }
                h.deadline = now.plus(policy.attempt_timeout);
                h.awaiting_code = true;
                (
                    h.member.clone(),
                    h.specs.iter().map(|s| s.k.clone()).collect::<Vec<_>>(),
                )
            };
            if self.up() && !keys.is_empty() {
                let lease = millis(policy.attempt_timeout) + LEASE_GRACE_MS;
                let arg = HoldArg {
                    p: self.prefix(),
                    id: member,
                    keys,
                    lease,
                    lease_ttl: lease + 60_000,
                };
                if let Err(e) = self.link.call::<Now>("warden_hold", &arg).await {
                    self.degrade(&e);
                }
            }
            decided(true, None)
        })
    }

    fn check_code<'a>(&'a self, c: CodeEntry<'a>) -> Decided<'a, CodeVerdict> {
        Box::pin(async move {
            let (id, a, origin, now) = (c.id, c.attempt, c.origin, c.now);
            if self.is_local_id(id) {
                return self.local.check_code(c).await;
            }
            let awaiting = id.is_some_and(|id| {
                self.held
                    .lock()
                    .ok()
                    .and_then(|h| {
                        h.get(&id)
                            .map(|h| h.awaiting_code && h.attempt.user == a.user)
                    })
                    .unwrap_or(false)
            });
            if !awaiting {
                return decided(CodeVerdict::StartAgain, None);
            }
            let (outcome, spent) = self
                .verify(&a.user, c.typed, c.remember.as_ref(), now)
                .await?;
            match outcome {
                CodeOutcome::Good { recovery_left } => {
                    if let Some(d) = spent {
                        let _ = d.await;
                    }
                    let done = self.succeed(id, a, origin, now).await?;
                    if let Err(e) = done.value {
                        return Err(ServiceError::from(e));
                    }
                    decided(CodeVerdict::Accepted { recovery_left }, done.durable)
                }
                CodeOutcome::Wrong | CodeOutcome::Replayed => {
                    let kind = if outcome == CodeOutcome::Replayed {
                        FailureKind::TotpReplayed
                    } else {
                        FailureKind::Totp
                    };
                    let done = self.fail(id, a, origin, kind, now).await?;
                    decided(CodeVerdict::Wrong, done.durable)
                }
                CodeOutcome::NotEnrolled => {
                    let done = self
                        .refuse_after_password(id, a, origin, "totp-not-enrolled", now)
                        .await?;
                    decided(CodeVerdict::NotEnrolled, done.durable)
                }
            }
        })
    }

    fn prove_code<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        code: &'a str,
        now: Time,
    ) -> Decided<'a, Proof> {
        Box::pin(async move {
            if !self.up() {
                return self.local.prove_code(a, origin, code, now).await;
            }
            if self.account(a, origin, now).await?.is_some() {
                return decided(Proof::Locked, None);
            }
            let (outcome, spent) = self.verify(&a.user, code, None, now).await?;
            match outcome {
                CodeOutcome::Good { .. } => decided(Proof::Good, spent),
                CodeOutcome::NotEnrolled => decided(Proof::NoCode, None),
                CodeOutcome::Wrong | CodeOutcome::Replayed => {
                    let done = self.fail(None, a, origin, FailureKind::Totp, now).await?;
                    decided(Proof::Wrong, done.durable)
                }
            }
        })
    }

    fn explain<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> BoxFuture<'a, Result<Explanation, ServiceError>> {
        Box::pin(async move {
            if !self.up() {
                return self.local.explain(a, origin, now).await;
            }
            self.fleet_explain(a, origin).await.map_err(fleet_err)
        })
    }

    fn address(&self, ip: IpAddr, now: Time) -> BoxFuture<'_, Result<AddressReport, ServiceError>> {
        // What this host knows of an address; the fleet's keys per address
        // are in `locks` and `explain`.
        self.local.address(ip, now)
    }

    fn account<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> BoxFuture<'a, Result<Option<Reason>, ServiceError>> {
        Box::pin(async move {
            if self.up() {
                match self.fleet_account(a, origin, now).await {
                    Ok(r) => return Ok(r),
                    Err(e) => self.degrade(&e),
                }
            }
            self.local.account(a, origin, now).await
        })
    }

    fn totp_record<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<TotpRecord>, ServiceError>> {
        Box::pin(async move {
            if self.shares_totp() {
                match self.totp_get(user).await {
                    Ok(r) => return Ok(r.map(|(_, rec)| rec)),
                    Err(e) => self.degrade(&e),
                }
            }
            self.local.totp_record(user).await
        })
    }

    fn totp_change<'a>(&'a self, user: &'a str, change: TotpChange<'a>) -> Decided<'a, bool> {
        Box::pin(async move {
            if !self.shares_totp() {
                return self.local.totp_change(user, change).await;
            }
            let current = match self.totp_get(user).await {
                Ok(c) => c,
                Err(e) => {
                    self.degrade(&e);
                    return self.local.totp_change(user, change).await;
                }
            };
            let (old, mut rec) = match current {
                Some((hex, rec)) => (hex, Some(rec)),
                None => (String::new(), None),
            };
            if !change(&mut rec)? {
                return decided(false, None);
            }
            if !self
                .totp_put(user, &old, rec.as_ref())
                .await
                .map_err(fleet_err)?
            {
                return Err(ServiceError::Invalid(format!(
                    "{user}'s TOTP record was changed on another host meanwhile; try again"
                )));
            }
            self.totp_mirror(user, rec).await;
            decided(true, None)
        })
    }

    fn tick(&self, now: Time) -> Decided<'_, ()> {
        Box::pin(async move {
            self.abandon_expired(now).await;
            if self.up() {
                let arg = KeysArg {
                    p: self.prefix(),
                    host: self.host(),
                    stream_length: self.fleet.stream_length,
                    keys: Vec::new(),
                    max: 256,
                };
                if let Err(e) = self.link.call::<Now>("warden_sweep", &arg).await {
                    self.degrade(&e);
                }
            }
            self.local.tick(now).await
        })
    }

    fn purge_page(&self, after: Option<KeyId>, n: usize, now: Time) -> Decided<'_, Option<KeyId>> {
        self.local.purge_page(after, n, now)
    }

    fn trim_audit(&self, before: Time) -> BoxFuture<'_, Result<u64, ServiceError>> {
        self.local.trim_audit(before)
    }

    fn lock<'a>(&'a self, req: &'a AdminLock, now: Time) -> Decided<'a, KeyId> {
        Box::pin(async move {
            let value = match req.target {
                Field::Rhost => self.plans().admin_rhost_key(&req.value),
                _ => req.value.clone(),
            };
            if req.target == Field::Rhost && value.contains('/') {
                // A range wider than one source: the fleet checks an
                // attempt's own address key only, so such a lock would hold
                // nothing. Refused loudly rather than taken and ignored.
                let first = value
                    .parse::<ipnet::IpNet>()
                    .map(|n| n.network().to_string())
                    .unwrap_or_default();
                let probe = Attempt {
                    service: "sshd".into(),
                    user: String::new(),
                    rhost: Some(first),
                    tty: None,
                    ruser: None,
                };
                let source = self.plans().plan(&probe, Origin::Root).source;
                if source != value {
                    return Err(ServiceError::Invalid(format!(
                        "{value} is wider than one source; a fleet does not enforce range locks yet: lock its addresses one by one, or use [deny] rhosts in warden.toml"
                    )));
                }
            }
            let k = KeyId::new(ADMIN_RULE, [(req.target.name(), value.as_str())]);
            let len = req
                .length
                .map_or(-1, |d| i64::try_from(millis(d)).unwrap_or(i64::MAX));
            if self.up() {
                let arg = LockArg {
                    p: self.prefix(),
                    host: self.host(),
                    stream_length: self.fleet.stream_length,
                    k: k.to_string(),
                    len,
                    uid: req.by_uid,
                    why: &req.reason,
                    user: (req.target == Field::User).then(|| value.clone()),
                    rhost: (req.target == Field::Rhost).then(|| value.clone()),
                };
                match self.link.call::<Locked>("warden_lock", &arg).await {
                    // Its event reaches this host's log and bus from the
                    // stream, as it reaches every other host's.
                    Ok(out) => {
                        self.safeguard(&out.locked).await;
                        return decided(k, None);
                    }
                    Err(e) => self.degrade(&e),
                }
            }
            self.journal_append(&Entry::Lock {
                k: k.to_string(),
                len,
                uid: req.by_uid,
                why: req.reason.clone(),
            })?;
            self.local.lock(req, now).await
        })
    }

    fn unlock_page<'a>(
        &'a self,
        sel: &'a Selector,
        by_uid: u32,
        after: Option<KeyId>,
        n: usize,
        now: Time,
    ) -> Decided<'a, Unlocked> {
        Box::pin(async move {
            if self.up() && after.is_none() {
                match self.fleet_unlock(sel, by_uid).await {
                    Ok(u) => {
                        // The local mirror follows from the stream; an
                        // outage's own locks here go too.
                        let local = self.local.unlock_page(sel, by_uid, None, n, now).await?;
                        let mut u = u;
                        for k in local.value.lifted {
                            if !u.lifted.contains(&k) {
                                u.lifted.push(k);
                            }
                        }
                        return decided(u, local.durable);
                    }
                    Err(e) => self.degrade(&e),
                }
            }
            if after.is_none() {
                self.journal_append(&Entry::Unlock {
                    uid: by_uid,
                    selector: selector_text(sel),
                })?;
            }
            self.local.unlock_page(sel, by_uid, after, n, now).await
        })
    }

    fn locks_page(
        &self,
        after: Option<KeyId>,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<(KeyId, KeyState)>, ServiceError>> {
        Box::pin(async move {
            if !self.up() {
                return self.local.locks_page(after, n).await;
            }
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(self.key("lockkeys"))
                .arg(after.map_or("-".to_string(), |k| format!("({k}")))
                .arg("+")
                .arg("BYLEX")
                .arg("LIMIT")
                .arg(0)
                .arg(n);
            let keys: Vec<String> = self.link.query(cmd).await.map_err(fleet_err)?;
            let states = self.lock_states(keys).await.map_err(fleet_err)?;
            let mut out: Vec<(KeyId, KeyState)> = states
                .iter()
                .filter(|s| s.lock.is_some())
                .filter_map(state_from)
                .collect();
            out.sort_by_key(|a| a.0.to_string());
            Ok(out)
        })
    }

    fn user_keys<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(KeyId, KeyState)>, ServiceError>> {
        Box::pin(async move {
            if !self.up() {
                return self.local.user_keys(user).await;
            }
            let mut keys = self
                .members(self.key(&format!("u:{user}")))
                .await
                .map_err(fleet_err)?;
            keys.push(KeyId::new(ADMIN_RULE, [("user", user)]).to_string());
            keys.sort();
            keys.dedup();
            let states = self.lock_states(keys).await.map_err(fleet_err)?;
            Ok(states
                .iter()
                .filter(|s| s.lock.is_some() || !s.failures.is_empty() || s.held > 0)
                .filter_map(state_from)
                .collect())
        })
    }

    fn audit(&self, query: AuditQuery) -> BoxFuture<'_, Result<Vec<Event>, ServiceError>> {
        Box::pin(async move {
            if self.up() {
                match self.fleet_audit(&query).await {
                    Ok(events) => return Ok(events),
                    Err(e) => self.degrade(&e),
                }
            }
            self.local.audit(query).await
        })
    }

    fn counts(&self) -> Result<Counts, ServiceError> {
        let mut c = self.local.counts()?;
        c.in_flight += self.held.lock().map(|h| h.len()).unwrap_or(0);
        Ok(c)
    }

    fn half_wired(&self) -> Result<Vec<String>, ServiceError> {
        self.local.half_wired()
    }

    fn size_bytes(&self) -> u64 {
        self.local.size_bytes()
    }

    fn note_groups(&self, user: &str, groups: Option<Vec<String>>) {
        // The planner picks the fleet's keys; the local engine decides alone
        // in an outage.
        self.note_planned_groups(user, groups.clone());
        self.local.note_groups(user, groups);
    }

    fn knows_groups(&self, user: &str) -> bool {
        self.plans().knows_groups(user)
    }

    fn set_config(&self, config: &Config) -> Result<(), ServiceError> {
        self.set_policy(config);
        self.local.set_config(config)
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        self.local.flush()
    }

    fn fleet(&self) -> Option<super::FleetReport> {
        Some(self.report())
    }
}

impl FleetBackend {
    /// Checks a typed code: against the fleet's record when TOTP is shared,
    /// else against this host's.
    async fn verify(
        &self,
        user: &str,
        typed: &str,
        remember: Option<&(String, Time)>,
        now: Time,
    ) -> Result<(CodeOutcome, Option<Durable>), ServiceError> {
        if self.shares_totp() {
            return Ok((self.fleet_verify(user, typed, remember, now).await?, None));
        }
        self.local.verify_code(user, typed, remember, now)
    }
}

/// How a journalled unlock names what it lifts, to be replayed.
pub(super) fn selector_text(sel: &Selector) -> String {
    match sel {
        Selector::User(u) => format!("user={u}"),
        Selector::Rhost(r) => format!("rhost={r}"),
        Selector::Key(k) => format!("key={k}"),
        Selector::All => "all".into(),
    }
}

/// Reads [`selector_text`] back.
pub(super) fn selector_of(text: &str) -> Option<Selector> {
    if text == "all" {
        return Some(Selector::All);
    }
    let (kind, value) = text.split_once('=')?;
    match kind {
        "user" => Some(Selector::User(value.to_string())),
        "rhost" => Some(Selector::Rhost(value.to_string())),
        "key" => KeyId::parse(value).ok().map(Selector::Key),
        _ => None,
    }
}
