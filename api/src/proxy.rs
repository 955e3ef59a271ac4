//! The client side of `org.warden.Warden1`, for wardenctl and other tools.

use crate::types::{
    AuditEntry, Explanation, LockEntry, RhostStatus, Status, TotpEnrollment, TotpStatus, UserStatus,
};

#[zbus::proxy(
    interface = "org.warden.Warden1",
    default_service = "org.warden.Warden1",
    default_path = "/org/warden/Warden1"
)]
pub trait Warden1 {
    fn status(&self) -> zbus::Result<Status>;
    fn list_locks(&self) -> zbus::Result<Vec<LockEntry>>;
    fn list_failures(
        &self,
        user: &str,
        rhost: &str,
        since: i64,
        limit: u32,
    ) -> zbus::Result<Vec<AuditEntry>>;
    #[allow(clippy::too_many_arguments)]
    fn list_events(
        &self,
        user: &str,
        rhost: &str,
        service: &str,
        kinds: &[&str],
        since: i64,
        until: i64,
        limit: u32,
    ) -> zbus::Result<Vec<AuditEntry>>;
    fn unlock(&self, what: &str, value: &str) -> zbus::Result<(u32, Vec<String>)>;
    fn lock(
        &self,
        what: &str,
        value: &str,
        seconds: u64,
        permanent: bool,
        reason: &str,
    ) -> zbus::Result<String>;
    fn get_user_status(&self, user: &str) -> zbus::Result<UserStatus>;
    fn get_rhost_status(&self, rhost: &str) -> zbus::Result<RhostStatus>;
    fn explain(
        &self,
        user: &str,
        rhost: &str,
        service: &str,
        tty: &str,
    ) -> zbus::Result<Explanation>;
    fn reload_config(&self) -> zbus::Result<String>;
    /// JSON: see `FleetReport` in wardend.
    fn fleet_status(&self) -> zbus::Result<String>;
    fn totp_enroll(&self, user: &str) -> zbus::Result<TotpEnrollment>;
    fn totp_confirm(&self, user: &str, code: &str) -> zbus::Result<()>;
    fn totp_status(&self, user: &str) -> zbus::Result<TotpStatus>;
    fn totp_remove(&self, user: &str) -> zbus::Result<bool>;
    fn totp_recovery_codes(&self, user: &str, code: &str) -> zbus::Result<Vec<String>>;
    /// A key was locked; `key` is its canonical spelling, `until` Unix
    /// seconds or 0 when permanent.
    #[zbus(signal)]
    fn locked(&self, key: &str, rule: &str, until: i64) -> zbus::Result<()>;
    /// A key was unlocked; `by` is `uid=N` or `expired`.
    #[zbus(signal)]
    fn unlocked(&self, key: &str, rule: &str, by: &str) -> zbus::Result<()>;
}
