//! The log line format: `kind key=value ...`, stable so that fail2ban and SIEMs
//! can parse it.
//!
//! Values come from attackers (usernames, rhosts), so anything that could break
//! the line apart (spaces, quotes, control characters) is quoted and escaped:
//! no one can forge a field or a second log line through a username. A bare `=`
//! is left alone (`by=uid=0`): without a space it cannot start a field.

use crate::engine::{Event, Until};
use std::fmt::Write as _;

pub fn format(e: &Event) -> String {
    let mut line = String::from(e.kind.name());
    let mut field = |name: &str, value: &str| {
        let _ = write!(line, " {name}={}", quote(value));
    };
    let opt = |v: &Option<String>| v.as_deref().map(str::to_string);
    for (name, value) in [
        ("rule", opt(&e.rule)),
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

/// Leaves plain values bare and quotes the rest, escaping `"`, `\` and control
/// characters.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EventKind, KeyId};
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
            "locked rule=user user=alice rhost=203.0.113.7 failures=5 until=2026-11-22T14:03:00Z"
        );
    }

    #[test]
    fn hostile_values_cannot_forge_fields_or_lines() {
        assert_eq!(quote("alice"), "alice");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("x user=root"), "\"x user=root\"");
        assert_eq!(
            quote("evil\nlocked user=root"),
            "\"evil\\x0alocked user=root\""
        );
        assert_eq!(quote("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("jürgen"), "\"jürgen\"");
    }
}
