//! The decision seam: everything the service asks of whatever decides.
//!
//! The service validates, authorizes, words answers and logs admin actions;
//! a backend decides (begin, fail, succeed, await and check a code, expire,
//! lock, unlock, list, audit) and makes its decisions durable. The local
//! backend is today's engine and redb. A backend that decides in Redis
//! implements the same trait: the decisions, not only the state, must be
//! shared for a fleet to stay exact, and nothing above this trait changes.
//!
//! Each deciding call returns the decision at once and a receiver that says
//! when it is durable: the service answers a refusal or a success before its
//! commit, and a failure or an admin action only after it.

use super::{Counts, Durable, ServiceError};
use crate::config::Config;
use crate::engine::{
    AddressReport, AdminLock, Attempt, AttemptError, AttemptId, Event, Explanation, FailureKind,
    KeyId, KeyState, Origin, Reason, Selector, Unlocked, Verdict,
};
use crate::store::AuditQuery;
use crate::time::Time;
use crate::totp::TotpRecord;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A decision, and when it is durable (`None`: nothing to write).
pub struct Decision<T> {
    pub value: T,
    pub durable: Option<Durable>,
}

pub type Decided<'a, T> = BoxFuture<'a, Result<Decision<T>, ServiceError>>;

/// What checking a code at the prompt decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeVerdict {
    /// The login goes on; `recovery_left` when a recovery code was used.
    Accepted { recovery_left: Option<usize> },
    /// Wrong or replayed: counted as a failure.
    Wrong,
    /// A code is required and none is confirmed: refused, counted as nothing.
    NotEnrolled,
    /// No attempt waits for a code (it timed out, or wardend restarted).
    StartAgain,
}

/// What a self-service proof of a current code decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    Good,
    /// Wrong or used: counted as a wrong code at a login is.
    Wrong,
    /// The user is locked: not checked.
    Locked,
    /// No confirmed code to check against.
    NoCode,
}

/// A code typed at the prompt, with what a good one earns.
pub struct CodeEntry<'a> {
    pub id: Option<AttemptId>,
    pub attempt: &'a Attempt,
    pub origin: Origin,
    pub typed: &'a str,
    /// Remember this source until then (`[totp] remember`), on a good code.
    pub remember: Option<(String, Time)>,
    pub now: Time,
}

/// A change to one user's TOTP record, made atomically; true when it changed.
pub type TotpChange<'a> =
    Box<dyn FnOnce(&mut Option<TotpRecord>) -> Result<bool, ServiceError> + Send + 'a>;

pub trait Backend: Send + Sync {
    // ----- a login --------------------------------------------------------
    fn begin<'a>(&'a self, a: &'a Attempt, origin: Origin, now: Time) -> Decided<'a, Verdict>;
    fn fail<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        kind: FailureKind,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>>;
    /// Durable lazily: losing a success only leaves failures standing.
    fn succeed<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>>;
    fn release<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>>;
    /// Ends an attempt whose password passed but which may not go on.
    fn refuse_after_password<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        why: &'a str,
        now: Time,
    ) -> Decided<'a, Result<(), AttemptError>>;
    /// Holds the attempt for a code; false when it is no longer pending.
    fn await_code<'a>(
        &'a self,
        id: Option<AttemptId>,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> Decided<'a, bool>;
    fn check_code<'a>(&'a self, entry: CodeEntry<'a>) -> Decided<'a, CodeVerdict>;
    /// A current code for self-service (not a login), counted like one.
    fn prove_code<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        code: &'a str,
        now: Time,
    ) -> Decided<'a, Proof>;
    /// What `begin` would answer now, and why; changes nothing.
    fn explain<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> BoxFuture<'a, Result<Explanation, ServiceError>>;
    /// Locks and counts on an address; changes nothing.
    fn address(&self, ip: IpAddr, now: Time) -> BoxFuture<'_, Result<AddressReport, ServiceError>>;
    /// The account phase: a lock standing against this login.
    fn account<'a>(
        &'a self,
        a: &'a Attempt,
        origin: Origin,
        now: Time,
    ) -> BoxFuture<'a, Result<Option<Reason>, ServiceError>>;

    // ----- TOTP records ---------------------------------------------------
    fn totp_record<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<TotpRecord>, ServiceError>>;
    fn totp_change<'a>(&'a self, user: &'a str, change: TotpChange<'a>) -> Decided<'a, bool>;

    // ----- time -----------------------------------------------------------
    /// Abandoned attempts and ended locks.
    fn tick(&self, now: Time) -> Decided<'_, ()>;
    /// Idle state, a page at a time; where to go on from.
    fn purge_page(&self, after: Option<KeyId>, n: usize, now: Time) -> Decided<'_, Option<KeyId>>;
    fn trim_audit(&self, before: Time) -> BoxFuture<'_, Result<u64, ServiceError>>;

    // ----- admin ----------------------------------------------------------
    fn lock<'a>(&'a self, req: &'a AdminLock, now: Time) -> Decided<'a, KeyId>;
    fn unlock_page<'a>(
        &'a self,
        sel: &'a Selector,
        by_uid: u32,
        after: Option<KeyId>,
        n: usize,
        now: Time,
    ) -> Decided<'a, Unlocked>;
    fn locks_page(
        &self,
        after: Option<KeyId>,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<(KeyId, KeyState)>, ServiceError>>;
    /// One user's keys, in O(keys of that user).
    fn user_keys<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(KeyId, KeyState)>, ServiceError>>;
    fn audit(&self, query: AuditQuery) -> BoxFuture<'_, Result<Vec<Event>, ServiceError>>;

    // ----- health and configuration ---------------------------------------
    /// Constant time, whatever the table holds.
    fn counts(&self) -> Result<Counts, ServiceError>;
    fn half_wired(&self) -> Result<Vec<String>, ServiceError>;
    fn size_bytes(&self) -> u64;
    fn set_config(&self, config: &Config) -> Result<(), ServiceError>;
    /// A user's groups, read by the service for the rules scoped to groups,
    /// handed in before an attempt of theirs is decided.
    fn note_groups(&self, user: &str, groups: Option<Vec<String>>);
    /// Whether a user's groups were handed in (by their attempt's preauth).
    fn knows_groups(&self, user: &str) -> bool;
    /// Makes every lazily durable decision durable; for a clean stop.
    fn flush(&self) -> BoxFuture<'_, Result<(), ServiceError>>;

    /// The fleet's health, when decisions are shared by a fleet.
    fn fleet(&self) -> Option<crate::fleet::FleetReport> {
        None
    }
}
