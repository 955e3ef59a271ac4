//! The fleet backend: decisions made atomically in Redis, shared by every
//! host, with the local engine standing in while Redis cannot be reached.
//!
//! Key derivation, the familiar split, escalation lengths and allow/deny are
//! worked out here by a planning engine (one with no state); Redis counts,
//! reserves and locks (`warden.lua`). Attempts in flight are remembered here
//! as well as leased there: a lease whose host died becomes an abandoned
//! failure at its deadline, whichever host touches the key next. Log lines,
//! the audit trail and TOTP records stay this host's own (`LocalBackend`).

mod audit;
mod backend;
mod follow;
mod journal;
mod link;
mod replicas;
mod secret;
mod totp;
mod wire;

pub use follow::{run as run_tasks, FleetReport, HostSeen};
pub use link::{Link, CREDENTIAL, LIBRARY};
pub use totp::KEY_CREDENTIAL;
pub use wire::Spec;

use crate::config::{Config, Fleet, OnUnavailable, Policy};
use crate::engine::{Attempt, AttemptId, Engine, KeyId, Origin};
use crate::service::{Alarms, LocalBackend};
use crate::time::Time;
use journal::Journal;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{0}")]
    Config(String),
    #[error("Redis is not connected")]
    Down,
    #[error("Redis did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("Redis: {0}")]
    Redis(String),
    /// An answer the library should never give: a bug, or another version's library.
    #[error("unexpected answer from Redis: {0}")]
    Reply(String),
    #[error("Redis: {0}; warden needs keys never to be evicted (maxmemory-policy noeviction)")]
    Evicting(String),
    #[error("{0}")]
    Library(String),
}

impl FleetError {
    fn from_redis(e: redis::RedisError) -> FleetError {
        FleetError::Redis(e.to_string())
    }

    /// What a failover looks like from a connection to the old primary:
    /// `READONLY`, `NOSCRIPT`, or an I/O error.
    fn after_failover(&self) -> bool {
        matches!(self, FleetError::Down)
            || self.says_any(&[
                "readonly",
                "noscript",
                "function not found",
                "broken pipe",
                "connection reset",
                "io error",
                "eof",
            ])
    }

    /// Whether the connection should be dropped and rebuilt: I/O errors, a
    /// server going away, a replica after a failover (READONLY), a server
    /// without our library.
    fn is_outage(&self) -> bool {
        matches!(self, FleetError::Down | FleetError::Timeout(_))
            || self.says_any(&[
                "broken pipe",
                "connection",
                "io error",
                "readonly",
                "noscript",
                "function not found",
                "loading",
                "eof",
                "refused",
                "reset",
                "noreplicas",
                "masterdown",
            ])
    }

    /// Whether Redis's message holds one of `words` (any case).
    fn says_any(&self, words: &[&str]) -> bool {
        match self {
            FleetError::Redis(m) => {
                let m = m.to_ascii_lowercase();
                words.iter().any(|w| m.contains(w))
            }
            _ => false,
        }
    }
}

/// Places in Redis outlive the attempt's own deadline by this much, so a
/// live host resolves its attempts itself and only a dead host's leases are
/// turned into failures by others.
pub const LEASE_GRACE_MS: u64 = 5_000;

/// Lock events whose propagation time `fleet status` summarises.
pub const LAGS_KEPT: usize = 1024;

/// An attempt begun through the fleet, waiting for its end.
struct Held {
    attempt: Attempt,
    origin: Origin,
    /// Its lease's name in Redis: `host:epoch:n`.
    member: String,
    specs: Vec<Spec>,
    allowlisted: bool,
    familiar: bool,
    deadline: Time,
    awaiting_code: bool,
}

/// Whether the fleet is answering, and since when it is not.
#[derive(Clone, Debug, Default)]
struct Health {
    degraded_since: Option<Time>,
    last_error: String,
}

pub struct FleetBackend {
    local: Arc<LocalBackend>,
    link: Arc<Link>,
    fleet: Fleet,
    planner: RwLock<Engine>,
    extend: std::sync::atomic::AtomicBool,
    held: Mutex<HashMap<AttemptId, Held>>,
    /// Services whose stacks have reported an end: only theirs count abandoned.
    ended: Mutex<HashSet<String>>,
    epoch: u32,
    local_epoch: u32,
    counter: AtomicU32,
    health: Mutex<Health>,
    journal: Journal,
    /// Locks no replica had acknowledged, kept until one has.
    unreplicated: Journal,
    alarms: Arc<Alarms>,
    /// How long the last lock event took from the stream to this host, ms.
    lag_ms: AtomicU64,
    /// How long the latest lock events took from their XADD to this host's
    /// log line and D-Bus signal, ms: the newest [`LAGS_KEPT`].
    lags: Arc<Mutex<std::collections::VecDeque<u64>>>,
    /// The hosts as last read, with Redis's time then.
    hosts: Mutex<(u64, Vec<HostSeen>)>,
    policy_hash: RwLock<String>,
    /// Events for the fleet's audit stream, and the writer's end until
    /// `run_tasks` takes it.
    audit_tx: tokio::sync::mpsc::UnboundedSender<crate::engine::Event>,
    audit_rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::engine::Event>>>,
    audit_max_age: RwLock<std::time::Duration>,
    /// The fleet's key for TOTP records; `None`: they stay on each host.
    sealer: Option<totp::Sealer>,
}

impl FleetBackend {
    pub fn new(
        config: &Config,
        fleet: Fleet,
        local: Arc<LocalBackend>,
        alarms: Arc<Alarms>,
    ) -> Result<FleetBackend, FleetError> {
        let link = Arc::new(Link::new(&fleet)?);
        let local_epoch = local
            .with_engine(Engine::epoch)
            .map_err(|e| FleetError::Config(e.to_string()))?;
        let journal = Journal::open(&config.state_dir).map_err(|e| {
            FleetError::Config(format!(
                "cannot open the fleet journal in {}: {e}",
                config.state_dir.display()
            ))
        })?;
        let unreplicated =
            Journal::open_named(&config.state_dir, journal::UNREPLICATED).map_err(|e| {
                FleetError::Config(format!(
                    "cannot open the copy of unreplicated locks in {}: {e}",
                    config.state_dir.display()
                ))
            })?;
        let sealer = totp::Sealer::load(&fleet)?;
        let (audit_tx, audit_rx) = tokio::sync::mpsc::unbounded_channel();
        Ok(FleetBackend {
            audit_tx,
            sealer,
            audit_rx: Mutex::new(Some(audit_rx)),
            audit_max_age: RwLock::new(config.audit.max_age),
            local,
            link,
            planner: RwLock::new(Engine::new(config.policy.clone(), 0)),
            extend: std::sync::atomic::AtomicBool::new(
                config.policy.extend_on_failure_while_locked,
            ),
            held: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashSet::new()),
            // Never the local engine's: an id says which engine began it.
            epoch: local_epoch.wrapping_add(0x9e37_79b9),
            local_epoch,
            counter: AtomicU32::new(0),
            health: Mutex::new(Health {
                degraded_since: Some(Time::now()),
                last_error: "not connected yet".into(),
            }),
            journal,
            unreplicated,
            alarms,
            lag_ms: AtomicU64::new(0),
            lags: Arc::new(Mutex::new(std::collections::VecDeque::new())),
            hosts: Mutex::new((0, Vec::new())),
            policy_hash: RwLock::new(policy_hash(&config.policy)),
            fleet,
        })
    }

    /// Whether TOTP records are shared (the fleet's key is configured).
    pub fn shares_totp_records(&self) -> bool {
        self.sealer.is_some()
    }

    pub fn host(&self) -> &str {
        &self.fleet.host_id
    }

    fn prefix(&self) -> &str {
        &self.fleet.prefix
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.fleet.prefix)
    }

    fn next_id(&self) -> AttemptId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        AttemptId((u64::from(self.epoch) << 32) | u64::from(n))
    }

    fn member(&self, id: AttemptId) -> String {
        format!("{}:{:x}", self.fleet.host_id, id.0)
    }

    /// A name for a failure that has no lease of its own (its attempt
    /// began before a restart): unique, so it is counted once.
    fn stray_member(&self) -> String {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        format!("{}:stray:{:x}", self.fleet.host_id, u64::from_le_bytes(b))
    }

    fn is_local_id(&self, id: Option<AttemptId>) -> bool {
        id.is_some_and(|id| (id.0 >> 32) as u32 == self.local_epoch)
    }

    /// Whether calls should go to Redis now.
    fn up(&self) -> bool {
        self.link.is_up()
            && self
                .health
                .lock()
                .map(|h| h.degraded_since.is_none())
                .unwrap_or(false)
    }

    fn mode(&self) -> OnUnavailable {
        self.fleet.on_unavailable
    }

    /// Redis failed a call: from now on decide as `on_unavailable` says,
    /// loudly, until the health task has it back.
    fn degrade(&self, e: &FleetError) {
        let now = Time::now();
        let first = match self.health.lock() {
            Ok(mut h) => {
                h.last_error = e.to_string();
                let first = h.degraded_since.is_none();
                h.degraded_since.get_or_insert(now);
                first
            }
            Err(_) => false,
        };
        if first {
            self.link.drop_connection();
        }
        self.alarms.say(
            "fleet-unavailable",
            now,
            &format!(
                "fleet-unavailable error={} on_unavailable={} action=\"{}\"",
                crate::logline::quote(&e.to_string()),
                self.mode().name(),
                match self.mode() {
                    OnUnavailable::Local => "deciding with this host's engine; check Redis, then wardenctl fleet status",
                    OnUnavailable::Deny => "refusing logins until Redis answers; check Redis",
                    OnUnavailable::Ignore => "letting logins through UNCOUNTED until Redis answers; check Redis",
                }
            ),
        );
    }

    /// Records events in this host's audit (durably, then logged and
    /// signalled) and queues them for the fleet's.
    fn record(
        &self,
        events: Vec<crate::engine::Event>,
        origin: Origin,
        durability: crate::store::Durability,
    ) -> Option<crate::service::Durable> {
        self.to_fleet_audit(&events);
        self.local.record(events, origin, durability)
    }

    fn specs(
        &self,
        keys: &[(crate::config::Rule, KeyId)],
        memory: std::time::Duration,
    ) -> Vec<Spec> {
        keys.iter().map(|(r, k)| Spec::new(r, k, memory)).collect()
    }

    /// The planning engine. It holds no state a panic could have left
    /// half-made, so a poisoned lock is read through: refusing to plan would
    /// count a failure on no key, which is failing open.
    fn plans(&self) -> std::sync::RwLockReadGuard<'_, Engine> {
        self.planner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn policy(&self) -> Policy {
        self.plans().policy().clone()
    }

    fn note_planned_groups(&self, user: &str, groups: Option<Vec<String>>) {
        if let Ok(mut p) = self.planner.write() {
            p.note_groups(user, groups);
        }
    }

    pub fn set_policy(&self, config: &Config) {
        if let Ok(mut p) = self.planner.write() {
            p.set_policy(config.policy.clone());
        }
        self.extend.store(
            config.policy.extend_on_failure_while_locked,
            Ordering::Relaxed,
        );
        if let Ok(mut h) = self.policy_hash.write() {
            *h = policy_hash(&config.policy);
        }
        if let Ok(mut a) = self.audit_max_age.write() {
            *a = config.audit.max_age;
        }
    }
}

impl FleetBackend {
    /// The first connection, at start: a Redis that may evict keys stops
    /// wardend with the reason; an unreachable one only starts it degraded.
    pub async fn first_contact(&self) -> Result<(), String> {
        match self.link.connect().await {
            Err(e @ FleetError::Evicting(_)) => Err(format!(
                "refusing the fleet's Redis at {}: {e}. Set maxmemory-policy noeviction (redis.conf or CONFIG SET), then start wardend again",
                self.fleet.url
            )),
            // The health task reconnects and logs; logins go on meanwhile.
            _ => Ok(()),
        }
    }
}

/// A short fingerprint of the rules: hosts whose fingerprints differ count
/// one key against different limits, which breaks exactness.
pub fn policy_hash(policy: &Policy) -> String {
    use sha2::{Digest, Sha256};
    let text = format!(
        "{:?}|{:?}|{:?}|{}|{}|{:?}",
        policy.rules,
        policy.code_rule,
        policy.escalation_memory,
        policy.reset_on_success,
        policy.extend_on_failure_while_locked,
        policy.attempt_timeout
    );
    let d = Sha256::digest(text.as_bytes());
    crate::hex::encode(&d[..6])
}

/// The service over the fleet: the local backend (log, audit, TOTP, the
/// mirror and the fallback) wrapped by the fleet's.
#[allow(clippy::too_many_arguments)]
pub fn warden(
    config: Config,
    fleet: Fleet,
    engine: Engine,
    totp: Vec<(String, crate::totp::TotpRecord)>,
    store: Arc<dyn crate::store::Store>,
    writer: crate::store::Writer,
    log: Arc<crate::log::Log>,
    started: Time,
) -> Result<(crate::service::Warden, Arc<FleetBackend>), String> {
    let f = crate::service::Footing::start(&config, engine, totp, store, writer, &log)
        .map_err(|e| format!("cannot start the announcer: {e}"))?;
    let backend = Arc::new(
        FleetBackend::new(&config, fleet, f.local, f.alarms.clone()).map_err(|e| e.to_string())?,
    );
    let warden =
        crate::service::Warden::new(config, backend.clone(), f.announce, f.alarms, log, started);
    Ok((warden, backend))
}
