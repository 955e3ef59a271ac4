//! What crosses to the function library and back: one JSON argument per
//! call, one JSON answer. Keys travel in their canonical spelling
//! (`user user=alice`), which `KeyId::parse` reads back, so Redis holds the
//! same names `wardenctl` prints.

use crate::config::{Lockout, Rule};
use crate::engine::{lockout_length, KeyId, Reason, ReasonKind, Until};
use crate::time::{millis, Time};
use serde::{Deserialize, Deserializer, Serialize};

/// Lockout lengths given for the first this many lockouts in memory; later
/// ones take the last. The cap is reached long before for any `escalate`
/// that is not within a hair of 1.
pub const ESCALATION_STEPS: usize = 32;

/// One key a call counts on, with its rule's numbers; the journal keeps
/// them as they were sent.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Spec {
    pub k: String,
    pub limit: u32,
    pub window: u64,
    pub memory: u64,
    /// Length of the n-th lockout in ms, -1 permanent.
    pub lens: Vec<i64>,
    /// The rule's jitter in ms: each lock and restart gets up to this more.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jitter: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rhost: Option<String>,
}

impl Spec {
    pub fn new(rule: &Rule, k: &KeyId, memory: std::time::Duration) -> Spec {
        let lens = (1..=ESCALATION_STEPS)
            .map(|n| match rule.lockout {
                Lockout::Permanent => -1,
                Lockout::For(_) => lockout_length(rule, n)
                    .map_or(-1, |d| i64::try_from(millis(d)).unwrap_or(i64::MAX)),
            })
            .collect();
        Spec {
            k: k.to_string(),
            limit: rule.limit,
            window: millis(rule.window),
            memory: millis(memory),
            lens,
            jitter: millis(rule.jitter),
            user: k.part("user").map(str::to_string),
            rhost: k.part("rhost").map(str::to_string),
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Familiarity, decided inside `begin` against the fleet's record.
#[derive(Serialize)]
pub struct FamArg {
    pub user: String,
    pub source: String,
    pub remember: u64,
    pub keys: Vec<Spec>,
}

#[derive(Serialize)]
pub struct BeginArg<'a> {
    pub p: &'a str,
    pub host: &'a str,
    pub stream_length: u64,
    pub id: String,
    /// How long the places are held, from Redis's now.
    pub lease: u64,
    pub lease_ttl: u64,
    pub dry: bool,
    pub allow: bool,
    pub extend: bool,
    pub admin: Vec<String>,
    pub others: Vec<String>,
    pub keys: Vec<Spec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fam: Option<FamArg>,
    pub service: &'a str,
    pub user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rhost: Option<&'a str>,
}

/// A lock as the library reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LockOut {
    pub k: String,
    pub since: i64,
    pub until: i64,
    pub len: i64,
    pub by: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub why: String,
    #[serde(default)]
    pub failures: u32,
}

impl LockOut {
    pub fn until(&self) -> Until {
        if self.until < 0 {
            Until::Permanent
        } else {
            Until::At(Time(self.until.unsigned_abs()))
        }
    }

    fn ends(&self) -> u64 {
        if self.until < 0 {
            u64::MAX
        } else {
            self.until.unsigned_abs()
        }
    }

    pub fn key(&self) -> Option<KeyId> {
        KeyId::parse(&self.k).ok()
    }
}

#[derive(Deserialize, Debug)]
pub struct BeginOut {
    pub kind: String,
    #[serde(default)]
    pub i: Option<usize>,
    #[serde(default)]
    pub failures: u32,
    #[serde(default, deserialize_with = "list")]
    pub locks: Vec<LockOut>,
    #[serde(default)]
    pub familiar: bool,
}

#[derive(Serialize)]
pub struct FailArg<'a> {
    pub p: &'a str,
    pub host: &'a str,
    pub stream_length: u64,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    pub extend: bool,
    pub keys: Vec<Spec>,
    pub service: &'a str,
    pub user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rhost: Option<&'a str>,
}

#[derive(Serialize)]
pub struct FinishArg<'a> {
    pub p: &'a str,
    pub id: String,
    pub keys: Vec<String>,
    pub reset: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fam: Option<FamArg>,
}

#[derive(Serialize)]
pub struct HoldArg<'a> {
    pub p: &'a str,
    pub id: String,
    pub keys: Vec<String>,
    pub lease: u64,
    pub lease_ttl: u64,
}

#[derive(Serialize)]
pub struct LockArg<'a> {
    pub p: &'a str,
    pub host: &'a str,
    pub stream_length: u64,
    pub k: String,
    pub len: i64,
    pub uid: u32,
    pub why: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rhost: Option<String>,
}

#[derive(Serialize)]
pub struct UnlockArg<'a> {
    pub p: &'a str,
    pub host: &'a str,
    pub stream_length: u64,
    pub keys: Vec<String>,
    pub by: String,
}

#[derive(Deserialize, Debug)]
pub struct UnlockOut {
    #[serde(default, deserialize_with = "list")]
    pub lifted: Vec<String>,
    #[serde(default)]
    pub cleared: usize,
}

#[derive(Serialize)]
pub struct KeysArg<'a> {
    pub p: &'a str,
    pub host: &'a str,
    pub stream_length: u64,
    pub keys: Vec<String>,
    pub max: usize,
}

#[derive(Deserialize, Debug)]
pub struct StateOut {
    pub k: String,
    #[serde(default, deserialize_with = "list")]
    pub failures: Vec<u64>,
    #[serde(default, deserialize_with = "list")]
    pub lockouts: Vec<u64>,
    #[serde(default)]
    pub held: u32,
    #[serde(default)]
    pub lock: Option<LockOut>,
}

/// What a failure or an admin lock locked.
#[derive(Deserialize, Debug, Default)]
pub struct Locked {
    #[serde(default, deserialize_with = "list")]
    pub locked: Vec<LockOut>,
}

#[derive(Serialize)]
pub struct AssertArg<'a> {
    pub p: &'a str,
    pub host: &'a str,
    pub stream_length: u64,
    pub lock: &'a LockOut,
}

/// An answer whose content does not matter, only that it came.
#[derive(Deserialize, Debug)]
pub struct Now {}

/// Lua's cjson writes an empty table as `{}`: an empty list either way.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        List(Vec<T>),
        Empty {},
    }
    Ok(match Either::deserialize(d)? {
        Either::List(v) => v,
        Either::Empty {} => Vec::new(),
    })
}

/// The reason for a refusal by locks: the lock that lasts longest, as the
/// local engine reports it.
pub fn locked_reason(locks: &[LockOut], limit_of: impl Fn(&str) -> u32) -> Reason {
    // The first of the longest in key order, as the local engine picks.
    let mut sorted: Vec<(Option<KeyId>, &LockOut)> = locks.iter().map(|l| (l.key(), l)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut best: Option<&LockOut> = None;
    for (_, l) in sorted {
        if best.is_none_or(|b| l.ends() > b.ends()) {
            best = Some(l);
        }
    }
    let Some(l) = best else {
        return Reason::plain(ReasonKind::Locked);
    };
    let key = l.key();
    Reason {
        kind: ReasonKind::Locked,
        rule: key.as_ref().map(|k| k.rule().to_string()),
        limit: key.as_ref().map_or(0, |k| limit_of(k.rule())),
        key,
        failures: l.failures,
        until: Some(l.until()),
        admin: (l.by == "admin").then(|| l.why.clone()),
    }
}
