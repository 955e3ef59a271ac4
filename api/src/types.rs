//! The D-Bus API's types. Every type is plain data that serializes both to
//! D-Bus and to wardenctl's `--json`.

use serde::{Deserialize, Serialize};
use zbus::zvariant::Type;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct Status {
    pub version: String,
    pub uptime_secs: u64,
    pub keys: u64,
    pub locks: u64,
    pub attempts_in_flight: u64,
    pub store_bytes: u64,
    pub config_path: String,
    pub socket_path: String,
    pub max_tracked_keys: u64,
    /// The key table reached `max_tracked_keys` within the last minute.
    pub table_full: bool,
    /// Unlocked keys dropped to stay within the bound, since start.
    pub evicted_keys: u64,
    /// Locks dropped because the table held nothing else, since start.
    pub evicted_locks: u64,
    /// Attempts refused because too many were in flight, since start.
    pub refused_crowded: u64,
    /// PAM services that begin attempts and never report how they end (the
    /// preauth line without authfail and authsucc).
    pub half_wired_services: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct LockEntry {
    pub rule: String,
    /// The canonical spelling, `user user=alice from=unfamiliar`: what
    /// `Unlock("key", ...)` and `wardenctl unlock --key` take back.
    pub key: String,
    /// The key's fields, in order: `[("user", "alice"), ("from", "unfamiliar")]`.
    pub fields: Vec<(String, String)>,
    pub failures: u32,
    /// Unix seconds.
    pub since: i64,
    /// Unix seconds; 0 when permanent.
    pub until: i64,
    pub permanent: bool,
    /// Lockouts of this key within the escalation memory, this one included.
    pub lockouts: u32,
    /// `rule`, or `uid=N` for an admin lock.
    pub by: String,
    /// An admin lock's reason; empty otherwise.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct AuditEntry {
    /// Unix seconds.
    pub time: i64,
    /// `failure`, `abandoned`, `success`, `refused`, `locked`, `unlocked`.
    pub kind: String,
    pub service: String,
    pub user: String,
    pub rhost: String,
    pub tty: String,
    pub rule: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct UserStatus {
    pub user: String,
    pub locked: bool,
    pub permanent: bool,
    /// Seconds until every lock on the user has ended; 0 when not locked or permanent.
    pub seconds_left: u64,
    /// Failures counted now on the user's busiest key.
    pub failures: u32,
    pub locks: Vec<LockEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct TotpStatus {
    pub user: String,
    pub enrolled: bool,
    /// Codes are asked for only once confirmed.
    pub confirmed: bool,
    pub recovery_codes_left: u32,
    /// Unix seconds; 0 when not enrolled.
    pub created: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct TotpEnrollment {
    pub user: String,
    /// The otpauth:// URI, holding the secret: shown once.
    pub uri: String,
    pub recovery_codes: Vec<String>,
}
