//! Everything a person at a login prompt reads, in one place, so that it can
//! later be customised or translated. The daemon chooses the words and sends
//! them; the module only shows them, so real and unknown users get the very
//! same text.

/// The prompt for a code, after a right password and after a wrong one alike.
pub const CODE_PROMPT: &str = "Verification code: ";
/// A code is required and none is set up; said after the code prompt.
pub const NOT_ENROLLED: &str =
    "A verification code is required, but none is set up for this account. Contact an administrator.";
/// For sshd's password method, which answers every prompt with the password.
pub const NEEDS_PROMPT: &str = "This account needs a verification code, which this login method cannot ask for. Use keyboard-interactive authentication (ssh -o PreferredAuthentications=keyboard-interactive).";
/// The attempt waiting for a code was forgotten (it took too long, or wardend restarted).
pub const START_AGAIN: &str = "The login took too long. Please start again.";
/// Too many attempts in flight at once, for this user or in all.
pub const CROWDED: &str = "Too many login attempts in progress. Try again in a moment.";
/// A refusal that must say nothing more (a denied source, an unverifiable peer).
pub const DENIED: &str = "Access denied.";

/// After a login in the TOTP grace period: the day (YYYY-MM-DD) codes start.
pub fn grace_notice(day: &str) -> String {
    format!(
        "This account needs a verification code after {day}. Ask an administrator to set one up."
    )
}

/// "Try again in 14 minutes." from the seconds left, rounded up.
pub fn locked_message(seconds_left: Option<u64>) -> String {
    match seconds_left {
        None => "Too many failed attempts. Ask an administrator to unlock the account.".into(),
        Some(s) => format!("Too many failed attempts. Try again in {}.", wait(s)),
    }
}

/// A unit of a rounded wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Minute,
    Hour,
    Day,
}

/// The one rounding of a wait, for users and admins alike: always up (a wait
/// is never understated), in minutes below 90 of them, in hours below 48,
/// else in days. `wardenctl` prints the same numbers ("90m" is "2h" and
/// "2 hours" alike).
pub fn round_wait(secs: u64) -> (u64, Unit) {
    let minutes = secs.div_ceil(60).max(1);
    if minutes < 90 {
        return (minutes, Unit::Minute);
    }
    let hours = minutes.div_ceil(60);
    if hours < 48 {
        return (hours, Unit::Hour);
    }
    (hours.div_ceil(24), Unit::Day)
}

fn wait(s: u64) -> String {
    match round_wait(s) {
        (n, Unit::Minute) => plural(n, "minute"),
        (n, Unit::Hour) => plural(n, "hour"),
        (n, Unit::Day) => plural(n, "day"),
    }
}

/// An administrator's lock on the account, with their words when they gave
/// any; `seconds_left` is `None` until they lift it.
pub fn admin_locked_message(reason: &str, seconds_left: Option<u64>) -> String {
    let why = if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    };
    match seconds_left {
        None => format!(
            "This account is locked by an administrator{why}. Ask an administrator to unlock it."
        ),
        Some(s) => format!(
            "This account is locked by an administrator{why}. Try again in {}.",
            wait(s)
        ),
    }
}

/// A lock on where the attempt comes from (an address, a network), not on
/// the account: by the rules after too many failures, or by an administrator.
pub fn address_locked_message(by_admin: bool, reason: &str, seconds_left: Option<u64>) -> String {
    let first = if by_admin {
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(" ({reason})")
        };
        format!("Logins from your address are blocked by an administrator{why}.")
    } else {
        "Too many failed attempts from your address.".to_string()
    };
    match seconds_left {
        None => format!("{first} Ask an administrator to unlock it."),
        Some(s) => format!("{first} Try again in {}.", wait(s)),
    }
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
        assert_eq!(round_wait(90 * 60), (2, Unit::Hour));
        assert_eq!(round_wait(89 * 60), (89, Unit::Minute));
        assert_eq!(
            admin_locked_message("left the company", None),
            "This account is locked by an administrator (left the company). Ask an administrator to unlock it."
        );
        assert_eq!(
            address_locked_message(false, "", Some(3600)),
            "Too many failed attempts from your address. Try again in 60 minutes."
        );
    }
}
