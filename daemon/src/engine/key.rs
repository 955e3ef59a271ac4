//! Keys: what a rule counts failures against, and how an rhost becomes a source.

use crate::config::{Field, Rule};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A rule name and the attempt fields it tracks, in one canonical string.
///
/// Parts are separated by NUL, which the socket refuses in every field, so two
/// different keys can never encode to the same string. A boxed `str`, not a
/// `String`: keys never grow, and a million of them save 8 MB of capacity fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyId(Box<str>);

impl KeyId {
    pub fn new<'a>(rule: &str, parts: impl IntoIterator<Item = (&'a str, &'a str)>) -> KeyId {
        let mut s = String::from(rule);
        for (name, value) in parts {
            s.push('\0');
            s.push_str(name);
            s.push('=');
            s.push_str(value);
        }
        KeyId(s.into_boxed_str())
    }

    /// Rebuilds a key read back from the store.
    pub fn from_encoded(s: &str) -> KeyId {
        KeyId(s.into())
    }

    pub fn encoded(&self) -> &str {
        &self.0
    }

    pub fn rule(&self) -> &str {
        self.0.split('\0').next().unwrap_or("")
    }

    pub fn parts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.split('\0').skip(1).filter_map(|p| p.split_once('='))
    }

    pub fn part(&self, name: &str) -> Option<&str> {
        self.parts().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Where the keys of `rule` naming `user` start in the key order: the key
    /// itself when `user` is all it tracks, then `rule\0user=NAME\0...`, which
    /// sort right after it because NUL sorts first. `user` is always a rule's
    /// first tracked field, so these ranges are a per-user index for free.
    pub fn user_range_start(rule: &str, user: &str) -> KeyId {
        KeyId::new(rule, [("user", user)])
    }

    /// Whether this key lies in the range that starts at `start`.
    pub fn within(&self, start: &KeyId) -> bool {
        self.0 == start.0
            || (self.0.starts_with(&*start.0) && self.0.as_bytes().get(start.0.len()) == Some(&0))
    }
}

impl fmt::Display for KeyId {
    /// The canonical spelling, `user user=alice from=unfamiliar`, which
    /// [`KeyId::parse`] reads back (see `warden_api::key`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&warden_api::key::spell(self.rule(), self.parts()))
    }
}

impl KeyId {
    /// Reads the canonical spelling back. Values that hold a NUL are refused:
    /// no key holds one, since every field the socket takes refuses NUL.
    pub fn parse(text: &str) -> Result<KeyId, warden_api::key::KeyError> {
        let k = warden_api::key::parse(text)?;
        if k.fields.iter().any(|(_, v)| v.contains('\0')) {
            return Err(warden_api::key::KeyError {
                at: 1,
                what: "a value holds a NUL, which no key can".into(),
            });
        }
        Ok(KeyId::new(
            &k.rule,
            k.fields.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        ))
    }
}

/// Whether a rule keeps separate budgets for familiar sources: it tracks the
/// user but not already the rhost.
pub fn splits_by_familiarity(rule: &Rule) -> bool {
    rule.tracks(Field::User) && !rule.tracks(Field::Rhost)
}

pub struct KeyInput<'a> {
    pub service: &'a str,
    pub user: &'a str,
    pub source: &'a str,
    pub tty: &'a str,
    /// For rules that split by familiarity: `Some(true)` when the source is
    /// familiar, which then gets a budget of its own; `None` for other rules.
    pub familiar: Option<bool>,
}

/// The value of the `from` part for unfamiliar sources. No source is spelled
/// this way (sources are addresses, `local...` or `name:...`), so it cannot
/// collide with a familiar source's own budget.
pub const UNFAMILIAR: &str = "unfamiliar";

/// What a folded field holds in a user's overflow key.
pub const ANY: &str = "*";

pub fn key_for(rule: &Rule, input: &KeyInput<'_>) -> KeyId {
    let mut parts: Vec<(&str, &str)> = Vec::with_capacity(5);
    for field in &rule.track {
        let value = match field {
            Field::User => input.user,
            Field::Rhost => input.source,
            Field::Tty => input.tty,
            Field::Service => input.service,
        };
        parts.push((field.name(), value));
    }
    if let Some(familiar) = input.familiar {
        // Each familiar source has a budget of its own: whoever shares one
        // (an office NAT) can lock the owner out of that one only.
        parts.push(("from", if familiar { input.source } else { UNFAMILIAR }));
    }
    KeyId::new(&rule.name, parts)
}

/// A user's overflow key for a rule that tracks more than the user: every
/// other field folded to `*`. Once a name holds `max_keys_per_user` keys, its
/// new unfamiliar keys count here instead, so no one name can fill the table
/// by varying a tty, a service or an address.
pub fn overflow_key(rule: &Rule, input: &KeyInput<'_>) -> Option<KeyId> {
    if !rule.tracks(Field::User) || rule.track.len() < 2 {
        return None;
    }
    let mut parts: Vec<(&str, &str)> = Vec::with_capacity(5);
    for field in &rule.track {
        let value = match field {
            Field::User => input.user,
            _ => ANY,
        };
        parts.push((field.name(), value));
    }
    if let Some(false) = input.familiar {
        parts.push(("from", UNFAMILIAR));
    }
    Some(KeyId::new(&rule.name, parts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_display() {
        let k = KeyId::new("pair", [("user", "alice"), ("rhost", "2001:db8::/64")]);
        assert_eq!(k.rule(), "pair");
        assert_eq!(k.part("user"), Some("alice"));
        assert_eq!(k.to_string(), "pair user=alice rhost=2001:db8::/64");
        assert_eq!(KeyId::parse(&k.to_string()).unwrap(), k);
        let odd = KeyId::new("user", [("user", "jürgen x=\"y\"")]);
        assert_eq!(KeyId::parse(&odd.to_string()).unwrap(), odd);
        let again = KeyId::from_encoded(k.encoded());
        assert_eq!(again, k);
    }

    #[test]
    fn a_users_keys_are_one_range() {
        let start = KeyId::user_range_start("r", "al");
        assert!(KeyId::new("r", [("user", "al")]).within(&start));
        assert!(KeyId::new("r", [("user", "al"), ("tty", "x")]).within(&start));
        assert!(!KeyId::new("r", [("user", "alice")]).within(&start));
        assert!(!KeyId::new("r", [("user", "al=x")]).within(&start));
        assert!(!KeyId::new("s", [("user", "al")]).within(&start));
        let mut keys = [
            KeyId::new("r", [("user", "al"), ("tty", "x")]),
            KeyId::new("r", [("user", "alice")]),
            KeyId::new("r", [("user", "al")]),
            KeyId::new("r", [("user", "al!")]),
        ];
        keys.sort();
        let inside: Vec<bool> = keys.iter().map(|k| k.within(&start)).collect();
        assert_eq!(inside, [true, true, false, false], "{keys:?}");
    }
}
