//! Where an attempt comes from, spelled one way per origin.
//!
//! An attacker who can write one address several ways gets a key per spelling
//! and escapes the lock on the first, so every spelling of an address reduces
//! to one canonical form before it becomes part of a key.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The source of a login that has no rhost and no invoking user (a console).
pub const LOCAL_SOURCE: &str = "local";

/// Parses an rhost as an IP address, whatever its spelling: `[v6]`, a zone id
/// (`fe80::1%eth0`), decimal octets with leading zeros (`198.051.100.7` is
/// 198.51.100.7), and IPv4 inside IPv6 (mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) all come back as one address.
pub fn parse_ip(rhost: &str) -> Option<IpAddr> {
    let bare = rhost
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rhost);
    // A zone id names the interface, not the host.
    let bare = bare.split_once('%').map_or(bare, |(a, _)| a);
    if !bare.contains(':') {
        return lenient_v4(bare).map(IpAddr::V4);
    }
    let v6: Ipv6Addr = match bare.rsplit_once(':') {
        // A dotted tail may have leading zeros too.
        Some((head, tail)) if tail.contains('.') => {
            let v4 = lenient_v4(tail)?;
            format!("{head}:{v4}").parse().ok()?
        }
        _ => bare.parse().ok()?,
    };
    Some(unwrap_v4(v6))
}

/// Four decimal octets, leading zeros allowed and read as decimal (what a
/// person writing `010` means). Other inet_aton forms (hex, fewer parts) are
/// not addresses here.
fn lenient_v4(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// The IPv4 host behind an IPv6 spelling of it, or the IPv6 address itself.
fn unwrap_v4(v6: Ipv6Addr) -> IpAddr {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // IPv4-compatible (deprecated, but still parsed): ::a.b.c.d, except :: and ::1.
    if s[..6].iter().all(|x| *x == 0) && u32::from(tail) > 1 {
        return IpAddr::V4(tail);
    }
    // The NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(tail);
    }
    IpAddr::V6(v6)
}

/// A host name as keys spell it: lower case, without a trailing root dot.
pub fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// How sources are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefixes {
    pub v4: u8,
    pub v6: u8,
}

/// An address cut to a prefix: the address itself at full length.
pub fn cut(ip: IpAddr, p: Prefixes) -> String {
    let (max, len) = match ip {
        IpAddr::V4(_) => (32, p.v4),
        IpAddr::V6(_) => (128, p.v6),
    };
    if len >= max {
        return ip.to_string();
    }
    IpNet::new(ip, len).map_or_else(|_| ip.to_string(), |n| n.trunc().to_string())
}

/// The source of an attempt, as keys and familiar sources spell it:
/// - an IP rhost cut to its prefix (`203.0.113.7`, `2001:db8:1:2::/64`);
/// - a name rhost as `name:host.example`;
/// - no rhost: `local:USER` when the application named the invoking user
///   (su and sudo do, as PAM_RUSER), so that one local user's guesses at
///   another's password are not the owner's own local logins; else `local`.
pub fn source_of(rhost: Option<&str>, ruser: Option<&str>, p: Prefixes) -> String {
    match rhost.filter(|r| !r.is_empty()) {
        Some(r) => match parse_ip(r) {
            Some(ip) => cut(ip, p),
            None => format!("name:{}", normalize_name(r)),
        },
        None => match ruser.filter(|u| !u.is_empty()) {
            Some(u) => format!("{LOCAL_SOURCE}:{u}"),
            None => LOCAL_SOURCE.to_string(),
        },
    }
}

/// Whether a source is a login without an rhost.
pub fn is_local(source: &str) -> bool {
    source == LOCAL_SOURCE || source.starts_with("local:")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const P: Prefixes = Prefixes { v4: 32, v6: 64 };

    #[test]
    fn every_spelling_of_one_address_is_one_source() {
        let one = "198.51.100.7";
        for spelling in [
            "198.51.100.7",
            "198.051.100.007",
            "::ffff:198.51.100.7",
            "::ffff:198.051.100.7",
            "::198.51.100.7",
            "64:ff9b::198.51.100.7",
            "64:ff9b::c633:6407",
            "[::ffff:198.51.100.7]",
        ] {
            assert_eq!(source_of(Some(spelling), None, P), one, "{spelling}");
        }
        assert_eq!(
            source_of(Some("fe80::1%eth0"), None, P),
            source_of(Some("fe80::1%eth1"), None, P)
        );
        assert_eq!(source_of(Some("fe80::1%eth0"), None, P), "fe80::/64");
        assert_eq!(source_of(Some("[2001:db8::1]"), None, P), "2001:db8::/64");
    }

    #[test]
    fn the_unspecified_and_loopback_addresses_stay_ipv6() {
        assert_eq!(parse_ip("::1"), Some("::1".parse().unwrap()));
        assert_eq!(parse_ip("::"), Some("::".parse().unwrap()));
    }

    #[test]
    fn not_addresses_are_names() {
        for name in [
            "1.2.3",
            "1.2.3.4.5",
            "0x1.2.3.4",
            "1.2.3.256",
            "1..2.3",
            "1.2.3.0004",
        ] {
            assert_eq!(parse_ip(name), None, "{name}");
        }
        assert_eq!(
            source_of(Some("Host.Example."), None, P),
            source_of(Some("host.example"), None, P)
        );
        assert_eq!(
            source_of(Some("host.example"), None, P),
            "name:host.example"
        );
    }

    #[test]
    fn local_logins_are_told_apart_by_the_invoking_user() {
        assert_eq!(source_of(None, Some("bob"), P), "local:bob");
        assert_eq!(source_of(Some(""), None, P), "local");
        assert_eq!(source_of(None, Some(""), P), "local");
        assert!(is_local("local") && is_local("local:bob"));
        assert!(!is_local("localhost") && !is_local("name:local"));
    }

    #[test]
    fn prefixes_cut_addresses() {
        let p = Prefixes { v4: 24, v6: 48 };
        assert_eq!(source_of(Some("203.0.113.7"), None, p), "203.0.113.0/24");
        assert_eq!(
            source_of(Some("2001:db8:1:2::9"), None, p),
            "2001:db8:1::/48"
        );
    }
}
