//! Wall-clock instants and durations as the engine sees them.
//!
//! The engine never reads the clock: callers hand it a [`Time`]. Milliseconds since
//! the Unix epoch keep instants comparable across restarts and cheap to store.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// The current wall-clock time. Only the I/O layers call this.
    pub fn now() -> Time {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Time(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub fn from_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1000))
    }

    pub fn plus(self, d: Duration) -> Time {
        Time(self.0.saturating_add(millis(d)))
    }

    pub fn minus(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(millis(d)))
    }

    /// How long from `self` until `later`, or zero if `later` is not later.
    pub fn until(self, later: Time) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }

    pub fn as_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

impl fmt::Display for Time {
    /// RFC 3339 in UTC to the second, the form SIEMs and fail2ban parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_seconds(self.as_system_time())
        )
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Parses the config's durations: a whole number and one unit, `30s`, `15m`, `1h`, `7d`.
///
/// Stricter than humantime on purpose: a security setting should have exactly one
/// reading, so `1h30m`, `15 minutes` and bare numbers are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint =
        "use a whole number and one unit: s, m, h or d, as in \"30s\", \"15m\", \"1h\", \"7d\"";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("invalid duration \"{text}\": {hint}"))?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration \"{text}\": {hint}"))?;
    let secs_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid duration \"{text}\": {hint}")),
    };
    let secs = n
        .checked_mul(secs_per)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("duration \"{text}\" is too long (at most 100 years)"))?;
    Ok(Duration::from_secs(secs))
}

/// The shortest exact form of a duration in the config's own units (`90m` stays `90m`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, per) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s % per == 0 {
            return format!("{}{unit}", s / per);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_each_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn ambiguous_durations_are_refused() {
        for bad in ["", "15", "m", "15x", "1h30m", "-5m", "15 minutes", "1.5h"] {
            let err = parse_duration(bad).err();
            assert!(err.is_some(), "{bad:?} should be refused");
        }
        assert!(parse_duration("99999999999999d")
            .err()
            .is_some_and(|e| e.contains("too long")));
    }

    #[test]
    fn durations_format_back_to_config_units() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 7)), "7d");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(
            Time::from_secs(1_795_356_180).to_string(),
            "2026-11-22T14:03:00Z"
        );
    }
}
