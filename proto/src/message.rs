//! Everything a person at a login prompt reads, in one place. The daemon
//! chooses the words (an admin's `[messages]`, or these, through its gettext
//! catalogues for the PAM application's locale) and sends them; the module
//! only shows them, so real and unknown users get the very same text.

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

/// How the words reach the reader's language: wardend's gettext catalogues
/// for the locale the PAM application runs in, or the English written here,
/// which is also each message's gettext msgid.
pub trait Translate {
    fn text(&self, msgid: &str) -> String;
    /// `one` or `many` (or the language's own forms) for `n`.
    fn plural(&self, one: &str, many: &str, n: u64) -> String;
}

/// The messages as written here.
pub struct English;

impl Translate for English {
    fn text(&self, msgid: &str) -> String {
        msgid.to_string()
    }
    fn plural(&self, one: &str, many: &str, n: u64) -> String {
        if n == 1 { one } else { many }.to_string()
    }
}

const GRACE: &str =
    "This account needs a verification code after {day}. Ask an administrator to set one up.";
const FAILURES: &str = "Too many failed attempts.";
const FAILURES_FROM_ADDRESS: &str = "Too many failed attempts from your address.";
const ADMIN: &str = "This account is locked by an administrator.";
const ADMIN_WHY: &str = "This account is locked by an administrator ({reason}).";
const ADMIN_ADDRESS: &str = "Logins from your address are blocked by an administrator.";
const ADMIN_ADDRESS_WHY: &str =
    "Logins from your address are blocked by an administrator ({reason}).";
const TRY_AGAIN: &str = "Try again in {time_left}.";
const ASK_ACCOUNT: &str = "Ask an administrator to unlock the account.";
const ASK: &str = "Ask an administrator to unlock it.";
const MINUTES: (&str, &str) = ("{n} minute", "{n} minutes");
const HOURS: (&str, &str) = ("{n} hour", "{n} hours");
const DAYS: (&str, &str) = ("{n} day", "{n} days");

/// Every msgid (plurals by their singular), for the catalogues' template,
/// `po/warden.pot`, which a test keeps in step.
pub const MSGIDS: [&str; 19] = [
    CODE_PROMPT,
    NOT_ENROLLED,
    NEEDS_PROMPT,
    START_AGAIN,
    CROWDED,
    DENIED,
    GRACE,
    FAILURES,
    FAILURES_FROM_ADDRESS,
    ADMIN,
    ADMIN_WHY,
    ADMIN_ADDRESS,
    ADMIN_ADDRESS_WHY,
    TRY_AGAIN,
    ASK_ACCOUNT,
    ASK,
    MINUTES.0,
    HOURS.0,
    DAYS.0,
];

/// `{name}` in `template` replaced by `value`.
pub fn fill(template: &str, name: &str, value: &str) -> String {
    template.replace(&format!("{{{name}}}"), value)
}

/// After a login in the TOTP grace period: the day (YYYY-MM-DD) codes start.
pub fn grace_notice(day: &str) -> String {
    grace_notice_in(&English, day)
}

pub fn grace_notice_in(tr: &dyn Translate, day: &str) -> String {
    fill(&tr.text(GRACE), "day", day)
}

/// What refused a login, as the user is told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// Too many failures, on the account.
    Locked,
    /// An administrator's lock on the account, with their words (maybe none).
    AdminLocked { reason: &'a str },
    /// A lock on where the attempt comes from: by the rules, or by an
    /// administrator (with their words).
    AddressLocked { by_admin: bool, reason: &'a str },
}

/// "Too many failed attempts. Try again in 14 minutes." and its kin;
/// `seconds_left` is `None` until an administrator lifts the lock.
pub fn refusal(tr: &dyn Translate, r: &Refusal<'_>, seconds_left: Option<u64>) -> String {
    let first = match r {
        Refusal::Locked => tr.text(FAILURES),
        Refusal::AdminLocked { reason: "" } => tr.text(ADMIN),
        Refusal::AdminLocked { reason } => fill(&tr.text(ADMIN_WHY), "reason", reason),
        Refusal::AddressLocked {
            by_admin: false, ..
        } => tr.text(FAILURES_FROM_ADDRESS),
        Refusal::AddressLocked { reason: "", .. } => tr.text(ADMIN_ADDRESS),
        Refusal::AddressLocked { reason, .. } => {
            fill(&tr.text(ADMIN_ADDRESS_WHY), "reason", reason)
        }
    };
    format!("{first} {}", second_sentence(tr, r, seconds_left))
}

/// A refusal's second sentence: when to try again, or whom to ask.
pub fn second_sentence(tr: &dyn Translate, r: &Refusal<'_>, seconds_left: Option<u64>) -> String {
    match (seconds_left, r) {
        (Some(s), _) => fill(&tr.text(TRY_AGAIN), "time_left", &wait(tr, s)),
        (None, Refusal::Locked) => tr.text(ASK_ACCOUNT),
        (None, _) => tr.text(ASK),
    }
}

/// "Too many failed attempts. Try again in 14 minutes." from the seconds left, rounded up.
pub fn locked_message(seconds_left: Option<u64>) -> String {
    refusal(&English, &Refusal::Locked, seconds_left)
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

/// "14 minutes", in the reader's language.
pub fn wait(tr: &dyn Translate, secs: u64) -> String {
    let (n, (one, many)) = match round_wait(secs) {
        (n, Unit::Minute) => (n, MINUTES),
        (n, Unit::Hour) => (n, HOURS),
        (n, Unit::Day) => (n, DAYS),
    };
    fill(&tr.plural(one, many, n), "n", &n.to_string())
}

/// An administrator's lock on the account, with their words when they gave
/// any; `seconds_left` is `None` until they lift it.
pub fn admin_locked_message(reason: &str, seconds_left: Option<u64>) -> String {
    refusal(&English, &Refusal::AdminLocked { reason }, seconds_left)
}

/// A lock on where the attempt comes from (an address, a network), not on
/// the account: by the rules after too many failures, or by an administrator.
pub fn address_locked_message(by_admin: bool, reason: &str, seconds_left: Option<u64>) -> String {
    refusal(
        &English,
        &Refusal::AddressLocked { by_admin, reason },
        seconds_left,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each catalogue (and the template) has every msgid, and each
    /// translation keeps the placeholders of its msgid: a `{time_left}` lost
    /// in translation would hide when the user may try again.
    #[test]
    fn every_catalogue_has_every_msgid_and_its_placeholders() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../po");
        for file in ["warden.pot", "de.po", "fr.po"] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap_or_default();
            let unquote = |l: &str| l.trim().trim_matches('"').replace("\\\"", "\"");
            let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("msgid ") {
                    pairs.push((unquote(id), Vec::new()));
                } else if let Some((_, tr)) =
                    line.strip_prefix("msgstr").and_then(|l| l.split_once(' '))
                {
                    if let Some(last) = pairs.last_mut() {
                        last.1.push(unquote(tr));
                    }
                }
            }
            for id in MSGIDS {
                let found = pairs.iter().find(|(m, _)| m == id);
                assert!(found.is_some(), "{file} lacks {id:?}");
                if file == "warden.pot" {
                    continue;
                }
                for tr in found.map(|f| f.1.clone()).unwrap_or_default() {
                    assert!(!tr.is_empty(), "{file}: {id:?} is not translated");
                    for p in ["{time_left}", "{reason}", "{day}", "{n}"] {
                        assert_eq!(id.contains(p), tr.contains(p), "{file}: {id:?} -> {tr:?}");
                    }
                }
            }
        }
    }

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
