//! The operations every transport offers, each written once: the socket's
//! root-only admin requests and the D-Bus methods both come here, so they
//! audit, order and filter alike.

use super::{Health, ServiceError, Warden, PAGE};
use crate::engine::{
    parse_ip, AdminLock, Attempt, Event, EventKind, KeyId, KeyState, LockedBy, Origin, Reason,
    Selector,
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
}

impl LockView {
    fn of(key: &KeyId, st: &KeyState) -> Option<LockView> {
        let lock = st.lock()?;
        Some(LockView {
            key: key.clone(),
            failures: u32::try_from(st.failures.len()).unwrap_or(u32::MAX),
            since: lock.since,
            until: lock.until,
            lockouts: u32::try_from(st.lockouts().len()).unwrap_or(u32::MAX),
            admin: match &lock.by {
                LockedBy::Admin { uid, reason } => Some((*uid, reason.clone())),
                _ => None,
            },
        })
    }
}

/// A user's standing: their active locks, newest first, and the failures
/// counted on their busiest key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserView {
    pub user: String,
    pub locks: Vec<LockView>,
    pub failures: u32,
}

/// What `Status` reports.
#[derive(Clone, Debug)]
pub struct StatusView {
    pub health: Health,
    pub uptime: Duration,
    pub store_bytes: u64,
}

/// What an unlock did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlockView {
    /// Keys cleared, locked or not.
    pub cleared: usize,
    /// The locks among them.
    pub lifted: Vec<KeyId>,
}

/// Newest first, then by key: the lock an on-call admin looks for is
/// usually the one that just happened.
fn newest_first(locks: &mut [LockView]) {
    locks.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.key.cmp(&b.key)));
}

impl Warden {
    pub fn status(&self, now: Time) -> Result<StatusView, ServiceError> {
        Ok(StatusView {
            health: self.health()?,
            uptime: self.started().until(now),
            store_bytes: self.backend.size_bytes(),
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
        newest_first(&mut locks);
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
        newest_first(&mut locks);
        Ok(UserView {
            user,
            locks,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
        })
    }

    /// The account phase: whether a lock stands against this login.
    pub async fn account(
        &self,
        attempt: &Attempt,
        origin: Origin,
        now: Time,
    ) -> Result<Option<Reason>, ServiceError> {
        self.backend.account(attempt, origin, now).await
    }

    /// Failures from the audit log, newest first.
    pub async fn failures(
        &self,
        user: Option<&str>,
        rhost: Option<String>,
        since: Option<Time>,
        limit: usize,
    ) -> Result<Vec<Event>, ServiceError> {
        let query = AuditQuery {
            user: user.map(|u| self.config().users.fold(u)),
            rhost,
            since,
            limit,
            kinds: vec![
                EventKind::Failure,
                EventKind::TotpFailure,
                EventKind::Abandoned,
            ],
        };
        self.backend.audit(query).await
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
