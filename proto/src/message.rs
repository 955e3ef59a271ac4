//! What a refused user is told. The daemon writes it, so real and unknown users
//! get the very same words.

/// "Try again in 14 minutes." from the seconds left, rounded up.
pub fn locked_message(seconds_left: Option<u64>) -> String {
    match seconds_left {
        None => "Too many failed attempts. Ask an administrator to unlock the account.".into(),
        Some(s) => format!("Too many failed attempts. Try again in {}.", wait(s)),
    }
}

fn wait(s: u64) -> String {
    let minutes = s.div_ceil(60).max(1);
    if minutes < 90 {
        return plural(minutes, "minute");
    }
    let hours = minutes.div_ceil(60);
    if hours < 48 {
        return plural(hours, "hour");
    }
    plural(hours.div_ceil(24), "day")
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_naturally() {
        assert_eq!(
            locked_message(Some(14 * 60)),
            "Too many failed attempts. Try again in 14 minutes."
        );
        assert_eq!(
            locked_message(Some(1)),
            "Too many failed attempts. Try again in 1 minute."
        );
        assert_eq!(
            locked_message(Some(61)),
            "Too many failed attempts. Try again in 2 minutes."
        );
        assert_eq!(
            locked_message(Some(3 * 3600)),
            "Too many failed attempts. Try again in 3 hours."
        );
        assert_eq!(
            locked_message(Some(7 * 86_400)),
            "Too many failed attempts. Try again in 7 days."
        );
        assert!(locked_message(None).contains("administrator"));
    }
}
