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

/// 45s, 14m, 3h, 2d: one unit, rounded to the nearest.
pub fn short(secs: u64) -> String {
    let round = |n: u64, per: u64| (n + per / 2) / per;
    match secs {
        0..90 => format!("{secs}s"),
        90..5400 => format!("{}m", round(secs, 60)),
        5400..172_800 => format!("{}h", round(secs, 3600)),
        _ => format!("{}d", round(secs, 86_400)),
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
    }
}
