//! The log line format: `kind key=value ...`, stable so that fail2ban and SIEMs
//! can parse it.
//!
//! Values come from attackers (usernames, rhosts, service names), so anything
//! that could break the line apart is quoted and escaped: a value with a space,
//! a quote, a backslash, an `=` or a control character is written in quotes,
//! with `"`, `\`, `=` and control characters escaped as `\xNN`. A literal `=`
//! therefore only ever follows a real field name, so even a loose pattern such
//! as ` rhost=<HOST>` cannot be fooled by `service="x rhost=198.51.100.9"`: it
//! is written `service="x rhost\x3d198.51.100.9"`. The daemon's own `by`
//! values (`uid=0`, `expired`) are written bare.

use crate::engine::{Event, EventKind, Until};
use std::fmt::Write as _;

pub fn format(e: &Event) -> String {
    let mut line = String::from(e.kind.name());
    // The daemon's own `by` values are bare; everything else goes through quote.
    let mut field = |name: &str, value: &str| {
        let shown = if name == "by" && is_own_by(value) {
            value.to_string()
        } else {
            quote(value)
        };
        let _ = write!(line, " {name}={shown}");
    };
    let opt = |v: &Option<String>| v.as_deref().map(str::to_string);
    if let Some(rule) = &e.rule {
        field("rule", rule);
    }
    // What a lock is keyed on (`on=rhost` for an address lock, `on=user`,
    // `on=user+rhost`...), so that a firewall filter can take address locks
    // alone: a user lock's line also names the address of the attempt that
    // tipped it, which may be the owner's own.
    let about_lock = matches!(
        e.kind,
        EventKind::Locked | EventKind::Unlocked | EventKind::WouldLock | EventKind::WouldUnlock
    );
    if let (Some(key), true) = (&e.key, about_lock) {
        let on: Vec<&str> = key
            .parts()
            .map(|(n, _)| n)
            .filter(|n| *n != "from")
            .collect();
        if !on.is_empty() {
            field("on", &on.join("+"));
        }
    }
    for (name, value) in [
        ("service", opt(&e.service)),
        ("user", opt(&e.user)),
        ("rhost", opt(&e.rhost)),
        ("tty", opt(&e.tty)),
    ] {
        if let Some(v) = value {
            field(name, &v);
        }
    }
    if let Some(key) = &e.key {
        if key.parts().any(|(n, _)| n == "from") {
            field("from", key.part("from").unwrap_or(""));
        }
    }
    if let Some(n) = e.failures {
        field("failures", &n.to_string());
    }
    match e.until {
        Some(Until::At(t)) => field("until", &t.to_string()),
        Some(Until::Permanent) => field("until", "permanent"),
        None => {}
    }
    if let Some(by) = &e.by {
        field("by", by);
    }
    if let Some(reason) = &e.reason {
        field("reason", reason);
    }
    line
}

/// `uid=N`, `expired`, `evicted`: what wardend itself writes in `by`.
fn is_own_by(by: &str) -> bool {
    matches!(by, "expired" | "evicted")
        || by
            .strip_prefix("uid=")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Values are spelled as keys are (see `warden_api::key`): one spelling for both.
pub use warden_api::key::quote;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::KeyId;
    use crate::time::Time;

    #[test]
    fn lock_line_has_the_documented_form() {
        let key = KeyId::new("user", [("user", "alice")]);
        let mut e = Event::about_key(Time::from_secs(1_795_355_280), EventKind::Locked, &key);
        e.rhost = Some("203.0.113.7".into());
        e.failures = Some(5);
        e.until = Some(Until::At(Time::from_secs(1_795_356_180)));
        assert_eq!(
            format(&e),
            "locked rule=user on=user user=alice rhost=203.0.113.7 failures=5 until=2026-11-22T14:03:00Z"
        );
    }

    #[test]
    fn hostile_values_cannot_forge_fields_or_lines() {
        assert_eq!(quote("alice"), "alice");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("x user=root"), "\"x user\\x3droot\"");
        assert_eq!(quote("xrhost=198.51.100.9"), "\"xrhost\\x3d198.51.100.9\"");
        assert_eq!(
            quote("evil\nlocked user=root"),
            "\"evil\\x0alocked user\\x3droot\""
        );
        assert_eq!(quote("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("jürgen"), "\"jürgen\"");
    }

    #[test]
    fn no_value_can_put_a_field_into_the_line() {
        let mut e = Event::new(Time::from_secs(1_795_355_280), EventKind::Failure);
        e.service = Some("x rhost=198.51.100.9 user=root".into());
        e.user = Some("rhost=198.51.100.9".into());
        e.by = Some("uid=0 rhost=198.51.100.9".into());
        let line = format(&e);
        // Every literal '=' follows one of the fields wardend writes.
        let fields: Vec<&str> = line
            .match_indices('=')
            .map(|(i, _)| line[..i].rsplit(' ').next().unwrap_or(""))
            .collect();
        assert_eq!(fields, ["service", "user", "by"], "{line}");
        assert!(!line.contains(" rhost="), "{line}");
        let mut ok = Event::new(Time::from_secs(1), EventKind::Unlocked);
        ok.by = Some("uid=0".into());
        assert!(format(&ok).ends_with(" by=uid=0"));
    }
}
