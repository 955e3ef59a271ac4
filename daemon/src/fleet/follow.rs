//! The fleet's background work on each host: reconnecting and replaying
//! after an outage, following the stream of lock events (which feeds this
//! host's log, D-Bus signals and mirror of fleet locks), and telling the
//! others it is alive and which rules it runs.

use super::backend::{lock_from, selector_of};
use super::journal::Entry;
use super::wire::{FailArg, LockArg, Now};
use super::{FleetBackend, FleetError};
use crate::engine::KeyId;
use crate::time::Time;
use redis::streams::{StreamReadOptions, StreamReadReply};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Another host, as it last reported itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HostSeen {
    pub host: String,
    pub policy_hash: String,
    pub version: String,
    /// Redis time of its last report, ms.
    pub seen: u64,
    /// How far behind the stream of lock events it was, ms.
    pub lag_ms: u64,
    pub degraded: bool,
    /// Propagation of its latest lock events, from the XADD to its signal, ms.
    #[serde(default)]
    pub signal_p50_ms: u64,
    #[serde(default)]
    pub signal_p99_ms: u64,
}

/// What `wardenctl fleet status` shows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FleetReport {
    pub backend: String,
    pub url: String,
    pub prefix: String,
    pub host: String,
    pub on_unavailable: String,
    pub policy_hash: String,
    pub healthy: bool,
    pub degraded_since: Option<u64>,
    pub last_error: String,
    /// Decisions made alone, waiting to be replayed.
    pub journal: usize,
    /// Redis time when the hosts were last read, ms.
    pub now: u64,
    /// This host's latest lock events: how many, and how long each took
    /// from its XADD to this host's log line and D-Bus signal, ms.
    pub signals: usize,
    pub signal_p50_ms: u64,
    pub signal_p99_ms: u64,
    pub hosts: Vec<HostSeen>,
}

const HEARTBEAT: Duration = Duration::from_secs(2);

/// The median and 99th percentile of some latencies.
fn percentiles(lags: &std::collections::VecDeque<u64>) -> (u64, u64) {
    let mut v: Vec<u64> = lags.iter().copied().collect();
    if v.is_empty() {
        return (0, 0);
    }
    v.sort_unstable();
    let at = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    (at(50), at(99))
}

impl FleetBackend {
    fn signal_lags(&self) -> (usize, u64, u64) {
        self.lags
            .lock()
            .map(|l| {
                let (p50, p99) = percentiles(&l);
                (l.len(), p50, p99)
            })
            .unwrap_or((0, 0, 0))
    }

    pub fn report(&self) -> FleetReport {
        let (signals, signal_p50_ms, signal_p99_ms) = self.signal_lags();
        let h = self.health.lock().map(|h| h.clone()).unwrap_or_default();
        let (now, hosts) = self.hosts.lock().map(|h| h.clone()).unwrap_or_default();
        FleetReport {
            backend: "redis".into(),
            url: self.fleet.url.clone(),
            prefix: self.fleet.prefix.clone(),
            host: self.fleet.host_id.clone(),
            on_unavailable: self.fleet.on_unavailable.name().into(),
            policy_hash: self
                .policy_hash
                .read()
                .map(|h| h.clone())
                .unwrap_or_default(),
            healthy: h.degraded_since.is_none() && self.link.is_up(),
            degraded_since: h.degraded_since.map(|t| t.0),
            last_error: h.last_error,
            journal: self.journal.len(),
            now,
            hosts,
            signals,
            signal_p50_ms,
            signal_p99_ms,
        }
    }

    /// Tells the fleet what this host decided alone, from entry `from` on;
    /// how many entries the journal held. Idempotent: a failure keeps its
    /// attempt's id, and Redis counts an id once.
    async fn replay(&self, from: usize) -> Result<usize, FleetError> {
        let entries = self
            .journal
            .entries()
            .map_err(|e| FleetError::Config(format!("cannot read the fleet journal: {e}")))?;
        for e in entries.iter().skip(from) {
            match e {
                Entry::Fail {
                    id,
                    at,
                    keys,
                    service,
                    user,
                    rhost,
                } => {
                    let arg = FailArg {
                        p: self.prefix(),
                        host: self.host(),
                        stream_length: self.fleet.stream_length,
                        id: id.clone(),
                        at: Some(*at),
                        extend: self.extend.load(Ordering::Relaxed),
                        keys: keys.clone(),
                        service,
                        user,
                        rhost: rhost.as_deref(),
                    };
                    self.link.call::<Now>("warden_fail", &arg).await?;
                }
                Entry::Lock { k, len, uid, why } => {
                    let key = KeyId::parse(k).ok();
                    let arg = LockArg {
                        p: self.prefix(),
                        host: self.host(),
                        stream_length: self.fleet.stream_length,
                        k: k.clone(),
                        len: *len,
                        uid: *uid,
                        why,
                        user: key
                            .as_ref()
                            .and_then(|k| k.part("user").map(str::to_string)),
                        rhost: key
                            .as_ref()
                            .and_then(|k| k.part("rhost").map(str::to_string)),
                    };
                    self.link.call::<Now>("warden_lock", &arg).await?;
                }
                // Kept apart, in the unreplicated copy: see `reassert`.
                Entry::Assert(_) => {}
                Entry::Release { id, keys } => {
                    let arg = super::wire::FinishArg {
                        p: self.prefix(),
                        id: id.clone(),
                        keys: keys.clone(),
                        reset: Vec::new(),
                        fam: None,
                    };
                    self.link.call::<Now>("warden_finish", &arg).await?;
                }
                Entry::Unlock { uid, selector } => {
                    if let Some(sel) = selector_of(selector) {
                        self.fleet_unlock(&sel, *uid).await?;
                    }
                }
            }
        }
        Ok(entries.len())
    }

    /// Reconnects, replays the journal, resyncs the mirror, then serves
    /// from the fleet again.
    async fn recover(&self) -> Result<(), FleetError> {
        self.link.connect().await?;
        let started = std::time::Instant::now();
        // What the journal held when Redis came back goes first, while new
        // logins still go to the journal: a lock or unlock made during the
        // outage lands before anything newer touches its key.
        let mut done = self.replay(0).await?;
        self.reassert().await?;
        self.resync_mirror().await?;
        // Then new logins go to the fleet, and the few entries that arrived
        // meanwhile follow them; the journal is emptied once none is left.
        let was = self
            .health
            .lock()
            .ok()
            .and_then(|mut h| h.degraded_since.take());
        loop {
            let n = self.replay(done).await?;
            match self.journal.clear(n) {
                Ok(true) => {
                    done = n;
                    break;
                }
                Ok(false) => done = n,
                Err(e) => {
                    return Err(FleetError::Config(format!(
                        "cannot clear the fleet journal: {e}"
                    )))
                }
            }
        }
        let replayed = done;
        if let Some(since) = was {
            self.log_line(&format!(
                "fleet-available host={} replayed={replayed} replay_ms={} degraded_for_ms={}",
                self.host(),
                started.elapsed().as_millis(),
                Time::now().0.saturating_sub(since.0)
            ));
        }
        Ok(())
    }

    fn log_line(&self, line: &str) {
        self.alarms.log().info(line);
    }

    /// Copies every fleet lock into the local engine, so that an outage
    /// starts from what the fleet held.
    async fn resync_mirror(&self) -> Result<(), FleetError> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.key("lockkeys")).arg(0).arg(-1);
        let keys: Vec<String> = self.link.query(cmd).await?;
        let mine: HashMap<String, ()> = self
            .local
            .with_engine(|e| {
                e.locks_page(None, usize::MAX)
                    .into_iter()
                    .map(|(k, _)| (k.to_string(), ()))
                    .collect()
            })
            .unwrap_or_default();
        for s in self.lock_states(keys).await? {
            let (Some(l), Ok(k)) = (&s.lock, KeyId::parse(&s.k)) else {
                continue;
            };
            if mine.contains_key(&s.k) {
                continue;
            }
            let _ = self.local.mirror_quietly(&k, Some(lock_from(l)));
        }
        Ok(())
    }

    async fn heartbeat(&self, lag_ms: u64) -> Result<(), FleetError> {
        let now: Vec<String> = self.link.query(redis::cmd("TIME")).await?;
        let secs: u64 = now.first().and_then(|s| s.parse().ok()).unwrap_or(0);
        let micros: u64 = now.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let now_ms = secs * 1000 + micros / 1000;
        let me = HostSeen {
            host: self.host().to_string(),
            policy_hash: self
                .policy_hash
                .read()
                .map(|h| h.clone())
                .unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").into(),
            seen: now_ms,
            lag_ms,
            degraded: !self.up(),
            signal_p50_ms: self.signal_lags().1,
            signal_p99_ms: self.signal_lags().2,
        };
        let json = serde_json::to_string(&me).map_err(|e| FleetError::Reply(e.to_string()))?;
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.key("hosts")).arg(self.host()).arg(json);
        self.link.query::<i64>(cmd).await?;
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.key("hosts"));
        let all: HashMap<String, String> = self.link.query(cmd).await?;
        let mut hosts: Vec<HostSeen> = all
            .values()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect();
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        if let Ok(mut h) = self.hosts.lock() {
            *h = (now_ms, hosts);
        }
        Ok(())
    }

    /// Applies one stream entry: the mirror, the log line, the signal. When
    /// they are out, notes how long the event took from its XADD (`sent`,
    /// Redis's ms, which on one machine is this clock).
    fn apply_event(&self, fields: &HashMap<String, String>, sent: u64) {
        let Some(done) = self.mirror_event(fields) else {
            return;
        };
        let lags = self.lags.clone();
        tokio::spawn(async move {
            // The announcer answers once the line is logged and the signal sent.
            let _ = done.await;
            let lag = Time::now().0.saturating_sub(sent);
            if let Ok(mut l) = lags.lock() {
                if l.len() >= super::LAGS_KEPT {
                    l.pop_front();
                }
                l.push_back(lag);
            }
        });
    }

    fn mirror_event(&self, fields: &HashMap<String, String>) -> Option<crate::service::Durable> {
        let (k, lock, e) = super::audit::lock_event(fields)?;
        self.local.mirror(&k, lock, e).ok().flatten()
    }
}

pub(super) fn stream_ms(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Follows the lock events on a connection of its own (a blocking read
/// would hold up every call sharing a connection). Resumes after the last
/// entry it applied, so a disconnect loses nothing the stream still holds.
async fn follow(fleet: Arc<FleetBackend>) {
    let stream = fleet.key("events");
    let mut last: Option<String> = None;
    loop {
        let mut conn = match fleet.link.dedicated().await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if last.is_none() {
            // From now: locks standing already reach the mirror by resync.
            let newest: redis::RedisResult<redis::streams::StreamRangeReply> =
                redis::cmd("XREVRANGE")
                    .arg(&stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await;
            last = Some(match newest {
                Ok(r) => r.ids.first().map_or("0-0".to_string(), |e| e.id.clone()),
                Err(_) => continue,
            });
        }
        loop {
            let from = last.clone().unwrap_or_else(|| "0-0".into());
            let opts = StreamReadOptions::default().block(1000).count(256);
            let reply: redis::RedisResult<Option<StreamReadReply>> =
                redis::AsyncCommands::xread_options(&mut conn, &[&stream], &[&from], &opts).await;
            let reply = match reply {
                Ok(r) => r,
                Err(_) => break,
            };
            let Some(reply) = reply else {
                fleet.lag_ms.store(0, Ordering::Relaxed);
                continue;
            };
            for key in reply.keys {
                for entry in key.ids {
                    fleet.apply_event(&super::audit::fields_of(&entry), stream_ms(&entry.id));
                    let lag = Time::now().0.saturating_sub(stream_ms(&entry.id));
                    fleet.lag_ms.store(lag, Ordering::Relaxed);
                    last = Some(entry.id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The fleet's tasks; they run as long as wardend does.
pub async fn run(fleet: Arc<FleetBackend>) {
    tokio::spawn(follow(fleet.clone()));
    if let Some(rx) = fleet.audit_rx.lock().ok().and_then(|mut r| r.take()) {
        tokio::spawn(super::audit::write(fleet.clone(), rx));
    }
    let mut last_trim = std::time::Instant::now();
    let mut last_beat = std::time::Instant::now() - HEARTBEAT;
    loop {
        if !fleet.up() {
            if let Err(e) = fleet.recover().await {
                fleet.degrade(&e);
            }
        }
        if fleet.up() && last_beat.elapsed() >= HEARTBEAT {
            last_beat = std::time::Instant::now();
            let lag = fleet.lag_ms.load(Ordering::Relaxed);
            if let Err(e) = fleet.heartbeat(lag).await {
                fleet.degrade(&e);
            }
            if !fleet.unreplicated.is_empty() {
                if let Err(e) = fleet.reassert().await {
                    fleet.degrade(&e);
                }
            }
            if last_trim.elapsed() >= Duration::from_secs(60) {
                last_trim = std::time::Instant::now();
                let age = fleet
                    .audit_max_age
                    .read()
                    .map(|a| *a)
                    .unwrap_or(Duration::from_secs(90 * 86_400));
                if let Err(e) = super::audit::trim(&fleet, age).await {
                    fleet.degrade(&e);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
