//! The fleet's audit trail: every host adds the attempts it saw to one
//! Redis stream (with its `host_id`), beside the stream of lock events, and
//! `history` reads both. Each host keeps its own audit in redb as well, which
//! is what `history` reads while Redis is away.

use super::backend::lock_from;
use super::wire::LockOut;
use super::{FleetBackend, FleetError};
use crate::engine::{Event, EventKind, KeyId, Lock};
use crate::store::AuditQuery;
use crate::time::Time;
use redis::streams::StreamRangeReply;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Entries of the audit stream kept (`XADD MAXLEN ~`); `[audit] max_age`
/// trims by age as well.
pub const AUDIT_STREAM_LENGTH: usize = 100_000;

/// Entries read per page, and at most read for one `history`.
const PAGE: usize = 1_000;
const MOST_SCANNED: usize = 200_000;

/// A lock event of the stream as the engine's event, with the lock it sets
/// (`None` for an unlock).
pub(super) fn lock_event(fields: &HashMap<String, String>) -> Option<(KeyId, Option<Lock>, Event)> {
    let get = |f: &str| fields.get(f).map(String::as_str);
    let k = KeyId::parse(get("key")?).ok()?;
    let num = |f: &str| get(f).and_then(|v| v.parse::<f64>().ok()).map(|v| v as i64);
    let at = Time(num("at").unwrap_or(0).max(0).unsigned_abs());
    let since = i64::try_from(at.0).unwrap_or(i64::MAX);
    match get("kind")? {
        "locked" => {
            let until = num("until").unwrap_or(-1);
            let by = get("by").unwrap_or("");
            let admin = by.starts_with("uid=");
            let l = LockOut {
                k: k.to_string(),
                since,
                until,
                len: if until < 0 { -1 } else { until - since },
                by: if admin { "admin" } else { "rule" }.into(),
                uid: by.trim_start_matches("uid=").to_string(),
                why: get("why").unwrap_or("").to_string(),
                failures: u32::try_from(num("failures").unwrap_or(0).max(0)).unwrap_or(u32::MAX),
            };
            let mut e = Event::about_key(at, EventKind::Locked, &k);
            e.service = e.service.or_else(|| get("service").map(str::to_string));
            e.user = e.user.or_else(|| get("user").map(str::to_string));
            e.rhost = e.rhost.or_else(|| get("rhost").map(str::to_string));
            e.until = Some(l.until());
            if admin {
                e.by = Some(by.to_string());
                e.reason = Some(l.why.clone());
            } else {
                e.failures = Some(l.failures);
            }
            Some((k, Some(lock_from(&l)), e))
        }
        "unlocked" => {
            let mut e = Event::about_key(at, EventKind::Unlocked, &k);
            e.by = get("by").map(str::to_string);
            Some((k, None, e))
        }
        _ => None,
    }
}

/// A stream entry's fields as text.
pub(super) fn fields_of(entry: &redis::streams::StreamId) -> HashMap<String, String> {
    entry
        .map
        .iter()
        .filter_map(|(f, v)| {
            redis::from_redis_value::<String>(v.clone())
                .ok()
                .map(|v| (f.clone(), v))
        })
        .collect()
}

impl FleetBackend {
    /// Queues an attempt's events for the fleet's audit stream. Never waits:
    /// the local audit has them durably already.
    pub(super) fn to_fleet_audit(&self, events: &[Event]) {
        for e in events {
            if !matches!(e.kind, EventKind::Locked | EventKind::Unlocked) {
                let _ = self.audit_tx.send(e.clone());
            }
        }
    }

    /// Newest first, from `until` back to `since`, one stream.
    async fn read_stream(
        &self,
        stream: &str,
        q: &AuditQuery,
        parse: impl Fn(&HashMap<String, String>) -> Option<Event>,
    ) -> Result<Vec<Event>, FleetError> {
        let mut out = Vec::new();
        // An entry's id is the time it reached Redis, a little after its
        // event: the range reaches past `until`, and `admits` is exact.
        let mut end = q
            .until
            .map_or("+".to_string(), |t| t.0.saturating_add(60_000).to_string());
        let start = q.since.map_or("-".to_string(), |t| t.0.to_string());
        let mut scanned = 0;
        loop {
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(stream).arg(&end).arg(&start).arg("COUNT").arg(PAGE);
            let page: StreamRangeReply = self.link.query(cmd).await?;
            let n = page.ids.len();
            scanned += n;
            for entry in &page.ids {
                if let Some(e) = parse(&fields_of(entry)) {
                    if q.admits(&e) {
                        out.push(e);
                    }
                }
            }
            let full = q.limit > 0 && out.len() >= q.limit;
            match page.ids.last() {
                Some(last) if n == PAGE && !full && scanned < MOST_SCANNED => {
                    end = format!("({}", last.id);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// The fleet's history: attempts from every host, and the fleet's locks
    /// and unlocks, newest first.
    pub(super) async fn fleet_audit(&self, q: &AuditQuery) -> Result<Vec<Event>, FleetError> {
        let attempts = self
            .read_stream(&self.key("audit"), q, |f| {
                serde_json::from_str(f.get("e")?).ok()
            })
            .await?;
        let locks = self
            .read_stream(&self.key("events"), q, |f| lock_event(f).map(|(_, _, e)| e))
            .await?;
        let mut all: Vec<Event> = attempts.into_iter().chain(locks).collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.time));
        if q.limit > 0 {
            all.truncate(q.limit);
        }
        Ok(all)
    }
}

/// Writes queued events to the audit stream in batches, one pipeline a
/// batch. While Redis is away they are dropped here (this host's own audit
/// keeps them); a count of the dropped is logged when it returns.
pub(super) async fn write(fleet: Arc<FleetBackend>, mut rx: mpsc::UnboundedReceiver<Event>) {
    let stream = fleet.key("audit");
    let host = fleet.host().to_string();
    let mut dropped: u64 = 0;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if !fleet.up() {
            dropped += batch.len() as u64;
            continue;
        }
        let mut pipe = redis::pipe();
        for e in &batch {
            let Ok(json) = serde_json::to_string(e) else {
                continue;
            };
            // Ids are Redis's time at the XADD: `history` reads a time
            // range by id.
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(AUDIT_STREAM_LENGTH)
                .arg("*")
                .arg("host")
                .arg(&host)
                .arg("e")
                .arg(json)
                .ignore();
        }
        match fleet.link.pipeline(pipe).await {
            Ok(()) => {
                if dropped > 0 {
                    fleet.alarms.log().warn(&format!(
                        "fleet-audit-dropped events={dropped} action=\"they are in this host's own audit (wardenctl history while Redis is away)\""
                    ));
                    dropped = 0;
                }
            }
            Err(_) => dropped += batch.len() as u64,
        }
    }
}

/// Ends audit entries older than `max_age`, by stream id (ms).
pub(super) async fn trim(
    fleet: &FleetBackend,
    max_age: std::time::Duration,
) -> Result<(), FleetError> {
    let cutoff = Time::now().minus(max_age).0;
    let mut cmd = redis::cmd("XTRIM");
    cmd.arg(fleet.key("audit"))
        .arg("MINID")
        .arg("~")
        .arg(cutoff);
    fleet.link.query::<i64>(cmd).await.map(|_| ())
}
