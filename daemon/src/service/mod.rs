//! The daemon's shared core: the engine behind a lock, the store writer, and
//! the log. The socket server and the bus both act through it.

mod totp;

pub use totp::{SuccessOutcome, NOT_ENROLLED, WRONG_CODE};

use crate::config::Config;
use crate::engine::{
    Attempt, AttemptError, AttemptId, Effects, Engine, EventKind, FailureKind, Verdict,
};
use crate::log::{Level, Log};
use crate::logline;
use crate::store::{Durability, Store, StoreError, Writer};
use crate::time::Time;
use std::sync::{Arc, Mutex, RwLock};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Attempt(#[from] AttemptError),
    #[error("internal error: the engine lock is poisoned; restart wardend")]
    Poisoned,
    #[error("{0}")]
    Totp(String),
}

/// Resolves once queued writes are durable.
pub type Durable = tokio::sync::oneshot::Receiver<Result<(), StoreError>>;

pub struct Warden {
    engine: Mutex<Engine>,
    /// Enrolled users' TOTP records. Locked after the engine when both are held.
    totp: Mutex<std::collections::HashMap<String, crate::totp::TotpRecord>>,
    /// Lock and unlock events for the bus; sending never waits on a listener.
    events: tokio::sync::broadcast::Sender<crate::engine::Event>,
    writer: Writer,
    store: Arc<dyn Store>,
    log: Arc<Log>,
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
    ) -> Warden {
        Warden {
            engine: Mutex::new(engine),
            totp: Mutex::new(std::collections::HashMap::new()),
            events: tokio::sync::broadcast::channel(1024).0,
            writer,
            store,
            log,
            config: RwLock::new(Arc::new(config)),
            started,
        }
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
        self.events.subscribe()
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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

    /// Runs `f` on the engine, logs what it did and queues its writes, all under
    /// the engine's lock so that log order and commit order follow engine order.
    pub fn apply<T>(
        &self,
        f: impl FnOnce(&mut Engine, &mut Effects) -> T,
    ) -> Result<(T, Option<Durable>), ServiceError> {
        self.apply_with(Durability::Immediate, f)
    }

    fn apply_with<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Engine, &mut Effects) -> T,
    ) -> Result<(T, Option<Durable>), ServiceError> {
        let mut engine = self.engine.lock().map_err(|_| ServiceError::Poisoned)?;
        let mut fx = Effects::default();
        let out = f(&mut engine, &mut fx);
        for e in &fx.events {
            let level = match e.kind {
                EventKind::Locked | EventKind::Refused => Level::Notice,
                _ => Level::Info,
            };
            self.log.write(level, &logline::format(e));
            if matches!(e.kind, EventKind::Locked | EventKind::Unlocked) {
                let _ = self.events.send(e.clone());
            }
        }
        let pending = (!fx.is_empty()).then(|| self.writer.submit(fx, durability));
        Ok((out, pending))
    }

    /// Like [`apply`](Self::apply), then waits until the writes are durable.
    pub async fn apply_durably<T>(
        &self,
        f: impl FnOnce(&mut Engine, &mut Effects) -> T,
    ) -> Result<T, ServiceError> {
        let (out, pending) = self.apply(f)?;
        if let Some(rx) = pending {
            rx.await.unwrap_or(Err(StoreError::WriterGone))?;
        }
        Ok(out)
    }

    pub async fn begin(&self, attempt: &Attempt, now: Time) -> Result<Verdict, ServiceError> {
        let (verdict, pending) = self.apply(|e, fx| e.begin(attempt, now, fx))?;
        // A refusal stands whether or not its record is on disk yet, so it is
        // answered at once and committed right behind.
        self.commit_behind("begin", pending);
        Ok(verdict)
    }

    pub async fn fail(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        now: Time,
    ) -> Result<(), ServiceError> {
        self.apply_durably(|e, fx| e.fail(id, attempt, FailureKind::Password, now, fx))
            .await?
            .map_err(Into::into)
    }

    pub async fn succeed(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        now: Time,
    ) -> Result<(), ServiceError> {
        // A success is answered before its commit, and the commit does not wait
        // for an fsync of its own: losing it in a crash only leaves failure
        // counters standing, which is stricter, never looser. A busy login
        // server then costs its disk one fsync a second, not one per login.
        let (result, pending) = self.apply_with(Durability::Deferred, |e, fx| {
            e.succeed(id, attempt, now, fx)
        })?;
        self.commit_behind("succeed", pending);
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

    /// Read-only access to the engine.
    pub fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> Result<T, ServiceError> {
        let engine = self.engine.lock().map_err(|_| ServiceError::Poisoned)?;
        Ok(f(&engine))
    }

    /// Installs a new config (already validated); the engine takes its policy.
    pub fn replace_config(&self, config: Config) -> Result<(), ServiceError> {
        let mut engine = self.engine.lock().map_err(|_| ServiceError::Poisoned)?;
        engine.set_policy(config.policy.clone());
        match self.config.write() {
            Ok(mut c) => *c = Arc::new(config),
            Err(p) => *p.into_inner() = Arc::new(config),
        }
        Ok(())
    }

    /// Resolves expiries and abandoned attempts; called every second.
    pub async fn tick(&self, now: Time) {
        if let Err(e) = self.apply_durably(|e, fx| e.tick(now, fx)).await {
            self.log.error(&format!(
                "store-error op=tick error={}",
                logline::quote(&e.to_string())
            ));
        }
    }

    /// Purges idle state and applies audit retention; called every minute.
    pub async fn housekeeping(&self, now: Time) {
        if let Err(e) = self.apply_durably(|e, fx| e.purge(now, fx)).await {
            self.log.error(&format!(
                "store-error op=purge error={}",
                logline::quote(&e.to_string())
            ));
        }
        let audit = self.config().audit.clone();
        let store = self.store.clone();
        let before = now.minus(audit.max_age);
        let trimmed =
            tokio::task::spawn_blocking(move || store.trim_audit(audit.max_events, before)).await;
        if let Ok(Err(e)) = trimmed {
            self.log.error(&format!(
                "store-error op=audit-retention error={}",
                logline::quote(&e.to_string())
            ));
        }
    }
}
