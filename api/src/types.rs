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
    /// Committed events since start, by kind (`failure`, `success`, ...).
    pub events_total: Vec<(String, u64)>,
    /// Commits that failed since start (a full disk, a failing store).
    pub store_errors: u64,
    /// `""` on a host that decides alone; `healthy` or `degraded` (Redis
    /// cannot be reached: `on_unavailable` decides) in a fleet.
    pub fleet: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct LockEntry {
    pub rule: String,
    /// The canonical spelling, `user user=alice from=unfamiliar`: what
    /// `Unlock("key", ...)` and `wardenctl unlock --key` take back.
    pub key: String,
    /// The key's fields: `{"user": "alice", "from": "unfamiliar"}` (their
    /// order is the key's).
    pub fields: std::collections::BTreeMap<String, String>,
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
    /// A lock of a rule in observe mode: counted and shown, refusing no one.
    pub observe: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct AuditEntry {
    /// Unix seconds.
    pub time: i64,
    /// `failure`, `totp`, `abandoned`, `aborted`, `success`, `refused`,
    /// `locked`, `unlocked`.
    pub kind: String,
    pub service: String,
    pub user: String,
    pub rhost: String,
    pub tty: String,
    pub rule: String,
    /// The key locked, unlocked or refusing, in canonical spelling; empty
    /// for an attempt's own events.
    pub key: String,
    /// A lock's end, Unix seconds; 0 when none or permanent.
    pub until: i64,
    /// `uid=N` (an admin, or an unprivileged peer for itself), `expired`,
    /// `evicted`; empty otherwise.
    pub by: String,
    /// A refusal's reason, an admin lock's words, or a code's `wrong` or
    /// `replayed`.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct UserStatus {
    pub user: String,
    /// A lock of the user's own stands (see `scope`).
    pub locked: bool,
    pub permanent: bool,
    /// Seconds until every lock on the user has ended; 0 when not locked or permanent.
    pub seconds_left: u64,
    /// Failures counted now on the user's busiest key.
    pub failures: u32,
    pub locks: Vec<LockEntry>,
    /// Where the user's own locks refuse them: `none`, `everywhere`,
    /// `unfamiliar` (familiar sources keep their own budgets), or `sources`.
    pub scope: String,
    /// With `scope = sources`: the sources locked (and `unfamiliar` among
    /// them when unfamiliar sources are locked too).
    pub scope_sources: Vec<String>,
    /// Address, range and prefix locks that refused this user in the last
    /// hour and still stand.
    pub address_locks: Vec<LockEntry>,
}

/// One key an attempt counts against, or a lock that covers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct KeyCount {
    /// The canonical spelling.
    pub key: String,
    pub rule: String,
    pub failures: u32,
    /// Places held by attempts in flight.
    pub in_flight: u32,
    pub limit: u32,
    pub locked: bool,
    /// Unix seconds; 0 when not locked or permanent.
    pub until: i64,
    pub permanent: bool,
    /// `rule`, or `uid=N` for an admin lock; empty when not locked.
    pub by: String,
    pub reason: String,
}

/// What would happen to an attempt now, and why (`Explain`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct Explanation {
    pub user: String,
    pub service: String,
    pub rhost: String,
    pub tty: String,
    /// The source as rules key it: an address, a prefix, `local`, `local:USER`.
    pub source: String,
    /// Whether preauth would let it go ahead.
    pub allowed: bool,
    /// `clear`, `allowlisted`, `locked`, `busy`, `denied` or `unverifiable`.
    pub reason: String,
    /// The lock that refuses it, in canonical spelling; empty otherwise.
    pub refused_by: String,
    /// The lock's end, Unix seconds; 0 when none or permanent.
    pub until: i64,
    pub permanent: bool,
    /// What the user is told when refused; empty when allowed.
    pub message: String,
    pub familiar: bool,
    /// The user's familiar sources, and when each was last seen (Unix s).
    pub familiar_sources: Vec<(String, i64)>,
    pub allowlisted: bool,
    /// The keys it counts against, one per rule that applies.
    pub keys: Vec<KeyCount>,
    /// Other locks that cover it: admin, range, prefix, overflow, code.
    pub covering: Vec<KeyCount>,
    /// After a right password: `nothing`, `code`, `refused` or `grace`.
    pub code: String,
    /// The policy line behind `code`.
    pub code_why: String,
    /// In observe mode, the refusal that was waived (`locked`, `busy`,
    /// `denied`, `unverifiable`): what enforcing would answer. Empty otherwise.
    pub would: String,
    /// The observed lock behind `would`, in canonical spelling; empty otherwise.
    pub would_by: String,
}

/// What stands against an address (`GetRhostStatus`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Type)]
pub struct RhostStatus {
    pub rhost: String,
    pub source: String,
    /// Refused by `[deny]`, or by a lock that covers it.
    pub refused: bool,
    pub denied: bool,
    pub allowlisted: bool,
    /// Rules that track the address alone.
    pub keys: Vec<KeyCount>,
    /// Admin, range and prefix locks covering it.
    pub covering: Vec<KeyCount>,
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
