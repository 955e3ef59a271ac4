//! The admin operations in the API's types (`warden-api`), written once for
//! both transports that offer them: D-Bus, and the root socket's admin calls
//! that wardenctl falls back to when the bus is down. Authorization is the
//! transport's; what is done, and how it reads, is here.

use crate::config::Field;
use crate::engine::{AdminLock, Event, KeyReport, LockedBy, ReasonKind, Selector, Until};
use crate::service::{address_or_network, HistoryFilter, LockView, Scope, ServiceError, Warden};
use crate::time::Time;
use crate::totp::Need;
use std::time::Duration;
use warden_api::{AuditEntry, Explanation, KeyCount, LockEntry, RhostStatus, Status, UserStatus};

pub fn secs(t: Time) -> i64 {
    i64::try_from(t.0 / 1000).unwrap_or(i64::MAX)
}

pub fn lock_entry(l: &LockView) -> LockEntry {
    let (by, reason) = match &l.admin {
        Some((uid, reason)) => (format!("uid={uid}"), reason.clone()),
        None => ("rule".to_string(), String::new()),
    };
    LockEntry {
        rule: l.key.rule().to_string(),
        key: l.key.to_string(),
        fields: l
            .key
            .parts()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        failures: l.failures,
        since: secs(l.since),
        until: l.until.map_or(0, secs),
        permanent: l.until.is_none(),
        lockouts: l.lockouts,
        by,
        reason,
        observe: l.observe,
    }
}

pub fn audit_entry(e: Event) -> AuditEntry {
    AuditEntry {
        time: secs(e.time),
        kind: e.kind.name().into(),
        service: e.service.unwrap_or_default(),
        user: e.user.unwrap_or_default(),
        rhost: e.rhost.unwrap_or_default(),
        tty: e.tty.unwrap_or_default(),
        rule: e.rule.unwrap_or_default(),
        key: e.key.map(|k| k.to_string()).unwrap_or_default(),
        until: match e.until {
            Some(Until::At(t)) => secs(t),
            _ => 0,
        },
        by: e.by.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
    }
}

pub fn key_count(r: &KeyReport) -> KeyCount {
    let (by, reason) = match r.lock.as_ref().map(|l| &l.by) {
        Some(LockedBy::Admin { uid, reason }) => (format!("uid={uid}"), reason.clone()),
        Some(_) => ("rule".to_string(), String::new()),
        None => (String::new(), String::new()),
    };
    let until = r.lock.as_ref().and_then(|l| l.until);
    KeyCount {
        key: r.key.to_string(),
        rule: r.key.rule().to_string(),
        failures: r.failures,
        in_flight: r.in_flight,
        limit: r.limit,
        locked: r.lock.is_some(),
        until: until.map_or(0, secs),
        permanent: r.lock.is_some() && until.is_none(),
        by,
        reason,
    }
}

pub fn status(warden: &Warden, now: Time) -> Result<Status, ServiceError> {
    let st = warden.status(now)?;
    let c = st.health.counts;
    let config = warden.config();
    Ok(Status {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: st.uptime.as_secs(),
        keys: c.keys as u64,
        locks: c.locks as u64,
        attempts_in_flight: c.in_flight as u64,
        store_bytes: st.store_bytes,
        config_path: config.path.display().to_string(),
        socket_path: config.socket.display().to_string(),
        max_tracked_keys: config.policy.max_tracked_keys as u64,
        table_full: c
            .pressure
            .last_full
            .is_some_and(|t| t.until(now) < Duration::from_secs(60)),
        evicted_keys: c.pressure.evicted_keys,
        evicted_locks: c.pressure.evicted_locks,
        refused_crowded: c.pressure.crowded,
        half_wired_services: st.health.half_wired,
        events_total: st.events.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        store_errors: st.store_errors,
        fleet: match warden.fleet() {
            None => String::new(),
            Some(f) if f.healthy => "healthy".into(),
            Some(_) => "degraded".into(),
        },
    })
}

pub async fn locks(warden: &Warden, now: Time) -> Result<Vec<LockEntry>, ServiceError> {
    Ok(warden.locks(now).await?.iter().map(lock_entry).collect())
}

/// The filter arguments as D-Bus and the root socket take them: empty strings and zeros mean no filter, a
/// limit of 0 is 100, and no more than 10,000 at once.
pub fn history_filter(
    user: String,
    rhost: String,
    service: String,
    kinds: Vec<String>,
    since: i64,
    until: i64,
    limit: u32,
) -> HistoryFilter {
    let nonempty = |v: String| (!v.is_empty()).then_some(v);
    let at = |t: i64| (t > 0).then(|| Time::from_secs(t as u64));
    HistoryFilter {
        user: nonempty(user),
        rhost: nonempty(rhost),
        service: nonempty(service),
        kinds,
        since: at(since),
        until: at(until),
        limit: if limit == 0 {
            100
        } else {
            limit.min(10_000) as usize
        },
    }
}

pub async fn events(
    warden: &Warden,
    filter: HistoryFilter,
) -> Result<Vec<AuditEntry>, ServiceError> {
    Ok(warden
        .history(filter)
        .await?
        .into_iter()
        .map(audit_entry)
        .collect())
}

/// `what` is `user`, `rhost`, `key` or `all`.
pub async fn unlock(
    warden: &Warden,
    what: &str,
    value: &str,
    by_uid: u32,
    now: Time,
) -> Result<(u32, Vec<String>), ServiceError> {
    let sel = match what {
        "user" => warden.user_selector(value)?,
        "rhost" => warden.rhost_selector(value)?,
        "key" => warden.key_selector(value)?,
        "all" => Selector::All,
        _ => {
            return Err(ServiceError::Invalid(
                "unlock takes user, rhost, key or all, with a value".into(),
            ))
        }
    };
    let done = warden.unlock(&sel, by_uid, now).await?;
    Ok((
        u32::try_from(done.cleared).unwrap_or(u32::MAX),
        done.lifted.iter().map(ToString::to_string).collect(),
    ))
}

/// An admin's lock; returns the key locked.
#[allow(clippy::too_many_arguments)]
pub async fn lock(
    warden: &Warden,
    what: &str,
    value: &str,
    seconds: u64,
    permanent: bool,
    reason: &str,
    by_uid: u32,
    now: Time,
) -> Result<String, ServiceError> {
    let target = match what {
        "user" => Field::User,
        "rhost" => Field::Rhost,
        _ => return Err(ServiceError::Invalid("lock takes user or rhost".into())),
    };
    if value.is_empty() {
        return Err(ServiceError::Invalid(
            "lock needs a user or an address".into(),
        ));
    }
    let length = match (seconds, permanent) {
        (0, false) => {
            return Err(ServiceError::Invalid(
                "a lock needs a length longer than zero, or permanent".into(),
            ))
        }
        (_, true) => None,
        (s, false) => Some(Duration::from_secs(s)),
    };
    let value = match target {
        Field::User => warden.config().users.fold(value),
        _ => address_or_network(value)?,
    };
    let req = AdminLock {
        target,
        value,
        length,
        reason: reason.to_string(),
        by_uid,
    };
    Ok(warden.lock(&req, now).await?.to_string())
}

pub async fn user_status(
    warden: &Warden,
    user: &str,
    now: Time,
) -> Result<UserStatus, ServiceError> {
    let view = warden.user_status(user, now).await?;
    let locks: Vec<LockEntry> = view.locks.iter().map(lock_entry).collect();
    let permanent = locks.iter().any(|l| l.permanent);
    let last = locks.iter().map(|l| l.until).max().unwrap_or(0);
    let seconds_left = if permanent {
        0
    } else {
        u64::try_from(last - secs(now)).unwrap_or(0)
    };
    let (scope, scope_sources) = match view.scope {
        Scope::None => ("none", Vec::new()),
        Scope::Everywhere => ("everywhere", Vec::new()),
        Scope::Unfamiliar => ("unfamiliar", Vec::new()),
        Scope::Sources {
            mut sources,
            unfamiliar,
        } => {
            if unfamiliar {
                sources.push("unfamiliar".into());
            }
            ("sources", sources)
        }
    };
    Ok(UserStatus {
        user: view.user,
        locked: !locks.is_empty(),
        permanent,
        seconds_left,
        failures: view.failures,
        locks,
        scope: scope.into(),
        scope_sources,
        address_locks: view.address_locks.iter().map(lock_entry).collect(),
    })
}

pub async fn rhost_status(
    warden: &Warden,
    rhost: &str,
    now: Time,
) -> Result<RhostStatus, ServiceError> {
    let r = warden.rhost_status(rhost, now).await?;
    let refused = r.denied
        || (!r.allowlisted && r.keys.iter().any(|k| k.lock.is_some()))
        || r.covering.iter().any(|k| k.lock.is_some());
    Ok(RhostStatus {
        rhost: rhost.to_string(),
        source: r.source,
        refused,
        denied: r.denied,
        allowlisted: r.allowlisted,
        keys: r.keys.iter().map(key_count).collect(),
        covering: r.covering.iter().map(key_count).collect(),
    })
}

/// `service` empty is sshd; `rhost` and `tty` empty are none.
pub async fn explain(
    warden: &Warden,
    user: &str,
    rhost: &str,
    service: &str,
    tty: &str,
    now: Time,
) -> Result<Explanation, ServiceError> {
    let service = if service.is_empty() { "sshd" } else { service };
    let v = warden
        .explain(
            user,
            (!rhost.is_empty()).then_some(rhost),
            service,
            (!tty.is_empty()).then_some(tty),
            now,
        )
        .await?;
    let e = &v.explanation;
    let verdict = &e.verdict;
    let until = match verdict.until {
        Some(Until::At(t)) => secs(t),
        _ => 0,
    };
    Ok(Explanation {
        user: v.attempt.user.clone(),
        service: v.attempt.service.clone(),
        rhost: v.attempt.rhost.clone().unwrap_or_default(),
        tty: v.attempt.tty.clone().unwrap_or_default(),
        source: e.source.clone(),
        allowed: verdict.kind.allows(),
        reason: verdict.kind.name().into(),
        refused_by: if verdict.kind == ReasonKind::Locked {
            verdict
                .key
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        } else {
            String::new()
        },
        until,
        permanent: verdict.kind == ReasonKind::Locked
            && matches!(verdict.until, Some(Until::Permanent)),
        message: v.message.clone().unwrap_or_default(),
        familiar: e.familiar,
        familiar_sources: e
            .familiar_sources
            .iter()
            .map(|(s, t)| (s.clone(), secs(*t)))
            .collect(),
        allowlisted: e.allowlisted,
        keys: e.keys.iter().map(key_count).collect(),
        covering: e.covering.iter().map(key_count).collect(),
        code: match v.code {
            Need::Nothing => "nothing",
            Need::Code => "code",
            Need::Refuse => "refused",
            Need::Grace(_) => "grace",
        }
        .into(),
        code_why: v.code_why.into(),
        would: e
            .would
            .as_ref()
            .map(|w| w.kind.name().to_string())
            .unwrap_or_default(),
        would_by: e
            .would
            .as_ref()
            .and_then(|w| w.key.as_ref())
            .map(ToString::to_string)
            .unwrap_or_default(),
    })
}
