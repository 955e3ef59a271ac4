//! Keys: what a rule counts failures against, and how an rhost becomes a source.

use crate::config::{Field, Rule};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The rule name of locks set by an admin rather than by a rule.
pub const ADMIN_RULE: &str = "admin";

/// The source of a login that has no rhost (console, sudo, su).
pub const LOCAL_SOURCE: &str = "local";

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
}

impl fmt::Display for KeyId {
    /// `user=alice rhost=203.0.113.7`: the same key=value form as the log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, value) in self.parts() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{name}={}", crate::logline::quote(value))?;
        }
        Ok(())
    }
}

/// How an rhost is keyed: an IP is cut to its prefix (so an attacker cannot rotate
/// addresses inside one /64), a name is kept as written, and no rhost is `local`.
pub fn source_of(rhost: Option<&str>, v4_prefix: u8, v6_prefix: u8) -> String {
    let Some(rhost) = rhost.filter(|r| !r.is_empty()) else {
        return LOCAL_SOURCE.to_string();
    };
    match parse_ip(rhost) {
        Some(ip) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = if ip.is_ipv4() { v4_prefix } else { v6_prefix };
            if prefix >= max {
                return ip.to_string();
            }
            match IpNet::new(ip, prefix) {
                Ok(net) => net.trunc().to_string(),
                Err(_) => ip.to_string(),
            }
        }
        None => rhost.to_ascii_lowercase(),
    }
}

/// Parses an rhost as an IP, unwrapping `[v6]` and IPv4-mapped IPv6, so that
/// one host cannot appear under two spellings.
pub fn parse_ip(rhost: &str) -> Option<IpAddr> {
    let bare = rhost
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rhost);
    let ip: IpAddr = bare.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    })
}

/// Whether a source counts as familiar for a rule, or `None` when the rule does
/// not split by familiarity (it does not track the user, or already tracks the rhost).
pub fn splits_by_familiarity(rule: &Rule) -> bool {
    rule.tracks(Field::User) && !rule.tracks(Field::Rhost)
}

pub struct KeyInput<'a> {
    pub service: &'a str,
    pub user: &'a str,
    pub source: &'a str,
    pub tty: &'a str,
    /// `Some(true)` familiar, `Some(false)` unfamiliar, `None` not split.
    pub familiar: Option<bool>,
}

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
        parts.push(("from", if familiar { "familiar" } else { "unfamiliar" }));
    }
    KeyId::new(&rule.name, parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_keyed_by_prefix() {
        let a = source_of(Some("2001:db8:1:2:aaaa::1"), 32, 64);
        let b = source_of(Some("2001:db8:1:2:bbbb::99"), 32, 64);
        let c = source_of(Some("2001:db8:1:3::1"), 32, 64);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ipv4_prefix_is_configurable() {
        assert_eq!(source_of(Some("203.0.113.7"), 32, 64), "203.0.113.7");
        assert_eq!(source_of(Some("203.0.113.7"), 24, 64), "203.0.113.0/24");
    }

    #[test]
    fn one_host_has_one_spelling() {
        assert_eq!(source_of(Some("::ffff:192.0.2.1"), 32, 64), "192.0.2.1");
        assert_eq!(source_of(Some("[2001:db8::1]"), 32, 128), "2001:db8::1");
        assert_eq!(source_of(Some("Host.Example"), 32, 64), "host.example");
        assert_eq!(source_of(None, 32, 64), "local");
        assert_eq!(source_of(Some(""), 32, 64), "local");
    }

    #[test]
    fn keys_round_trip_and_display() {
        let k = KeyId::new("pair", [("user", "alice"), ("rhost", "2001:db8::/64")]);
        assert_eq!(k.rule(), "pair");
        assert_eq!(k.part("user"), Some("alice"));
        assert_eq!(k.to_string(), "user=alice rhost=2001:db8::/64");
        let again = KeyId::from_encoded(k.encoded());
        assert_eq!(again, k);
    }
}
