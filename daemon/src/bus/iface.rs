//! The `org.warden.Warden1` interface. Every method checks the caller's uid
//! through the bus (GetConnectionUnixUser), whatever the policy file allowed.

use super::api::{
    AuditEntry, BusError, Explanation, LockEntry, RhostStatus, Status, TotpEnrollment, TotpStatus,
    UserStatus,
};
use super::auth::Caller;
use crate::service::{HistoryFilter, ServiceError, TotpError, Warden};
use crate::time::Time;
use crate::views;
use std::sync::Arc;
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

    /// The audit log for `ListFailures` and `ListEvents`: admins, or a user
    /// for their own events.
    async fn events(
        &self,
        hdr: &Header<'_>,
        conn: &Connection,
        method: &str,
        filter: HistoryFilter,
    ) -> Result<Vec<AuditEntry>, BusError> {
        let caller = self.caller(hdr, conn).await?;
        let user = filter.user.clone().unwrap_or_default();
        if !(caller.admin || (!user.is_empty() && caller.may_read_user(&user))) {
            return Err(self.refused(
                &caller,
                method,
                "listing the events of others needs root or the admin group",
            ));
        }
        for v in [&filter.user, &filter.rhost, &filter.service]
            .into_iter()
            .flatten()
        {
            check_value("a filter", v, MAX_VALUE)?;
        }
        views::events(&self.warden, filter).await.map_err(bus_error)
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
        ServiceError::Store(_) | ServiceError::Unavailable(_) => BusError::Unavailable(m),
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
        views::status(&self.warden, Time::now()).map_err(bus_error)
    }

    /// Every active lock.
    async fn list_locks(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<LockEntry>, BusError> {
        self.admin(&hdr, conn, "ListLocks").await?;
        views::locks(&self.warden, Time::now())
            .await
            .map_err(bus_error)
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
        let kinds = ["failure", "totp", "abandoned"].map(String::from).to_vec();
        let filter = views::history_filter(user, rhost, String::new(), kinds, since, 0, limit);
        self.events(&hdr, conn, "ListFailures", filter).await
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
        if kinds.len() > 16 {
            return Err(BusError::InvalidArgument("at most 16 kinds".into()));
        }
        let filter = views::history_filter(user, rhost, service, kinds, since, until, limit);
        self.events(&hdr, conn, "ListEvents", filter).await
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
        views::unlock(&self.warden, &what, &value, caller.uid, Time::now())
            .await
            .map_err(bus_error)
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
        views::lock(
            &self.warden,
            &what,
            &value,
            seconds,
            permanent,
            &reason,
            caller.uid,
            Time::now(),
        )
        .await
        .map_err(bus_error)
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
        views::user_status(&self.warden, &user, Time::now())
            .await
            .map_err(bus_error)
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
        views::rhost_status(&self.warden, &rhost, Time::now())
            .await
            .map_err(bus_error)
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
        views::explain(&self.warden, &user, &rhost, &service, &tty, Time::now())
            .await
            .map_err(bus_error)
    }

    /// The fleet as this host sees it, as JSON: the backend, its health,
    /// the hosts seen recently with their policy hashes and lag. Admins only.
    async fn fleet_status(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        self.admin(&hdr, conn, "FleetStatus").await?;
        let Some(report) = self.warden.fleet() else {
            return Err(BusError::NotFound(
                "this host decides alone: warden.toml has no [fleet] table".into(),
            ));
        };
        serde_json::to_string(&report).map_err(|e| BusError::Failed(e.to_string()))
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
                created: views::secs(created),
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
