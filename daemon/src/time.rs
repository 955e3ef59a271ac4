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

pub use warden_api::text::{format_duration, parse_duration};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(
            Time::from_secs(1_795_356_180).to_string(),
            "2026-11-22T14:03:00Z"
        );
    }
}
