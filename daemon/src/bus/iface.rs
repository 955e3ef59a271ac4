//! The `org.warden.Warden1` interface. Every method checks the caller's uid
//! through the bus (GetConnectionUnixUser), whatever the policy file allowed.

use super::api::{
    AuditEntry, BusError, Explanation, KeyCount, LockEntry, RhostStatus, Status, TotpEnrollment,
    TotpStatus, UserStatus,
};
use super::auth::Caller;
use crate::config::Field;
use crate::engine::{AdminLock, Event, KeyReport, LockedBy, ReasonKind, Selector, Until};
use crate::service::{
    address_or_network, HistoryFilter, LockView, Scope, ServiceError, TotpError, Warden,
};
use crate::time::Time;
use crate::totp::Need;
use std::sync::Arc;
use std::time::Duration;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection};

pub struct Control {
    pub warden: Arc<Warden>,
}

const MAX_VALUE: usize = 256;
const MAX_REASON: usize = 512;

impl Control {
    async fn caller(&self, hdr: &Header<'_>, conn: &Connection) -> Result<Caller, BusError> {
        let sender = hdr
            .sender()
            .ok_or_else(|| BusError::Failed("the call has no sender".into()))?;
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        let uid = dbus
            .get_connection_unix_user(sender.clone().into())
            .await
            .map_err(|e| BusError::Failed(format!("cannot learn the caller's uid: {e}")))?;
        // Before anything that costs: a caller flooding the bus gets refused,
        // not served slowly at everyone else's expense.
        if uid != 0 && !self.warden.caller_may_ask(uid, Time::now()) {
            return Err(BusError::Busy(
                "too many calls from your uid; wait a moment and try again".into(),
            ));
        }
        let group = self.warden.config().admin_group.clone();
        tokio::task::spawn_blocking(move || Caller::lookup(uid, &group))
            .await
            .map_err(|e| BusError::Failed(e.to_string()))
    }

    async fn admin(
        &self,
        hdr: &Header<'_>,
        conn: &Connection,
        method: &str,
    ) -> Result<Caller, BusError> {
        let caller = self.caller(hdr, conn).await?;
        if !caller.admin {
            let why = format!(
                "{method} needs root or membership of the group {}",
                self.warden.config().admin_group
            );
            return Err(self.refused(&caller, method, &why));
        }
        Ok(caller)
    }

    /// For TOTP self-service: an empty user means the caller; others need an
    /// admin, and so does acting on oneself unless `self_enroll` is on.
    async fn totp_target(
        &self,
        hdr: &Header<'_>,
        conn: &Connection,
        user: String,
        method: &str,
        self_service: bool,
    ) -> Result<(Caller, String), BusError> {
        let caller = self.caller(hdr, conn).await?;
        let user = if user.is_empty() {
            caller.name.clone().ok_or_else(|| {
                BusError::InvalidArgument("your uid has no user name; name the user".into())
            })?
        } else {
            user
        };
        check_value("user", &user, MAX_VALUE)?;
        let user = self.fold(&user);
        let own = caller.name.as_deref().map(|n| self.fold(n)).as_deref() == Some(user.as_str());
        let allowed =
            caller.admin || (own && self_service && self.warden.config().totp.self_enroll);
        if !allowed {
            let why = if own {
                format!("{method} for yourself needs self_enroll = true in [totp], or an admin")
            } else {
                format!("{method} for another user needs root or the admin group")
            };
            return Err(self.refused(&caller, method, &why));
        }
        Ok((caller, user))
    }

    /// A user name as keys spell it (`[users] fold_case`, `strip_realms`).
    fn fold(&self, user: &str) -> String {
        self.warden.config().users.fold(user)
    }

    fn refused(&self, caller: &Caller, method: &str, why: &str) -> BusError {
        self.warden
            .log()
            .warn(&format!("bus-refused method={method} uid={}", caller.uid));
        BusError::NotAuthorized(why.to_string())
    }
}

/// Each kind of service error as the D-Bus error name that says what it is.
fn bus_error(e: ServiceError) -> BusError {
    let m = e.to_string();
    match e {
        ServiceError::NotAuthorized(_) => BusError::NotAuthorized(m),
        ServiceError::Invalid(_) => BusError::InvalidArgument(m),
        ServiceError::Totp(t) => match t {
            TotpError::NotEnrolled(_) => BusError::NotFound(m),
            TotpError::NoRandomness(_) => BusError::Unavailable(m),
            TotpError::AlreadyConfirmed(_) | TotpError::AlreadyActive(_) | TotpError::WrongCode => {
                BusError::InvalidArgument(m)
            }
            TotpError::Record(_) => BusError::Failed(m),
        },
        ServiceError::Store(_) => BusError::Unavailable(m),
        ServiceError::Attempt(_) => BusError::InvalidArgument(m),
        ServiceError::Poisoned | ServiceError::Task(_) => BusError::Failed(m),
    }
}

fn check_value(what: &str, value: &str, max: usize) -> Result<(), BusError> {
    if value.len() > max || value.contains('\0') {
        return Err(BusError::InvalidArgument(format!(
            "{what} is longer than {max} bytes or has a NUL"
        )));
    }
    Ok(())
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
    }
}

fn audit_entry(e: Event) -> AuditEntry {
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

fn key_count(r: &KeyReport) -> KeyCount {
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

fn secs(t: Time) -> i64 {
    i64::try_from(t.0 / 1000).unwrap_or(i64::MAX)
}

#[interface(name = "org.warden.Warden1")]
impl Control {
    /// Version, uptime, counts, store size and paths. Anyone may read it: it
    /// holds no one's data.
    async fn status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Status, BusError> {
        self.caller(&hdr, conn).await?;
        let now = Time::now();
        let st = self.warden.status(now).map_err(bus_error)?;
        let c = st.health.counts;
        let config = self.warden.config();
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
        })
    }

    /// Every active lock.
    async fn list_locks(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<LockEntry>, BusError> {
        self.admin(&hdr, conn, "ListLocks").await?;
        let locks = self.warden.locks(Time::now()).await.map_err(bus_error)?;
        Ok(locks.iter().map(lock_entry).collect())
    }

    /// Failures from the audit log, newest first. Empty strings and zeros mean
    /// no filter. A user may list their own.
    async fn list_failures(
        &self,
        user: String,
        rhost: String,
        since: i64,
        limit: u32,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<AuditEntry>, BusError> {
        let caller = self.caller(&hdr, conn).await?;
        if !(caller.admin || (!user.is_empty() && caller.may_read_user(&user))) {
            return Err(self.refused(
                &caller,
                "ListFailures",
                "listing failures of others needs root or the admin group",
            ));
        }
        check_value("user", &user, MAX_VALUE)?;
        check_value("rhost", &rhost, MAX_VALUE)?;
        let limit = if limit == 0 {
            100
        } else {
            limit.min(10_000) as usize
        };
        let events = self
            .warden
            .failures(
                (!user.is_empty()).then_some(user.as_str()),
                (!rhost.is_empty()).then_some(rhost),
                (since > 0).then(|| Time::from_secs(since as u64)),
                limit,
            )
            .await
            .map_err(bus_error)?;
        Ok(events.into_iter().map(audit_entry).collect())
    }

    /// Events of every kind from the audit log, newest first: successes,
    /// failures, codes, refusals, locks and unlocks (with the admin who
    /// acted). Empty strings, an empty list and zeros mean no filter; `since`
    /// and `until` are Unix seconds. A user may list their own.
    #[allow(clippy::too_many_arguments)]
    async fn list_events(
        &self,
        user: String,
        rhost: String,
        service: String,
        kinds: Vec<String>,
        since: i64,
        until: i64,
        limit: u32,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<AuditEntry>, BusError> {
        let caller = self.caller(&hdr, conn).await?;
        if !(caller.admin || (!user.is_empty() && caller.may_read_user(&user))) {
            return Err(self.refused(
                &caller,
                "ListEvents",
                "listing the events of others needs root or the admin group",
            ));
        }
        for (what, v) in [("user", &user), ("rhost", &rhost), ("service", &service)] {
            check_value(what, v, MAX_VALUE)?;
        }
        if kinds.len() > 16 {
            return Err(BusError::InvalidArgument("at most 16 kinds".into()));
        }
        let nonempty = |v: String| (!v.is_empty()).then_some(v);
        let at = |t: i64| (t > 0).then(|| Time::from_secs(t as u64));
        let events = self
            .warden
            .history(HistoryFilter {
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
            })
            .await
            .map_err(bus_error)?;
        Ok(events.into_iter().map(audit_entry).collect())
    }

    /// Lifts locks and clears counters: `what` is `user`, `rhost`, `key` (as
    /// `RULE field=value ...`) or `all`. An rhost is an address, which lifts
    /// every lock covering it (its own, an admin's range, a prefix lock), or
    /// a network, which lifts those and every lock inside it. Returns how many
    /// keys were cleared and the locks among them, as `locks` prints keys.
    async fn unlock(
        &self,
        what: String,
        value: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(u32, Vec<String>), BusError> {
        let caller = self.admin(&hdr, conn, "Unlock").await?;
        check_value("value", &value, MAX_VALUE * 2)?;
        let sel = match what.as_str() {
            "user" => self.warden.user_selector(&value),
            "rhost" => self.warden.rhost_selector(&value),
            "key" => self.warden.key_selector(&value),
            "all" => Ok(Selector::All),
            _ => Err(ServiceError::Invalid(
                "unlock takes user, rhost, key or all, with a value".into(),
            )),
        }
        .map_err(bus_error)?;
        let done = self
            .warden
            .unlock(&sel, caller.uid, Time::now())
            .await
            .map_err(bus_error)?;
        Ok((
            u32::try_from(done.cleared).unwrap_or(u32::MAX),
            done.lifted.iter().map(ToString::to_string).collect(),
        ))
    }

    /// An admin lock on a `user` or an `rhost` (an address, or a network that
    /// then covers every address in it), for `seconds` (more than 0), or for
    /// good with `permanent`. Returns the key locked.
    // Five of these are the D-Bus arguments; zbus adds the header and connection.
    #[allow(clippy::too_many_arguments)]
    async fn lock(
        &self,
        what: String,
        value: String,
        seconds: u64,
        permanent: bool,
        reason: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let caller = self.admin(&hdr, conn, "Lock").await?;
        check_value("value", &value, MAX_VALUE)?;
        check_value("reason", &reason, MAX_REASON)?;
        let target = match what.as_str() {
            "user" => Field::User,
            "rhost" => Field::Rhost,
            _ => return Err(BusError::InvalidArgument("lock takes user or rhost".into())),
        };
        if value.is_empty() {
            return Err(BusError::InvalidArgument(
                "lock needs a user or an address".into(),
            ));
        }
        let length = match (seconds, permanent) {
            (0, false) => {
                return Err(BusError::InvalidArgument(
                    "a lock needs a length longer than zero, or permanent".into(),
                ))
            }
            (_, true) => None,
            (s, false) => Some(Duration::from_secs(s)),
        };
        let value = match target {
            Field::User => self.fold(&value),
            _ => address_or_network(&value).map_err(bus_error)?,
        };
        let req = AdminLock {
            target,
            value,
            length,
            reason,
            by_uid: caller.uid,
        };
        let now = Time::now();
        let key = self.warden.lock(&req, now).await.map_err(bus_error)?;
        Ok(key.to_string())
    }

    /// Whether a user is locked, for how long, and their failures. Open to
    /// admins and to the user themself (a screen locker can say how long to wait).
    async fn get_user_status(
        &self,
        user: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<UserStatus, BusError> {
        let caller = self.caller(&hdr, conn).await?;
        if !caller.may_read_user(&user) {
            return Err(self.refused(
                &caller,
                "GetUserStatus",
                "reading another user's status needs root or the admin group",
            ));
        }
        check_value("user", &user, MAX_VALUE)?;
        let now = Time::now();
        let view = self
            .warden
            .user_status(&user, now)
            .await
            .map_err(bus_error)?;
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

    /// What stands against an address: its rule keys, and admin, range and
    /// prefix locks covering it. Admins only.
    async fn get_rhost_status(
        &self,
        rhost: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<RhostStatus, BusError> {
        self.admin(&hdr, conn, "GetRhostStatus").await?;
        check_value("rhost", &rhost, MAX_VALUE)?;
        let r = self
            .warden
            .rhost_status(&rhost, Time::now())
            .await
            .map_err(bus_error)?;
        let refused = r.denied
            || (!r.allowlisted && r.keys.iter().any(|k| k.lock.is_some()))
            || r.covering.iter().any(|k| k.lock.is_some());
        Ok(RhostStatus {
            rhost,
            source: r.source,
            refused,
            denied: r.denied,
            allowlisted: r.allowlisted,
            keys: r.keys.iter().map(key_count).collect(),
            covering: r.covering.iter().map(key_count).collect(),
        })
    }

    /// What would happen to an attempt by `user` from `rhost` (empty: local)
    /// on `service` (empty: sshd) and `tty` now, and why. Changes nothing.
    /// Admins only.
    async fn explain(
        &self,
        user: String,
        rhost: String,
        service: String,
        tty: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Explanation, BusError> {
        self.admin(&hdr, conn, "Explain").await?;
        for (what, v) in [
            ("user", &user),
            ("rhost", &rhost),
            ("service", &service),
            ("tty", &tty),
        ] {
            check_value(what, v, MAX_VALUE)?;
        }
        let service = if service.is_empty() {
            "sshd".to_string()
        } else {
            service
        };
        let now = Time::now();
        let v = self
            .warden
            .explain(
                &user,
                (!rhost.is_empty()).then_some(rhost.as_str()),
                &service,
                (!tty.is_empty()).then_some(tty.as_str()),
                now,
            )
            .await
            .map_err(bus_error)?;
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
        })
    }

    /// Re-reads the config file. A bad file is refused with its error and the
    /// running config stays in force. Returns the path read.
    async fn reload_config(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let caller = self.admin(&hdr, conn, "ReloadConfig").await?;
        self.warden
            .reload(&format!("uid={}", caller.uid))
            .await
            .map(|p| p.display().to_string())
            .map_err(|e| {
                BusError::InvalidArgument(format!("{e}; the running configuration is unchanged"))
            })
    }

    /// Starts a TOTP enrollment (unconfirmed until `TotpConfirm`). Returns the
    /// otpauth URI and the recovery codes, once. An empty user is the caller.
    async fn totp_enroll(
        &self,
        user: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<TotpEnrollment, BusError> {
        let (caller, user) = self
            .totp_target(&hdr, conn, user, "TotpEnroll", true)
            .await?;
        let (uri, codes) = self
            .warden
            .totp_enroll(&user, caller.uid, Time::now())
            .await
            .map_err(bus_error)?;
        Ok(TotpEnrollment {
            user,
            uri: uri.to_string(),
            recovery_codes: codes.iter().map(|c| c.to_string()).collect(),
        })
    }

    /// Activates an enrollment with a first code from the authenticator.
    async fn totp_confirm(
        &self,
        user: String,
        code: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BusError> {
        let (caller, user) = self
            .totp_target(&hdr, conn, user, "TotpConfirm", true)
            .await?;
        check_value("code", &code, 64)?;
        self.warden
            .totp_confirm(&user, &code, caller.uid, Time::now())
            .await
            .map_err(bus_error)
    }

    /// Whether a user is enrolled and confirmed, and how many recovery codes are left.
    async fn totp_status(
        &self,
        user: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<TotpStatus, BusError> {
        let caller = self.caller(&hdr, conn).await?;
        let user = if user.is_empty() {
            caller.name.clone().unwrap_or_default()
        } else {
            user
        };
        if !caller.may_read_user(&user) {
            return Err(self.refused(
                &caller,
                "TotpStatus",
                "reading another user's TOTP status needs root or the admin group",
            ));
        }
        let status = self.warden.totp_status(&user).await.map_err(bus_error)?;
        Ok(match status {
            Some((confirmed, left, created)) => TotpStatus {
                user,
                enrolled: true,
                confirmed,
                recovery_codes_left: left,
                created: secs(created),
            },
            None => TotpStatus {
                user,
                enrolled: false,
                confirmed: false,
                recovery_codes_left: 0,
                created: 0,
            },
        })
    }

    /// Removes a user's TOTP enrollment. Admins only.
    async fn totp_remove(
        &self,
        user: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<bool, BusError> {
        let (caller, user) = self
            .totp_target(&hdr, conn, user, "TotpRemove", false)
            .await?;
        self.warden
            .totp_remove(&user, caller.uid)
            .await
            .map_err(bus_error)
    }

    /// Replaces a user's recovery codes and returns the new ones, once. A
    /// user replacing their own must give a current code from their
    /// authenticator (`code`); an admin may leave it empty.
    async fn totp_recovery_codes(
        &self,
        user: String,
        code: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<String>, BusError> {
        let (caller, user) = self
            .totp_target(&hdr, conn, user, "TotpRecoveryCodes", true)
            .await?;
        check_value("code", &code, 64)?;
        let codes = self
            .warden
            .totp_new_recovery(&user, caller.uid, caller.admin, &code, Time::now())
            .await
            .map_err(bus_error)?;
        Ok(codes.iter().map(|c| c.to_string()).collect())
    }

    /// A key was locked; `until` is Unix seconds, 0 when permanent.
    #[zbus(signal)]
    pub async fn locked(
        emitter: &SignalEmitter<'_>,
        key: &str,
        rule: &str,
        until: i64,
    ) -> zbus::Result<()>;

    /// A key was unlocked; `by` is `uid=N` or `expired`.
    #[zbus(signal)]
    pub async fn unlocked(
        emitter: &SignalEmitter<'_>,
        key: &str,
        rule: &str,
        by: &str,
    ) -> zbus::Result<()>;
}
