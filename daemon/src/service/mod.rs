//! The service: the one way the socket, D-Bus (and later the fleet) reach
//! decisions. It validates and authorizes, words what people read, writes the
//! admin's audit lines, and asks a [`Backend`] for every decision.

mod admin;
mod alarms;
mod announce;
pub mod backend;
mod error;
mod explain;
mod limits;
mod local;
mod refusal;
mod repeats;
mod totp;

pub use admin::{
    address_or_network, HistoryFilter, LockView, Scope, StatusView, UnlockView, UserView,
};
pub use alarms::Alarms;
pub use announce::Announcer;
pub use backend::Backend;
pub use error::{ServiceError, TotpError};
pub use explain::ExplainView;
pub use limits::{AlertGate, Budgets, LogLimiter, LINES_PER_WINDOW};
pub use local::{CodeOutcome, LocalBackend};
pub use refusal::{blurred, refusal_message, seconds_left};
pub use totp::{Expected, SuccessOutcome, CODE_PROMPT, NEEDS_PROMPT, NOT_ENROLLED};

use crate::config::Config;
use crate::engine::{
    Attempt, AttemptId, Engine, FailureKind, KeyId, KeyState, Origin, Pressure, Verdict,
};
use crate::log::Log;
use crate::logline;
use crate::store::{Store, StoreError, Writer};
use crate::time::Time;
use crate::totp::TotpRecord;
use std::sync::{Arc, RwLock};

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

/// What every backend stands on: the local backend over the store (for a
/// fleet, its log, audit trail, mirror and fallback), the announcer that
/// speaks for its commits, and the alarms.
pub struct Footing {
    pub local: Arc<LocalBackend>,
    pub announce: Arc<Announcer>,
    pub alarms: Arc<Alarms>,
}

impl Footing {
    pub fn start(
        config: &Config,
        engine: Engine,
        totp: Vec<(String, TotpRecord)>,
        store: Arc<dyn Store>,
        writer: Writer,
        log: &Arc<Log>,
    ) -> std::io::Result<Footing> {
        store.set_retention(&config.audit);
        let announce = Arc::new(Announcer::start(log.clone())?);
        let alarms = Arc::new(Alarms::new(log.clone()));
        let local = Arc::new(LocalBackend::new(
            engine,
            totp,
            store,
            writer,
            announce.clone(),
            alarms.clone(),
        ));
        Ok(Footing {
            local,
            announce,
            alarms,
        })
    }
}

pub struct Warden {
    backend: Arc<dyn Backend>,
    /// Log lines and bus events, after their commits.
    announce: Arc<Announcer>,
    alarms: Arc<Alarms>,
    log: Arc<Log>,
    peer_budget: Budgets,
    bus_budget: Budgets,
    config: RwLock<Arc<Config>>,
    started: Time,
    /// The tags of users' last wrong passwords; `None` when no key could be
    /// drawn (then every wrong password counts, as without the setting).
    repeats: Option<std::sync::Mutex<repeats::Repeats>>,
}

impl Warden {
    /// A service over any backend; the announcer is the one the backend
    /// reports its committed events to.
    pub fn new(
        config: Config,
        backend: Arc<dyn Backend>,
        announce: Arc<Announcer>,
        alarms: Arc<Alarms>,
        log: Arc<Log>,
        started: Time,
    ) -> Warden {
        let mut key = [0u8; warden_proto::repeat::KEY_LEN];
        let repeats = match getrandom::fill(&mut key) {
            Ok(()) => Some(std::sync::Mutex::new(repeats::Repeats::new(
                key,
                config.policy.max_tracked_keys,
            ))),
            Err(e) => {
                log.warn(&format!(
                    "same-password-off error={} reason=\"no randomness for the key; every wrong password counts\"",
                    logline::quote(&e.to_string())
                ));
                None
            }
        };
        zeroize::Zeroize::zeroize(&mut key);
        Warden {
            repeats,
            backend,
            announce,
            alarms,
            log,
            peer_budget: Budgets::new(PEER_BURST, PEER_PER_SEC),
            bus_budget: Budgets::new(BUS_BURST, BUS_PER_SEC),
            config: RwLock::new(Arc::new(config)),
            started,
        }
    }

    /// The default: the engine in memory and redb, with the state read back
    /// from the store.
    pub fn local(
        config: Config,
        engine: Engine,
        totp: Vec<(String, TotpRecord)>,
        store: Arc<dyn Store>,
        writer: Writer,
        log: Arc<Log>,
        started: Time,
    ) -> std::io::Result<Warden> {
        let f = Footing::start(&config, engine, totp, store, writer, &log)?;
        Ok(Warden::new(
            config, f.local, f.announce, f.alarms, log, started,
        ))
    }

    /// The fleet's health, on a host that shares its decisions.
    pub fn fleet(&self) -> Option<crate::fleet::FleetReport> {
        self.backend.fleet()
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
            self.alarms.say("peer-budget", now, &format!(
                "peer-over-budget uid={uid} action=\"requests refused with Busy\" budget=\"{PEER_BURST} at once, {PEER_PER_SEC}/s\""
            ));
        }
        ok
    }

    /// Whether a D-Bus caller who is not an admin may make another call now.
    pub fn caller_may_ask(&self, uid: u32, now: Time) -> bool {
        let ok = self.bus_budget.take(uid, now);
        if !ok {
            self.alarms.say("bus-budget", now, &format!(
                "bus-over-budget uid={uid} action=\"calls refused\" budget=\"{BUS_BURST} at once, {BUS_PER_SEC}/s\""
            ));
        }
        ok
    }

    /// Waits until a decision is durable.
    async fn durable(&self, rx: Option<Durable>) -> Result<(), ServiceError> {
        if let Some(rx) = rx {
            rx.await.unwrap_or(Err(StoreError::WriterGone))?;
        }
        Ok(())
    }

    pub async fn begin(
        &self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<Verdict, ServiceError> {
        self.note_groups(&attempt.user).await;
        let d = self.backend.begin(attempt, origin, now).await?;
        // A refusal stands whether or not its record is on disk yet, so it is
        // answered at once and committed right behind; the announcer logs a
        // commit that fails, so nothing need wait for it here.
        Ok(d.value)
    }

    /// The key a root peer tags wrong passwords with, while
    /// `same_password_once` is on. An unprivileged peer gets none: its word
    /// about a password proves nothing, so its failures always count.
    pub fn repeat_key(&self, origin: Origin) -> Option<warden_proto::repeat::RepeatKey> {
        let r = self.repeats_for(origin)?.lock().ok()?;
        Some(r.key())
    }

    /// The repeated-password memory, for a root peer while
    /// `same_password_once` is on (and a key could be drawn).
    fn repeats_for(&self, origin: Origin) -> Option<&std::sync::Mutex<repeats::Repeats>> {
        let on = origin == Origin::Root && self.config().same_password_once;
        self.repeats.as_ref().filter(|_| on)
    }

    /// A wrong password; `repeat` is its tag under [`repeat_key`](Self::repeat_key).
    pub async fn fail(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        repeat: Option<warden_proto::repeat::Tag>,
        now: Time,
    ) -> Result<(), ServiceError> {
        self.note_groups_once(&attempt.user).await;
        let kind = if self.is_repeat(attempt, origin, repeat, now) {
            FailureKind::Repeat
        } else {
            FailureKind::Password
        };
        let d = self.backend.fail(id, attempt, origin, kind, now).await?;
        self.durable(d.durable).await?;
        d.value.map_err(Into::into)
    }

    pub async fn succeed(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<(), ServiceError> {
        // Answered before its commit: losing a success only leaves failure
        // counters standing, which is stricter, never looser.
        self.note_groups_once(&attempt.user).await;
        let d = self.backend.succeed(id, attempt, origin, now).await?;
        d.value.map_err(Into::into)
    }

    /// Frees an attempt in which no password was given, counting nothing.
    pub async fn release(
        &self,
        id: Option<AttemptId>,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<(), ServiceError> {
        // Answered after its commit, as a failure is: rare, and its line then
        // precedes the reply like every line that ends an attempt's count.
        let d = self.backend.release(id, attempt, origin, now).await?;
        self.durable(d.durable).await?;
        d.value.map_err(Into::into)
    }

    /// Makes deferred commits durable; called on a clean stop.
    pub async fn flush(&self) -> Result<(), ServiceError> {
        self.backend.flush().await
    }

    /// Counts and the services wired by half, in constant time.
    fn health(&self) -> Result<Health, ServiceError> {
        Ok(Health {
            counts: self.backend.counts()?,
            half_wired: self.backend.half_wired()?,
        })
    }

    /// Every lock, gathered a page at a time so that logins go on between pages.
    async fn all_locks(&self) -> Result<Vec<(KeyId, KeyState)>, ServiceError> {
        let mut out = Vec::new();
        let mut after: Option<KeyId> = None;
        loop {
            let page = self.backend.locks_page(after.clone(), PAGE).await?;
            let done = page.len() < PAGE;
            after = page.last().map(|(k, _)| k.clone());
            out.extend(page);
            if done {
                return Ok(out);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Installs a new config (already validated); the backend takes its policy.
    pub fn replace_config(&self, config: Config) -> Result<(), ServiceError> {
        self.backend.set_config(&config)?;
        match self.config.write() {
            Ok(mut c) => *c = Arc::new(config),
            Err(p) => *p.into_inner() = Arc::new(config),
        }
        Ok(())
    }

    /// Observe mode turns refusals off by the admin's choice; it must never
    /// look like protection, so every start and reload says so at warning.
    pub fn warn_if_observing(&self) {
        let config = self.config();
        let p = &config.policy;
        let rules = p.observing();
        if p.observe || !rules.is_empty() {
            let scope = if p.observe { "all" } else { "rules" };
            self.log.warn(&format!(
                "observe-mode scope={scope} rules={} action=\"these rules refuse no one; the log says would-lock and would-refuse; set mode to enforce when they look right\"",
                logline::quote(&rules.join(","))
            ));
        }
    }

    /// Reads the user's groups, off the runtime, for the rules scoped to
    /// groups, and hands them to the backend; nothing when no rule is.
    /// Each preauth reads them afresh, so a change holds from the next
    /// attempt.
    pub(crate) async fn note_groups(&self, user: &str) {
        self.read_groups(user, true).await;
    }

    /// As `note_groups`, unless the backend has them already: the end of an
    /// attempt whose preauth read them needs no second lookup on the login
    /// path; one that began before a restart does.
    async fn note_groups_once(&self, user: &str) {
        self.read_groups(user, false).await;
    }

    async fn read_groups(&self, user: &str, afresh: bool) {
        if !self
            .config()
            .policy
            .rules
            .iter()
            .any(|r| r.scope.needs_groups())
            || (!afresh && self.backend.knows_groups(user))
        {
            return;
        }
        let name = user.to_string();
        let groups = tokio::task::spawn_blocking(move || crate::accounts::groups_checked(&name))
            .await
            .unwrap_or(None);
        self.backend.note_groups(user, groups);
    }

    /// Whether this wrong password repeats one of the user's last few
    /// within the rules' longest window.
    fn is_repeat(
        &self,
        attempt: &Attempt,
        origin: Origin,
        repeat: Option<warden_proto::repeat::Tag>,
        now: Time,
    ) -> bool {
        let (Some(tag), Some(repeats)) = (repeat, self.repeats_for(origin)) else {
            return false;
        };
        let window = self
            .config()
            .policy
            .rules
            .iter()
            .map(|r| r.window)
            .max()
            .unwrap_or(std::time::Duration::from_secs(900));
        // The handler has folded the name already, as the engine keys it.
        repeats
            .lock()
            .is_ok_and(|mut r| r.repeated(&attempt.user, &tag, window, now))
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
                if new.firewall != old.firewall {
                    self.log
                        .warn("config-reload [firewall] changes take effect at restart");
                }
                if new.messages.catalogs != old.messages.catalogs {
                    crate::words::bind(&new.messages.catalogs);
                }
                self.replace_config(new).map_err(|e| e.to_string())?;
                self.log.info(&format!(
                    "config-reloaded by={by} path={}",
                    logline::quote(&old.path.display().to_string())
                ));
                self.warn_if_observing();
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
        let done = match self.backend.tick(now).await {
            Ok(d) => self.durable(d.durable).await,
            Err(e) => Err(e),
        };
        if let Err(e) = done {
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
            let page = match self.backend.purge_page(after.clone(), PAGE, now).await {
                Ok(d) => self.durable(d.durable).await.map(|()| d.value),
                Err(e) => Err(e),
            };
            match page {
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
        let before = now.minus(self.config().audit.max_age);
        if let Err(e) = self.backend.trim_audit(before).await {
            self.log.error(&format!(
                "store-error op=audit-retention error={}",
                logline::quote(&e.to_string())
            ));
        }
    }
}
