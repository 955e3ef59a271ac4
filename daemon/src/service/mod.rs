//! The daemon's shared core: the engine behind a lock, the store writer, and
//! the log. The socket server and the bus both act through it.

mod admin;
mod announce;
mod error;
mod limits;
mod totp;

pub use admin::{address_or_network, LockView, StatusView, UnlockView, UserView};
pub use announce::Announcer;
pub use error::{ServiceError, TotpError};
pub use limits::{AlertGate, Budgets, LogLimiter, LINES_PER_WINDOW};
pub use totp::{SuccessOutcome, CODE_PROMPT, NEEDS_PROMPT, NOT_ENROLLED};

use crate::config::Config;
use crate::engine::{
    Alert, Attempt, AttemptId, Effects, Engine, FailureKind, KeyId, KeyState, Origin, Pressure,
    Verdict,
};
use crate::log::Log;
use crate::logline;
use crate::store::{Durability, Store, StoreError, Writer};
use crate::time::Time;
use std::sync::{Arc, Mutex, RwLock};

/// Resolves once queued writes are durable.
pub type Durable = tokio::sync::oneshot::Receiver<Result<(), StoreError>>;

/// How many keys one turn of a long admin job (unlock all, purge, list)
/// handles before it lets go of the engine, so logins never wait behind it.
pub const PAGE: usize = 2048;

/// Requests an unprivileged socket peer may make: a burst of 30, then one a
/// second. A screen locker asks a few per login; a flood gets `Busy`.
pub const PEER_BURST: u32 = 30;
pub const PEER_PER_SEC: f64 = 1.0;
/// D-Bus calls a caller who is not an admin may make: 20 at once, 5 a second.
pub const BUS_BURST: u32 = 20;
pub const BUS_PER_SEC: f64 = 5.0;

/// The counts `Status` reports, read in O(1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub keys: usize,
    pub locks: usize,
    pub in_flight: usize,
    pub pressure: Pressure,
}

/// What `Status` reports beyond counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub counts: Counts,
    pub half_wired: Vec<String>,
}

pub struct Warden {
    engine: Mutex<Engine>,
    /// Enrolled users' TOTP records. Locked after the engine when both are held.
    totp: Mutex<std::collections::HashMap<String, crate::totp::TotpRecord>>,
    /// Log lines and bus events, after their commits.
    announce: Announcer,
    writer: Writer,
    store: Arc<dyn Store>,
    log: Arc<Log>,
    alerts: AlertGate,
    peer_budget: Budgets,
    bus_budget: Budgets,
    config: RwLock<Arc<Config>>,
    started: Time,
}

impl Warden {
    pub fn new(
        config: Config,
        engine: Engine,
        store: Arc<dyn Store>,
        writer: Writer,
        log: Arc<Log>,
        started: Time,
    ) -> std::io::Result<Warden> {
        store.set_retention(&config.audit);
        Ok(Warden {
            engine: Mutex::new(engine),
            totp: Mutex::new(std::collections::HashMap::new()),
            announce: Announcer::start(log.clone())?,
            writer,
            store,
            log,
            alerts: AlertGate::default(),
            peer_budget: Budgets::new(PEER_BURST, PEER_PER_SEC),
            bus_budget: Budgets::new(BUS_BURST, BUS_PER_SEC),
            config: RwLock::new(Arc::new(config)),
            started,
        })
    }

    /// Loads TOTP records read back from the store.
    pub fn restore_totp(
        &self,
        records: Vec<(String, crate::totp::TotpRecord)>,
    ) -> Result<(), ServiceError> {
        self.book()?.extend(records);
        Ok(())
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::engine::Event> {
        self.announce.subscribe()
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn started(&self) -> Time {
        self.started
    }

    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Whether an unprivileged socket peer may make another request now.
    pub fn peer_may_ask(&self, uid: u32, now: Time) -> bool {
        let ok = self.peer_budget.take(uid, now);
        if !ok {
            self.alert("peer-budget", now, &format!(
                "peer-over-budget uid={uid} action=\"requests refused with Busy\" budget=\"{PEER_BURST} at once, {PEER_PER_SEC}/s\""
            ));
        }
        ok
    }

    /// Whether a D-Bus caller who is not an admin may make another call now.
    pub fn caller_may_ask(&self, uid: u32, now: Time) -> bool {
        let ok = self.bus_budget.take(uid, now);
        if !ok {
            self.alert("bus-budget", now, &format!(
                "bus-over-budget uid={uid} action=\"calls refused\" budget=\"{BUS_BURST} at once, {BUS_PER_SEC}/s\""
            ));
        }
        ok
    }

    /// Logs an alert at most once a minute per kind, saying how many were held.
    fn alert(&self, kind: &'static str, now: Time, line: &str) {
        if let Some(held) = self.alerts.admit(kind, now) {
            if held > 0 {
                self.log.warn(&format!("{line} repeated={held}"));
            } else {
                self.log.warn(line);
            }
        }
    }

    /// Runs `f` on the engine and queues its writes under the engine's lock,
    /// so that commit order follows engine order. What it did is logged and
    /// signalled by the announcer once the commit is done, never here.
    fn apply<T>(
        &self,
        origin: Origin,
        f: impl FnOnce(&mut Engine, &mut Effects) -> T,
    ) -> Result<(T, Option<Durable>), ServiceError> {
        self.apply_with(Durability::Immediate, origin, f)
    }

    fn apply_with<T>(
        &self,
        durability: Durability,
        origin: Origin,
        f: impl FnOnce(&mut Engine, &mut Effects) -> T,
    ) -> Result<(T, Option<Durable>), ServiceError> {
        let now = Time::now();
        let mut engine = self.engine.lock().map_err(|_| ServiceError::Poisoned)?;
        let mut fx = Effects::default();
        let out = f(&mut engine, &mut fx);
        let alerts = std::mem::take(&mut fx.alerts);
        let pending = (!fx.is_empty()).then(|| {
            let then =
                (!fx.events.is_empty()).then(|| self.announce.then(fx.events.clone(), origin, now));
            self.writer.submit_then(fx, durability, then)
        });
        drop(engine);
        for a in alerts {
            self.log_alert(&a, now);
        }
        Ok((out, pending))
    }

    fn log_alert(&self, a: &Alert, now: Time) {
        match a {
            Alert::TableFull {
                keys,
                max,
                evicted_keys,
                evicted_locks,
            } => self.alert(
                "table-full",
                now,
                &format!(
                    "table-full keys={keys} max_tracked_keys={max} evicted_keys={evicted_keys} evicted_locks={evicted_locks} action=\"raise max_tracked_keys, or look for a flood with wardenctl locks\""
                ),
            ),
            Alert::Crowded { in_flight, uid } => {
                let who = uid.map_or("all".to_string(), |u| format!("uid={u}"));
                self.alert(
                    "crowded",
                    now,
                    &format!(
                        "attempts-crowded in_flight={in_flight} limit_hit={who} action=\"attempts refused until some end; see max_attempts_in_flight and max_attempts_per_uid\""
                    ),
                );
            }
            // Once per service (the engine raises it once): not rate-limited.
            Alert::HalfWired { service } => self.log.warn(&format!(
                "service-half-wired service={} abandoned={} action=\"its PAM stack begins attempts and never reports how they end: add the authfail and authsucc lines (wardenctl doctor shows which); until then its abandoned attempts are not counted\"",
                logline::quote(service),
                crate::engine::HALF_WIRED_AFTER
            )),
        }
    }

    /// Like [`apply`](Self::apply), then waits until the writes are durable.
    async fn apply_durably<T>(
        &self,
        origin: Origin,
        f: impl FnOnce(&mut Engine, &mut Effects) -> T,
    ) -> Result<T, ServiceError> {
        let (out, pending) = self.apply(origin, f)?;
        if let Some(rx) = pending {
            rx.await.unwrap_or(Err(StoreError::WriterGone))?;
        }
        Ok(out)
    }

    pub async fn begin(
        &self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<Verdict, ServiceError> {
        let (verdict, pending) = self.apply(origin, |e, fx| e.begin(attempt, origin, now, fx))?;
        // A refusal stands whether or not its record is on disk yet, so it is
        // answered at once and committed right behind.
        self.commit_behind("begin", pending);
        Ok(verdict)
    }

    pub async fn fail(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<(), ServiceError> {
        self.apply_durably(origin, |e, fx| {
            e.fail(id, attempt, origin, FailureKind::Password, now, fx)
        })
        .await?
        .map_err(Into::into)
    }

    pub async fn succeed(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<(), ServiceError> {
        // A success is answered before its commit, and the commit does not wait
        // for an fsync of its own: losing it in a crash only leaves failure
        // counters standing, which is stricter, never looser. A busy login
        // server then costs its disk one fsync a second, not one per login.
        let (result, pending) = self.apply_with(Durability::Deferred, origin, |e, fx| {
            e.succeed(id, attempt, origin, now, fx)
        })?;
        self.commit_behind("succeed", pending);
        result.map_err(Into::into)
    }

    /// Frees an attempt in which no password was given, counting nothing.
    pub async fn release(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<(), ServiceError> {
        let (result, pending) =
            self.apply(origin, |e, fx| e.release(id, attempt, origin, now, fx))?;
        self.commit_behind("release", pending);
        result.map_err(Into::into)
    }

    /// Lets queued writes commit without waiting for them; a failure is logged.
    fn commit_behind(&self, op: &'static str, pending: Option<Durable>) {
        let Some(rx) = pending else {
            return;
        };
        let log = self.log.clone();
        tokio::spawn(async move {
            if let Err(e) = rx.await.unwrap_or(Err(StoreError::WriterGone)) {
                log.error(&format!(
                    "store-error op={op} error={}",
                    logline::quote(&e.to_string())
                ));
            }
        });
    }

    /// Makes deferred commits durable; called on a clean stop.
    pub async fn flush(&self) -> Result<(), ServiceError> {
        self.writer
            .flush()
            .await
            .unwrap_or(Err(StoreError::WriterGone))?;
        Ok(())
    }

    /// Read-only access to the engine. Keep `f` to O(log n) work: logins
    /// wait behind it.
    fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> Result<T, ServiceError> {
        let engine = self.engine.lock().map_err(|_| ServiceError::Poisoned)?;
        Ok(f(&engine))
    }

    /// What `Status` reports; constant time whatever the table holds.
    fn counts(&self) -> Result<Counts, ServiceError> {
        self.with_engine(|e| Counts {
            keys: e.tracked_keys(),
            locks: e.lock_count(),
            in_flight: e.pending_attempts(),
            pressure: e.pressure(),
        })
    }

    /// Counts and the services wired by half.
    fn health(&self) -> Result<Health, ServiceError> {
        let half_wired = self.with_engine(|e| e.half_wired())?;
        Ok(Health {
            counts: self.counts()?,
            half_wired,
        })
    }

    /// Every lock, gathered a page at a time so that logins go on between pages.
    async fn all_locks(&self) -> Result<Vec<(KeyId, KeyState)>, ServiceError> {
        let mut out = Vec::new();
        let mut after: Option<KeyId> = None;
        loop {
            let page = self.with_engine(|e| e.locks_page(after.as_ref(), PAGE))?;
            let done = page.len() < PAGE;
            after = page.last().map(|(k, _)| k.clone());
            out.extend(page);
            if done {
                return Ok(out);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Installs a new config (already validated); the engine takes its policy.
    pub fn replace_config(&self, config: Config) -> Result<(), ServiceError> {
        let mut engine = self.engine.lock().map_err(|_| ServiceError::Poisoned)?;
        engine.set_policy(config.policy.clone());
        self.store.set_retention(&config.audit);
        match self.config.write() {
            Ok(mut c) => *c = Arc::new(config),
            Err(p) => *p.into_inner() = Arc::new(config),
        }
        Ok(())
    }

    /// Re-reads the config file (wardenctl reload, SIGHUP). A file with an
    /// error is refused and the running configuration stays. `by` is who
    /// asked, for the log (`uid=0`, `signal`).
    pub async fn reload(&self, by: &str) -> Result<std::path::PathBuf, String> {
        let old = self.config();
        let path = old.path.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .map_err(|e| e.to_string())?;
        match loaded {
            Ok(new) => {
                if new.socket != old.socket
                    || new.root_socket != old.root_socket
                    || new.state_dir != old.state_dir
                {
                    self.log
                        .warn("config-reload socket, root_socket and state_dir changes take effect at restart");
                }
                self.replace_config(new).map_err(|e| e.to_string())?;
                self.log.info(&format!(
                    "config-reloaded by={by} path={}",
                    logline::quote(&old.path.display().to_string())
                ));
                Ok(old.path.clone())
            }
            Err(e) => {
                self.log.warn(&format!(
                    "config-reload-refused by={by} error={}",
                    logline::quote(&e.to_string())
                ));
                Err(e.to_string())
            }
        }
    }

    /// Resolves expiries and abandoned attempts, and writes the summaries of
    /// log lines held back; called every second.
    pub async fn tick(&self, now: Time) {
        if let Err(e) = self
            .apply_durably(Origin::Root, |e, fx| e.tick(now, fx))
            .await
        {
            self.log.error(&format!(
                "store-error op=tick error={}",
                logline::quote(&e.to_string())
            ));
        }
        for line in self.announce.summaries(now) {
            self.log.warn(&line);
        }
    }

    /// Purges idle state a page at a time, and applies audit retention;
    /// called every minute.
    pub async fn housekeeping(&self, now: Time) {
        let mut after: Option<KeyId> = None;
        loop {
            match self
                .apply_durably(Origin::Root, |e, fx| {
                    e.purge_page(after.as_ref(), PAGE, now, fx)
                })
                .await
            {
                Ok(Some(next)) => after = Some(next),
                Ok(None) => break,
                Err(e) => {
                    self.log.error(&format!(
                        "store-error op=purge error={}",
                        logline::quote(&e.to_string())
                    ));
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        let audit = self.config().audit.clone();
        let store = self.store.clone();
        let before = now.minus(audit.max_age);
        let trimmed = tokio::task::spawn_blocking(move || store.trim_audit(before)).await;
        if let Ok(Err(e)) = trimmed {
            self.log.error(&format!(
                "store-error op=audit-retention error={}",
                logline::quote(&e.to_string())
            ));
        }
    }
}
