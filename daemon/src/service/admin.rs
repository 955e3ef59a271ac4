//! The operations every transport offers, each written once: the socket's
//! root-only admin requests and the D-Bus methods both come here, so they
//! audit, order and filter alike.

use super::{Health, ServiceError, Warden, PAGE};
use crate::engine::{
    parse_ip, AdminLock, Attempt, Event, EventKind, KeyId, KeyReport, KeyState, Lock, LockedBy,
    Origin, Reason, Selector, UNFAMILIAR,
};
use crate::logline::quote;
use crate::store::AuditQuery;
use crate::time::Time;
use std::time::Duration;

/// One active lock, as every transport shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockView {
    pub key: KeyId,
    pub failures: u32,
    pub since: Time,
    /// `None`: until an admin lifts it.
    pub until: Option<Time>,
    pub lockouts: u32,
    /// An admin's lock: their uid and reason. `None` for a rule's lock.
    pub admin: Option<(u32, String)>,
    /// A lock of a rule in observe mode: it refuses no one.
    pub observe: bool,
}

impl LockView {
    /// The lock in a report, if one stands.
    pub fn of_report(r: &KeyReport) -> Option<LockView> {
        Some(Self::from_lock(
            &r.key,
            r.lock.as_ref()?,
            r.failures,
            r.lockouts,
        ))
    }

    pub fn of(key: &KeyId, st: &KeyState) -> Option<LockView> {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let (failures, lockouts) = (count(st.failures.len()), count(st.lockouts().len()));
        Some(Self::from_lock(key, st.lock()?, failures, lockouts))
    }

    fn from_lock(key: &KeyId, lock: &Lock, failures: u32, lockouts: u32) -> LockView {
        LockView {
            key: key.clone(),
            failures,
            since: lock.since,
            until: lock.until,
            lockouts,
            admin: match &lock.by {
                LockedBy::Admin { uid, reason } => Some((*uid, reason.clone())),
                _ => None,
            },
            observe: false,
        }
    }
}

/// A user's standing: their active locks, newest first, and the failures
/// counted on their busiest key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserView {
    pub user: String,
    pub locks: Vec<LockView>,
    pub failures: u32,
    /// Where the user's own locks hold (see [`Scope`]).
    pub scope: Scope,
    /// Locks on an address, a range or a prefix that refused this user in
    /// the last hour and still stand.
    pub address_locks: Vec<LockView>,
}

/// Where a user's own locks refuse them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// No lock of the user's own.
    None,
    /// From everywhere (a lock on the user alone, or an admin's).
    Everywhere,
    /// Only from sources the user has never logged in from; familiar ones
    /// keep their own budgets.
    Unfamiliar,
    /// From these sources (familiar ones whose own budget ran out), and from
    /// unfamiliar ones when `unfamiliar` is set.
    Sources {
        sources: Vec<String>,
        unfamiliar: bool,
    },
}

impl Scope {
    fn of(locks: &[LockView]) -> Scope {
        if locks.is_empty() {
            return Scope::None;
        }
        let mut sources = Vec::new();
        let mut unfamiliar = false;
        for l in locks {
            match l.key.part("from") {
                None => return Scope::Everywhere,
                Some(UNFAMILIAR) => unfamiliar = true,
                Some(s) => sources.push(s.to_string()),
            }
        }
        if sources.is_empty() {
            return Scope::Unfamiliar;
        }
        sources.sort();
        sources.dedup();
        Scope::Sources {
            sources,
            unfamiliar,
        }
    }
}

/// How far back `user_status` looks for address locks that refused the user.
const REFUSALS_LOOKBACK: Duration = Duration::from_secs(3600);

/// What `Status` reports.
#[derive(Clone, Debug)]
pub struct StatusView {
    pub health: Health,
    pub uptime: Duration,
    pub store_bytes: u64,
    /// Committed events by kind since start.
    pub events: Vec<(&'static str, u64)>,
    /// Commits that failed since start.
    pub store_errors: u64,
}

/// Which events `history` returns; empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub user: Option<String>,
    pub rhost: Option<String>,
    pub service: Option<String>,
    /// Kind names (`failure`, `locked`, ...); empty for all.
    pub kinds: Vec<String>,
    pub since: Option<Time>,
    pub until: Option<Time>,
    pub limit: usize,
}

/// What an unlock did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlockView {
    /// Keys cleared, locked or not.
    pub cleared: usize,
    /// The locks among them.
    pub lifted: Vec<KeyId>,
}

impl Warden {
    /// Newest first, then by key: the lock an on-call admin looks for is
    /// usually the one that just happened. Locks of observing rules are
    /// marked, as the engine treats them.
    fn shown(&self, locks: &mut [LockView]) {
        let config = self.config();
        for l in locks.iter_mut() {
            l.observe = l.admin.is_none() && config.policy.observes(l.key.rule());
        }
        locks.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.key.cmp(&b.key)));
    }

    pub fn status(&self, now: Time) -> Result<StatusView, ServiceError> {
        Ok(StatusView {
            health: self.health()?,
            uptime: self.started().until(now),
            store_bytes: self.backend.size_bytes(),
            events: self.announce.tally().by_kind(),
            store_errors: self.announce.tally().store_errors(),
        })
    }

    /// Every active lock, newest first; expired ones that the next tick will
    /// lift are left out.
    pub async fn locks(&self, now: Time) -> Result<Vec<LockView>, ServiceError> {
        let mut locks: Vec<LockView> = self
            .all_locks()
            .await?
            .iter()
            .filter(|(_, st)| st.lock().is_some_and(|l| !l.expired(now)))
            .filter_map(|(k, st)| LockView::of(k, st))
            .collect();
        self.shown(&mut locks);
        Ok(locks)
    }

    /// One user's locks and failures, in O(keys of that user): anyone may
    /// ask about themself, so it must never scan the table.
    pub async fn user_status(&self, user: &str, now: Time) -> Result<UserView, ServiceError> {
        let user = self.config().users.fold(user);
        let keys = self.backend.user_keys(&user).await?;
        let failures = keys
            .iter()
            .map(|(_, st)| st.failures.len())
            .max()
            .unwrap_or(0);
        let mut locks: Vec<LockView> = keys
            .iter()
            .filter(|(_, st)| st.lock().is_some_and(|l| !l.expired(now)))
            .filter_map(|(k, st)| LockView::of(k, st))
            .collect();
        self.shown(&mut locks);
        let address_locks = self.address_locks_for(&user, now).await?;
        Ok(UserView {
            scope: Scope::of(&locks),
            user,
            locks,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            address_locks,
        })
    }

    /// The address, range and prefix locks behind this user's recent
    /// refusals that still stand: asked again of the backend for each place
    /// a refusal came from, so that what is shown is what holds now. Reads
    /// the user's own audit range and at most a few places.
    async fn address_locks_for(
        &self,
        user: &str,
        now: Time,
    ) -> Result<Vec<LockView>, ServiceError> {
        let refusals = self
            .backend
            .audit(AuditQuery {
                user: Some(user.to_string()),
                rhost: None,
                since: Some(now.minus(REFUSALS_LOOKBACK)),
                until: None,
                service: None,
                limit: 50,
                kinds: vec![EventKind::Refused],
            })
            .await?;
        let mut places: Vec<(String, String)> = refusals
            .into_iter()
            .filter_map(|e| Some((e.rhost?, e.service.unwrap_or_default())))
            .collect();
        places.sort();
        places.dedup();
        let mut out: Vec<LockView> = Vec::new();
        for (rhost, service) in places.into_iter().take(8) {
            let attempt = Attempt {
                service,
                user: user.to_string(),
                rhost: Some(rhost),
                tty: None,
                ruser: None,
            };
            let e = self.backend.explain(&attempt, Origin::Root, now).await?;
            let on_address =
                |r: &&KeyReport| r.key.part("user").is_none() && r.key.part("rhost").is_some();
            for r in e.keys.iter().chain(e.covering.iter()).filter(on_address) {
                if let Some(v) = LockView::of_report(r) {
                    if !out.iter().any(|o| o.key == v.key) {
                        out.push(v);
                    }
                }
            }
        }
        self.shown(&mut out);
        Ok(out)
    }

    /// The account phase: whether a lock stands against this login.
    pub async fn account(
        &self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<Option<Reason>, ServiceError> {
        self.note_groups(&attempt.user).await;
        self.backend.account(attempt, origin, now).await
    }

    /// Events from the audit log, newest first: every kind, or those named.
    pub async fn history(&self, filter: HistoryFilter) -> Result<Vec<Event>, ServiceError> {
        let kinds = filter
            .kinds
            .iter()
            .map(|k| {
                EventKind::named(k).ok_or_else(|| {
                    let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                    ServiceError::Invalid(format!(
                        "\"{k}\" is not a kind of event; use {}",
                        all.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rhost = filter
            .rhost
            .map(|r| parse_ip(&r).map_or(r, |ip| ip.to_string()));
        let query = AuditQuery {
            user: filter.user.map(|u| self.config().users.fold(&u)),
            rhost,
            since: filter.since,
            until: filter.until,
            service: filter.service,
            limit: filter.limit,
            kinds,
        };
        self.backend.audit(query).await
    }

    /// Failures from the audit log, newest first: `history` for the kinds
    /// that count.
    pub async fn failures(
        &self,
        user: Option<&str>,
        rhost: Option<String>,
        since: Option<Time>,
        limit: usize,
    ) -> Result<Vec<Event>, ServiceError> {
        self.history(HistoryFilter {
            user: user.map(str::to_string),
            rhost,
            since,
            limit,
            kinds: vec!["failure".into(), "totp".into(), "abandoned".into()],
            ..HistoryFilter::default()
        })
        .await
    }

    /// The selector for a user, spelled as keys spell it (`[users]`).
    pub fn user_selector(&self, user: &str) -> Result<Selector, ServiceError> {
        if user.is_empty() {
            return Err(ServiceError::Invalid("name a user".into()));
        }
        Ok(Selector::User(self.config().users.fold(user)))
    }

    /// The selector for an rhost an admin named: an address in any spelling,
    /// or a network written with its host bits clear (`10.1.2.3/8` would
    /// silently mean all of 10/8).
    pub fn rhost_selector(&self, value: &str) -> Result<Selector, ServiceError> {
        address_or_network(value).map(Selector::Rhost)
    }

    /// The selector for one key in its canonical spelling.
    pub fn key_selector(&self, text: &str) -> Result<Selector, ServiceError> {
        KeyId::parse(text)
            .map(Selector::Key)
            .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// Lifts the selected locks and clears their counters, a page at a time,
    /// and writes the admin's audit line.
    pub async fn unlock(
        &self,
        sel: &Selector,
        by_uid: u32,
        now: Time,
    ) -> Result<UnlockView, ServiceError> {
        let mut cleared = 0;
        let mut lifted = Vec::new();
        let mut after: Option<KeyId> = None;
        loop {
            let d = self
                .backend
                .unlock_page(sel, by_uid, after.take(), PAGE, now)
                .await?;
            self.durable(d.durable).await?;
            let page = d.value;
            cleared += page.cleared;
            lifted.extend(page.lifted);
            match page.next {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        self.log.info(&format!(
            "admin-unlock by=uid={by_uid} target={} cleared={cleared}",
            quote(&target(sel))
        ));
        Ok(UnlockView { cleared, lifted })
    }

    /// An admin's lock; returns the key locked.
    pub async fn lock(&self, req: &AdminLock, now: Time) -> Result<KeyId, ServiceError> {
        let d = self.backend.lock(req, now).await?;
        self.durable(d.durable).await?;
        Ok(d.value)
    }
}

/// What an unlock named, for the audit line.
fn target(sel: &Selector) -> String {
    match sel {
        Selector::User(u) => format!("user {u}"),
        Selector::Rhost(r) => format!("rhost {r}"),
        Selector::Key(k) => format!("key {k}"),
        Selector::All => "all".into(),
    }
}

pub fn address_or_network(value: &str) -> Result<String, ServiceError> {
    if let Some(ip) = parse_ip(value) {
        return Ok(ip.to_string());
    }
    match value.parse::<ipnet::IpNet>() {
        Ok(net) if net.trunc() == net => Ok(net.to_string()),
        Ok(net) => Err(ServiceError::Invalid(format!(
            "{value} has host bits set; the network is {}",
            net.trunc()
        ))),
        Err(_) => Err(ServiceError::Invalid(format!(
            "\"{value}\" is neither an address nor a network such as 203.0.113.0/24 or 2001:db8::/48"
        ))),
    }
}
