//! Config values that check themselves while they deserialize, so that a bad value
//! is reported with its own span (and so its line and key).

use super::Rule;
use crate::time::parse_duration;
use ipnet::IpNet;
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;
use toml::Spanned;

/// An attempt field a rule can track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    User,
    Rhost,
    Tty,
    Service,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::User => "user",
            Field::Rhost => "rhost",
            Field::Tty => "tty",
            Field::Service => "service",
        }
    }
}

/// Whether a rule refuses, or only says what it would have refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    /// Counts, locks and logs as `enforce` does, but lets every attempt go
    /// ahead: for rolling warden out without locking anyone out.
    Observe,
}

/// How long a rule's lock lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lockout {
    For(Duration),
    /// Until an admin unlocks.
    Permanent,
}

/// A duration written as `"30s"`, `"15m"`, `"1h"` or `"7d"`, never zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dur(pub Duration);

/// Where a check of a table failed: the span of the value, and why.
pub(super) type Problem = (std::ops::Range<usize>, String);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let dur = parse_duration(&text).map_err(D::Error::custom)?;
        if dur.is_zero() {
            return Err(D::Error::custom(
                "must be longer than zero; remove the key to get its default",
            ));
        }
        Ok(Dur(dur))
    }
}

pub fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Dur::deserialize(d).map(|d| d.0)
}

pub struct LockoutValue(pub Lockout);

impl<'de> Deserialize<'de> for LockoutValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "permanent" {
            return Ok(LockoutValue(Lockout::Permanent));
        }
        match parse_duration(&text) {
            Ok(dur) if !dur.is_zero() => Ok(LockoutValue(Lockout::For(dur))),
            Ok(_) => Err(D::Error::custom(
                "must be longer than zero, or \"permanent\"",
            )),
            Err(e) => Err(D::Error::custom(format!("{e}, or \"permanent\""))),
        }
    }
}

/// An address or a CIDR block; a bare address is its own /32 or /128.
pub struct Cidr(pub IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if let Ok(net) = text.parse::<IpNet>() {
            // 10.1.2.3/8 would silently mean all of 10.0.0.0/8.
            if net.trunc() != net {
                return Err(D::Error::custom(format!(
                    "\"{text}\" has host bits set: the network is \"{}\"; write that, or the address alone",
                    net.trunc()
                )));
            }
            return Ok(Cidr(net));
        }
        if let Ok(addr) = text.parse::<IpAddr>() {
            return Ok(Cidr(IpNet::from(addr)));
        }
        Err(D::Error::custom(format!(
            "invalid CIDR \"{text}\": write an address or a block such as \"192.0.2.0/24\" or \"2001:db8::/48\""
        )))
    }
}

fn prefix<'de, D: Deserializer<'de>>(d: D, max: u8) -> Result<u8, D::Error> {
    let n = i64::deserialize(d)?;
    u8::try_from(n)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| D::Error::custom(format!("must be a prefix length from 1 to {max}")))
}

pub fn prefix_v4<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    prefix(d, 32)
}

pub fn prefix_v6<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    prefix(d, 128)
}

fn limit<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = i64::deserialize(d)?;
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| D::Error::custom("must be a whole number of failures from 1 to 10000"))
}

/// A whole number from 1 up, for the bounds on attempts, keys and events.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = i64::deserialize(d)?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| D::Error::custom("must be a whole number from 1 up"))
}

pub fn escalate<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let x = f64::deserialize(d)?;
    if x.is_finite() && (1.0..=100.0).contains(&x) {
        Ok(x)
    } else {
        Err(D::Error::custom(
            "must be a factor from 1.0 (no escalation) to 100.0",
        ))
    }
}

fn track<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Field>, D::Error> {
    let mut fields = Vec::<Field>::deserialize(d)?;
    if fields.is_empty() {
        return Err(D::Error::custom(
            "must name at least one of \"user\", \"rhost\", \"tty\", \"service\"",
        ));
    }
    let before = fields.len();
    fields.sort();
    fields.dedup();
    if fields.len() != before {
        return Err(D::Error::custom("names a field twice"));
    }
    Ok(fields)
}

fn rule_name<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<String>, D::Error> {
    let name = Spanned::<String>::deserialize(d)?;
    let ok = !name.get_ref().is_empty()
        && name.get_ref().len() <= 64
        && name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(D::Error::custom(
            "must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    if super::RESERVED_RULES.contains(&name.get_ref().as_str()) {
        return Err(D::Error::custom(format!(
            "\"{}\" is reserved (admin: locks set with wardenctl; prefix: locks on a whole \
             address prefix; code: wrong codes on every service); choose another name",
            name.get_ref()
        )));
    }
    Ok(name)
}

fn default_escalate() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(deserialize_with = "rule_name")]
    pub name: Spanned<String>,
    #[serde(deserialize_with = "track")]
    pub track: Vec<Field>,
    #[serde(deserialize_with = "limit")]
    pub limit: u32,
    #[serde(deserialize_with = "positive_duration")]
    pub window: Duration,
    pub lockout: LockoutValue,
    #[serde(default = "default_escalate", deserialize_with = "escalate")]
    pub escalate: f64,
    #[serde(default)]
    pub max_lockout: Option<Spanned<Dur>>,
    #[serde(default, deserialize_with = "services")]
    pub services: Option<Vec<String>>,
    #[serde(default)]
    pub jitter: Option<Spanned<Dur>>,
    #[serde(default)]
    pub mode: Option<Spanned<Mode>>,
    #[serde(default, deserialize_with = "names")]
    pub users: Option<Vec<String>>,
    #[serde(default, deserialize_with = "names")]
    pub groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "names")]
    pub exclude_users: Option<Vec<String>>,
    #[serde(default, deserialize_with = "names")]
    pub exclude_groups: Option<Vec<String>>,
}

impl RawRule {
    /// `global`: the file's top-level `mode`, which a rule's own overrides.
    pub fn into_rule(self, global: Mode) -> Rule {
        let lockout = self.lockout.0;
        let max_lockout = match (self.max_lockout, lockout) {
            (Some(max), _) => max.into_inner().0,
            // Without a cap, an escalating rule stops at a day: long enough to stop
            // a guesser, short enough that a forgotten lock heals itself.
            (None, Lockout::For(d)) if self.escalate > 1.0 => d.max(Duration::from_secs(86_400)),
            (None, Lockout::For(d)) => d,
            (None, Lockout::Permanent) => Duration::ZERO,
        };
        Rule {
            name: self.name.into_inner(),
            track: self.track,
            limit: self.limit,
            window: self.window,
            lockout,
            escalate: self.escalate,
            max_lockout,
            services: self.services,
            jitter: self.jitter.map_or(Duration::ZERO, |j| j.into_inner().0),
            observe: self.mode.map_or(global, Spanned::into_inner) == Mode::Observe,
            scope: super::UserScope {
                users: self.users,
                groups: self.groups,
                exclude_users: self.exclude_users.unwrap_or_default(),
                exclude_groups: self.exclude_groups.unwrap_or_default(),
            },
        }
    }
}

/// The shipped rules, used when the file has no `[[rule]]` at all.
pub fn default_rules() -> Vec<RawRule> {
    let m = |n: u64| Duration::from_secs(60 * n);
    // Each doubles per lockout up to its cap, for every service and user.
    let shipped =
        |name: &str, field: Field, limit: u32, lockout: Duration, max: Duration| RawRule {
            name: Spanned::new(0..0, name.into()),
            track: vec![field],
            limit,
            window: m(15),
            lockout: LockoutValue(Lockout::For(lockout)),
            escalate: 2.0,
            max_lockout: Some(Spanned::new(0..0, Dur(max))),
            services: None,
            jitter: None,
            mode: None,
            users: None,
            groups: None,
            exclude_users: None,
            exclude_groups: None,
        };
    vec![
        shipped("user", Field::User, 5, m(15), m(24 * 60)),
        shipped("rhost", Field::Rhost, 20, m(60), m(7 * 24 * 60)),
    ]
}

/// A list of user or group names for a rule's scope: never empty (a rule
/// for no one guards nothing; remove the key instead), no empty name.
pub fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    if list.is_empty() {
        return Err(D::Error::custom(
            "an empty list names no one; remove the key to mean everyone (users, groups) or no one (exclude_*)",
        ));
    }
    if list
        .iter()
        .any(|n| n.is_empty() || n.contains(char::is_whitespace))
    {
        return Err(D::Error::custom("names may not be empty or hold spaces"));
    }
    Ok(Some(list))
}

/// A list of PAM service names, which may not be empty: `services = []`
/// would match no service and so guard nothing.
pub fn services<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    if list.is_empty() {
        return Err(D::Error::custom(
            "an empty list matches no PAM service, so nothing would be guarded; remove the key to cover every service",
        ));
    }
    Ok(Some(list))
}

/// A calendar date, `"2026-12-31"`, meaning through the end of that day (UTC).
pub struct Date(pub crate::time::Time);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || {
            D::Error::custom(format!(
                "invalid date \"{text}\": write it as \"YYYY-MM-DD\""
            ))
        };
        let mut parts = text.split('-');
        let (Some(y), Some(m), Some(day), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (Ok(y), Ok(m), Ok(day)) = (y.parse::<i64>(), m.parse::<u32>(), day.parse::<u32>())
        else {
            return Err(bad());
        };
        let days_in = [
            31,
            if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
                29
            } else {
                28
            },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1970..=9999).contains(&y)
            || !(1..=12).contains(&m)
            || day < 1
            || day > days_in[(m - 1) as usize]
        {
            return Err(bad());
        }
        let next_day = days_from_civil(y, m, day) + 1;
        Ok(Date(crate::time::Time::from_secs(
            u64::try_from(next_day * 86_400).map_err(|_| bad())?,
        )))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
