//! Output for people: aligned tables and relative times.

pub use warden_api::text::table;

/// "in 14m", "3h ago", "now", from a time and the present, both Unix seconds.
pub fn relative(at: i64, now: i64) -> String {
    let delta = at - now;
    if delta.abs() < 1 {
        return "now".into();
    }
    let span = short(delta.unsigned_abs());
    if delta > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// 45s, 14m, 3h, 2d: one unit, rounded up as the users' messages round
/// (`warden_proto::message::round_wait`), so both say the same number.
pub fn short(secs: u64) -> String {
    use warden_proto::message::{round_wait, Unit};
    if secs < 60 {
        return format!("{secs}s");
    }
    match round_wait(secs) {
        (n, Unit::Minute) => format!("{n}m"),
        (n, Unit::Hour) => format!("{n}h"),
        (n, Unit::Day) => format!("{n}d"),
    }
}

/// RFC 3339 in UTC, for the times a person may want to quote.
pub fn stamp(secs: i64) -> String {
    warden_api::text::stamp(u64::try_from(secs).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(1000 + 14 * 60, 1000), "in 14m");
        assert_eq!(relative(1000 - 3 * 3600, 1000), "3h ago");
        assert_eq!(relative(1000, 1000), "now");
        assert_eq!(relative(1045, 1000), "in 45s");
        assert_eq!(relative(1000 + 3 * 86_400, 1000), "in 3d");
        // The same number the user is told: 90 minutes is "2 hours".
        assert_eq!(short(90 * 60), "2h");
        assert_eq!(short(89 * 60), "89m");
    }
}
