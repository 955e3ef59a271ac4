//! The local backend: the engine decides in memory under one lock, and the
//! store writer makes its decisions durable in redb, in the engine's order.

use super::alarms::Alarms;
use super::backend::{
    Backend, BoxFuture, CodeEntry, CodeVerdict, Decided, Decision, Proof, TotpChange,
};
use super::{Announcer, Counts, Durable, ServiceError};
use crate::config::Config;
use crate::engine::{
    AddressReport, AdminLock, Attempt, AttemptError, AttemptId, Effects, Engine, Event,
    Explanation, FailureKind, KeyId, KeyState, Lock, Origin, Reason, Selector, Unlocked, Verdict,
};
use crate::store::{AuditQuery, Durability, Store, StoreError, Writer};
use crate::time::Time;
use crate::totp::{self, CodeCheck, Spent, TotpRecord};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub struct LocalBackend {
    engine: Mutex<Engine>,
    /// Enrolled users' TOTP records. Locked after the engine when both are held.
    book: Mutex<HashMap<String, TotpRecord>>,
    writer: Writer,
    store: Arc<dyn Store>,
    announce: Arc<Announcer>,
    alarms: Arc<Alarms>,
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl LocalBackend {
    pub fn new(
        engine: Engine,
        totp: Vec<(String, TotpRecord)>,
        store: Arc<dyn Store>,
        writer: Writer,
        announce: Arc<Announcer>,
        alarms: Arc<Alarms>,
    ) -> LocalBackend {
        LocalBackend {
            engine: Mutex::new(engine),
            book: Mutex::new(totp.into_iter().collect()),
            writer,
            store,
            announce,
            alarms,
        }
    }

    fn engine(&self) -> Result<MutexGuard<'_, Engine>, ServiceError> {
        self.engine.lock().map_err(|_| ServiceError::Poisoned)
    }

    fn book(&self) -> Result<MutexGuard<'_, HashMap<String, TotpRecord>>, ServiceError> {
        self.book.lock().map_err(|_| ServiceError::Poisoned)
    }

    /// Runs `f` on the engine and queues its writes under the engine's lock,
    /// so that commit order follows engine order. What it did is announced
    /// (logged, signalled) after the commit, never here.
    fn apply<T>(
        &self,
        durability: Durability,
        origin: Origin,
        f: impl FnOnce(&mut Engine, &mut Effects) -> Result<T, ServiceError>,
    ) -> Result<Decision<T>, ServiceError> {
        let now = Time::now();
        let mut engine = self.engine()?;
        let mut fx = Effects::default();
        let value = f(&mut engine, &mut fx);
        let alerts = std::mem::take(&mut fx.alerts);
        // Every commit goes past the announcer, events or not, so that a
        // failed one is always logged there, whether or not anyone waits.
        let durable = (!fx.is_empty()).then(|| {
            let then = self.announce.then(fx.events.clone(), origin, now);
            self.writer.submit_then(fx, durability, Some(then))
        });
        drop(engine);
        for a in &alerts {
            self.alarms.raise(a, now);
        }
        Ok(Decision {
            value: value?,
            durable,
        })
    }

    fn decide<'a, T: Send + 'a>(
        &self,
        durability: Durability,
        origin: Origin,
        f: impl FnOnce(&mut Engine, &mut Effects) -> Result<T, ServiceError>,
    ) -> Decided<'a, T> {
        ready(self.apply(durability, origin, f))
    }
}

impl Backend for LocalBackend {
    fn begin<'a>(&'a self, a: &'a Attempt, origin: Origin, now: Time) -> Decided<'a, Verdict> {
        self.decide(Durability::Immediate, origin, |e, fx| {
            Ok(e.begin(a, origin, now, fx))
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
        self.decide(Durability::Immediate, origin, |e, fx| {
            Ok(e.fail(id, a, origin, kind, now, fx))
        })
    }

    fn succeed<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>> {
        // A success does not wait for an fsync of its own: losing it in a
        // crash only leaves failure counters standing, which is stricter,
        // never looser. A busy login server then costs its disk one fsync a
        // second, not one per login.
        self.decide(Durability::Deferred, origin, |e, fx| {
            Ok(e.succeed(id, a, origin, now, fx))
        })
    }

    fn release<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>> {
        self.decide(Durability::Immediate, origin, |e, fx| {
            Ok(e.release(id, a, origin, now, fx))
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
        self.decide(Durability::Immediate, origin, |e, fx| {
            Ok(e.refuse_after_password(id, a, origin, why, now, fx))
        })
    }

    fn await_code<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, bool> {
        self.decide(Durability::Immediate, origin, |e, _| {
            Ok(e.await_code(id, a, origin, now)?)
        })
    }

    fn check_code<'a>(&'a self, c: CodeEntry<'a>) -> Decided<'a, CodeVerdict> {
        let (id, a, origin, now) = (c.id, c.attempt, c.origin, c.now);
        self.decide(Durability::Immediate, origin, |engine, fx| {
            if !engine.awaiting_code(id, a, origin) {
                return Ok(CodeVerdict::StartAgain);
            }
            let mut book = self.book()?;
            let Some(rec) = book.get_mut(&a.user).filter(|r| r.confirmed) else {
                engine.refuse_after_password(id, a, origin, "totp-not-enrolled", now, fx)?;
                return Ok(CodeVerdict::NotEnrolled);
            };
            let recovery_left = match totp::spend(rec, c.typed, now) {
                Spent::Code(_) => None,
                Spent::Recovery(left) => Some(left),
                spent @ (Spent::Replayed | Spent::Wrong) => {
                    let kind = if spent == Spent::Replayed {
                        FailureKind::TotpReplayed
                    } else {
                        FailureKind::Totp
                    };
                    engine.fail(id, a, origin, kind, now, fx)?;
                    return Ok(CodeVerdict::Wrong);
                }
            };
            if let Some((source, until)) = &c.remember {
                rec.remember(source, *until, now);
            }
            fx.totp.push((a.user.clone(), Some(rec.clone())));
            engine.succeed(id, a, origin, now, fx)?;
            Ok(CodeVerdict::Accepted { recovery_left })
        })
    }

    fn prove_code<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        code: &'a str,
        now: Time,
    ) -> Decided<'a, Proof> {
        self.decide(Durability::Immediate, origin, |engine, fx| {
            if engine.account_lock(a, origin, now).is_some() {
                return Ok(Proof::Locked);
            }
            let mut book = self.book()?;
            let Some(rec) = book.get_mut(&a.user).filter(|r| r.confirmed) else {
                return Ok(Proof::NoCode);
            };
            match totp::check(rec, code, now) {
                CodeCheck::Good(step) => {
                    rec.last_step = step;
                    fx.totp.push((a.user.clone(), Some(rec.clone())));
                    Ok(Proof::Good)
                }
                _ => {
                    engine.fail(None, a, origin, FailureKind::Totp, now, fx)?;
                    Ok(Proof::Wrong)
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
        ready(self.engine().map(|e| e.explain(a, origin, now)))
    }

    fn address(&self, ip: IpAddr, now: Time) -> BoxFuture<'_, Result<AddressReport, ServiceError>> {
        ready(self.engine().map(|e| e.address(ip, now)))
    }

    fn account<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> BoxFuture<'a, Result<Option<Reason>, ServiceError>> {
        ready(self.engine().map(|e| e.account_lock(a, origin, now)))
    }

    fn totp_record<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<TotpRecord>, ServiceError>> {
        ready(self.book().map(|b| b.get(user).cloned()))
    }

    fn totp_change<'a>(&'a self, user: &'a str, change: TotpChange<'a>) -> Decided<'a, bool> {
        let done = (|| {
            let mut book = self.book()?;
            let mut rec = book.get(user).cloned();
            if !change(&mut rec)? {
                return Ok(Decision {
                    value: false,
                    durable: None,
                });
            }
            match &rec {
                Some(r) => book.insert(user.to_string(), r.clone()),
                None => book.remove(user),
            };
            let mut fx = Effects::default();
            fx.totp.push((user.to_string(), rec));
            // Queued under the book's lock, so two changes commit in order.
            Ok(Decision {
                value: true,
                durable: Some(self.writer.submit(fx, Durability::Immediate)),
            })
        })();
        ready(done)
    }

    fn tick(&self, now: Time) -> Decided<'_, ()> {
        self.decide(Durability::Immediate, Origin::Root, |e, fx| {
            e.tick(now, fx);
            Ok(())
        })
    }

    fn purge_page(&self, after: Option<KeyId>, n: usize, now: Time) -> Decided<'_, Option<KeyId>> {
        self.decide(Durability::Immediate, Origin::Root, |e, fx| {
            Ok(e.purge_page(after.as_ref(), n, now, fx))
        })
    }

    fn trim_audit(&self, before: Time) -> BoxFuture<'_, Result<u64, ServiceError>> {
        let store = self.store.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.trim_audit(before))
                .await
                .map_err(|e| ServiceError::Task(e.to_string()))?
                .map_err(Into::into)
        })
    }

    fn lock<'a>(&'a self, req: &'a AdminLock, now: Time) -> Decided<'a, KeyId> {
        self.decide(Durability::Immediate, Origin::Root, |e, fx| {
            Ok(e.admin_lock(req, now, fx))
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
        self.decide(Durability::Immediate, Origin::Root, |e, fx| {
            Ok(e.unlock_page(sel, by_uid, after.as_ref(), n, now, fx))
        })
    }

    fn locks_page(
        &self,
        after: Option<KeyId>,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<(KeyId, KeyState)>, ServiceError>> {
        ready(self.engine().map(|e| e.locks_page(after.as_ref(), n)))
    }

    fn user_keys<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(KeyId, KeyState)>, ServiceError>> {
        ready(self.engine().map(|e| {
            e.user_keys(user)
                .into_iter()
                .map(|(k, st)| (k.clone(), st.clone()))
                .collect()
        }))
    }

    fn audit(&self, query: AuditQuery) -> BoxFuture<'_, Result<Vec<Event>, ServiceError>> {
        let store = self.store.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.audit(&query))
                .await
                .map_err(|e| ServiceError::Task(e.to_string()))?
                .map_err(Into::into)
        })
    }

    fn counts(&self) -> Result<Counts, ServiceError> {
        let e = self.engine()?;
        Ok(Counts {
            keys: e.tracked_keys(),
            locks: e.lock_count(),
            in_flight: e.pending_attempts(),
            pressure: e.pressure(),
        })
    }

    fn half_wired(&self) -> Result<Vec<String>, ServiceError> {
        Ok(self.engine()?.half_wired())
    }

    fn size_bytes(&self) -> u64 {
        self.store.size_bytes()
    }

    fn note_groups(&self, user: &str, groups: Option<Vec<String>>) {
        if let Ok(mut e) = self.engine() {
            e.note_groups(user, groups);
        }
    }

    fn knows_groups(&self, user: &str) -> bool {
        self.engine().is_ok_and(|e| e.knows_groups(user))
    }

    fn set_config(&self, config: &Config) -> Result<(), ServiceError> {
        self.engine()?.set_policy(config.policy.clone());
        self.store.set_retention(&config.audit);
        Ok(())
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        let rx = self.writer.flush();
        Box::pin(async move {
            rx.await.unwrap_or(Err(StoreError::WriterGone))?;
            Ok(())
        })
    }
}

/// What checking a typed code against this host's record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeOutcome {
    Good { recovery_left: Option<usize> },
    Wrong,
    Replayed,
    NotEnrolled,
}

/// What a backend that decides elsewhere (the fleet) asks of the local one:
/// the log, the audit trail, TOTP records, and the mirror of fleet locks.
impl LocalBackend {
    /// Commits events to the local audit trail, then logs and signals them.
    pub fn record(
        &self,
        events: Vec<Event>,
        origin: Origin,
        durability: Durability,
    ) -> Option<Durable> {
        if events.is_empty() {
            return None;
        }
        let now = Time::now();
        let fx = Effects {
            events: events.clone(),
            ..Effects::default()
        };
        let then = self.announce.then(events, origin, now);
        Some(self.writer.submit_then(fx, durability, Some(then)))
    }

    /// Checks a code against the user's record here; a good one is spent
    /// (and `remember` noted) at once, so it cannot be used twice.
    pub fn verify_code(
        &self,
        user: &str,
        typed: &str,
        remember: Option<&(String, Time)>,
        now: Time,
    ) -> Result<(CodeOutcome, Option<Durable>), ServiceError> {
        let mut book = self.book()?;
        let Some(rec) = book.get_mut(user).filter(|r| r.confirmed) else {
            return Ok((CodeOutcome::NotEnrolled, None));
        };
        let recovery_left = match totp::spend(rec, typed, now) {
            Spent::Code(_) => None,
            Spent::Recovery(left) => Some(left),
            Spent::Replayed => return Ok((CodeOutcome::Replayed, None)),
            Spent::Wrong => return Ok((CodeOutcome::Wrong, None)),
        };
        if let Some((source, until)) = remember {
            rec.remember(source, *until, now);
        }
        let mut fx = Effects::default();
        fx.totp.push((user.to_string(), Some(rec.clone())));
        let durable = self.writer.submit(fx, Durability::Immediate);
        Ok((CodeOutcome::Good { recovery_left }, Some(durable)))
    }

    /// Applies a fleet lock or unlock to the local engine (durably, so it
    /// holds across a restart during an outage) and announces its event.
    pub fn mirror(
        &self,
        k: &KeyId,
        lock: Option<Lock>,
        event: Event,
    ) -> Result<Option<Durable>, ServiceError> {
        let now = Time::now();
        let mut engine = self.engine()?;
        let mut fx = Effects::default();
        // An unlock this host already announced (it saw the lock end by its
        // own clock first) is not announced twice.
        if engine.mirror_lock(k, lock, now, &mut fx) {
            fx.events.push(event);
        }
        if fx.is_empty() {
            return Ok(None);
        }
        let then = self.announce.then(fx.events.clone(), Origin::Root, now);
        let d = self
            .writer
            .submit_then(fx, Durability::Immediate, Some(then));
        drop(engine);
        Ok(Some(d))
    }

    /// As [`mirror`](Self::mirror), for a lock already announced (a resync
    /// after an outage): stored, neither logged nor signalled again.
    pub fn mirror_quietly(&self, k: &KeyId, lock: Option<Lock>) -> Result<(), ServiceError> {
        let now = Time::now();
        let mut engine = self.engine()?;
        let mut fx = Effects::default();
        let _ = engine.mirror_lock(k, lock, now, &mut fx);
        drop(self.writer.submit(fx, Durability::Immediate));
        Ok(())
    }

    /// Runs a closure on the engine: for the fleet's planning and fallback.
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> Result<T, ServiceError> {
        Ok(f(&*self.engine()?))
    }
}
