//! What the nftables sets hold, written as `nft -f` batches: pure text from
//! locks, no I/O. The sets are those of the shipped `warden.nft`, one per
//! layer and family, so that the elements of one set never overlap:
//!
//! - `rule_v4`, `rule_v6`: rule locks on an address alone, each at the
//!   rules' prefix (`ipv4_prefix`, `ipv6_prefix`);
//! - `prefix_v4`, `prefix_v6`: `[aggregate]` locks, each at its prefix;
//! - `admin_v4`, `admin_v6`: an admin's address and range locks, which may
//!   overlap and so are written whole, the widest kept.

use crate::engine::{KeyId, ADMIN_RULE, PREFIX_RULE};
use crate::time::Time;
use ipnet::IpNet;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

pub const TABLE: &str = "inet warden";

/// The longest timeout the kernel takes is a few hundred days; a longer
/// lock is put back by the hourly sync before its element runs out.
const MAX_TIMEOUT_SECS: u64 = 30 * 86_400;

/// Elements in one `add element` statement.
const CHUNK: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    Rule,
    Prefix,
    Admin,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Rule, Layer::Prefix, Layer::Admin];

    fn of(rule: &str) -> Layer {
        match rule {
            ADMIN_RULE => Layer::Admin,
            PREFIX_RULE => Layer::Prefix,
            _ => Layer::Rule,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layer::Rule => "rule",
            Layer::Prefix => "prefix",
            Layer::Admin => "admin",
        }
    }

    /// Its two sets, IPv4 then IPv6.
    pub fn sets(self) -> [String; 2] {
        [4, 6].map(|v| format!("{}_v{v}", self.name()))
    }
}

/// One address lock as the firewall holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub layer: Layer,
    pub net: IpNet,
    /// `None`: permanent.
    pub until: Option<Time>,
}

impl Element {
    /// The element of a lock on an address or a range alone; `None` for any
    /// other key: a user's lock must never block the address it came from,
    /// which may be the owner's own.
    pub fn of(key: &KeyId, until: Option<Time>) -> Option<Element> {
        let mut parts = key.parts();
        let (name, value) = parts.next()?;
        if name != "rhost" || parts.next().is_some() {
            return None;
        }
        let net = value
            .parse::<IpNet>()
            .ok()
            .or_else(|| value.parse::<IpAddr>().ok().map(IpNet::from))?;
        Some(Element {
            layer: Layer::of(key.rule()),
            net: net.trunc(),
            until,
        })
    }

    fn set(&self) -> String {
        let [v4, v6] = self.layer.sets();
        match self.net {
            IpNet::V4(_) => v4,
            IpNet::V6(_) => v6,
        }
    }

    /// `192.0.2.7 timeout 3600s`, or `None` once its end has passed.
    fn spelled(&self, now: Time) -> Option<String> {
        let net = if self.net.prefix_len() == self.net.max_prefix_len() {
            self.net.addr().to_string()
        } else {
            self.net.to_string()
        };
        match self.until {
            None => Some(net),
            Some(t) if t <= now => None,
            Some(t) => {
                let secs = (t.0 - now.0).div_ceil(1000).clamp(1, MAX_TIMEOUT_SECS);
                Some(format!("{net} timeout {secs}s"))
            }
        }
    }
}

/// Adds a lock's element.
pub fn add(e: &Element, now: Time) -> String {
    e.spelled(now).map_or_else(String::new, |el| {
        format!("add element {TABLE} {} {{ {el} }}\n", e.set())
    })
}

/// Removes a lock's element. The kernel may have timed it out already, and a
/// delete of a missing element would fail the whole batch: adding it first
/// (which changes nothing when it is there) means the delete always finds it.
pub fn remove(e: &Element) -> String {
    let set = e.set();
    let Some(el) = (Element {
        until: None,
        ..e.clone()
    })
    .spelled(Time(0)) else {
        return String::new();
    };
    format!("add element {TABLE} {set} {{ {el} timeout 1s }}\ndelete element {TABLE} {set} {{ {el} }}\n")
}

/// Empties `layers`' sets and fills them with `elements` of those layers, in
/// one batch (nft applies a batch as one transaction). A net inside another
/// of the same set is left out, since the set cannot hold both: the wider
/// one refuses it anyway, and when that one ends, its unlock writes the
/// layer again.
pub fn rewrite(layers: &[Layer], elements: &[Element], now: Time) -> String {
    let mut out = String::new();
    for layer in layers {
        for set in layer.sets() {
            let _ = writeln!(out, "flush set {TABLE} {set}");
        }
    }
    let mut chosen: Vec<&Element> = elements
        .iter()
        .filter(|e| layers.contains(&e.layer))
        .collect();
    chosen.sort_by_key(|e| (e.layer, e.net.prefix_len(), e.net));
    let mut kept: HashSet<(Layer, IpNet)> = HashSet::new();
    let mut by_set: Vec<(String, Vec<String>)> = Vec::new();
    for e in chosen {
        let inside = (0..e.net.prefix_len()).any(|len| {
            IpNet::new(e.net.addr(), len)
                .is_ok_and(|wider| kept.contains(&(e.layer, wider.trunc())))
        });
        if inside || !kept.insert((e.layer, e.net)) {
            continue;
        }
        let Some(el) = e.spelled(now) else { continue };
        let set = e.set();
        match by_set.iter_mut().find(|(s, _)| *s == set) {
            Some((_, list)) => list.push(el),
            None => by_set.push((set, vec![el])),
        }
    }
    for (set, list) in by_set {
        for chunk in list.chunks(CHUNK) {
            let _ = writeln!(out, "add element {TABLE} {set} {{ {} }}", chunk.join(", "));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(text: &str) -> KeyId {
        KeyId::parse(text).unwrap()
    }

    #[test]
    fn only_locks_on_an_address_alone_become_elements() {
        let at = Some(Time(10_000));
        let e = Element::of(&key("rhost rhost=203.0.113.7"), at).unwrap();
        assert_eq!((e.layer, e.set()), (Layer::Rule, "rule_v4".to_string()));
        let e = Element::of(&key("admin rhost=2001:db8::/48"), None).unwrap();
        assert_eq!(e.set(), "admin_v6");
        let e = Element::of(&key("prefix rhost=198.51.100.0/24"), at).unwrap();
        assert_eq!(e.set(), "prefix_v4");
        for other in [
            "user user=alice",
            "user user=alice from=unfamiliar",
            "pair user=alice rhost=203.0.113.7",
            "svc rhost=203.0.113.7 service=sshd",
            "admin user=dave",
            "rhost rhost=local",
        ] {
            assert_eq!(Element::of(&key(other), at), None, "{other}");
        }
    }

    #[test]
    fn timeouts_are_the_time_left_rounded_up_and_bounded() {
        let e = Element::of(&key("rhost rhost=192.0.2.1"), Some(Time(61_500))).unwrap();
        assert_eq!(
            add(&e, Time(1_000)),
            "add element inet warden rule_v4 { 192.0.2.1 timeout 61s }\n"
        );
        assert_eq!(add(&e, Time(61_500)), "", "an ended lock adds nothing");
        let forever = Element::of(&key("admin rhost=192.0.2.0/24"), None).unwrap();
        assert_eq!(
            add(&forever, Time(0)),
            "add element inet warden admin_v4 { 192.0.2.0/24 }\n"
        );
        let far = Element::of(&key("rhost rhost=192.0.2.1"), Some(Time(u64::MAX / 2))).unwrap();
        assert!(add(&far, Time(0)).contains("timeout 2592000s"));
    }

    #[test]
    fn a_removal_never_fails_on_an_element_the_kernel_timed_out() {
        let e = Element::of(&key("rhost rhost=2001:db8::/64"), Some(Time(5))).unwrap();
        assert_eq!(
            remove(&e),
            "add element inet warden rule_v6 { 2001:db8::/64 timeout 1s }\n\
             delete element inet warden rule_v6 { 2001:db8::/64 }\n"
        );
    }

    #[test]
    fn a_rewrite_keeps_the_widest_of_nested_ranges_per_set() {
        let els: Vec<Element> = [
            "admin rhost=192.0.2.7",
            "admin rhost=192.0.2.0/24",
            "admin rhost=192.0.0.0/16",
            "admin rhost=198.51.100.1",
            "rhost rhost=192.0.2.7",
        ]
        .iter()
        .map(|k| Element::of(&key(k), None).unwrap())
        .collect();
        let text = rewrite(&[Layer::Admin], &els, Time(0));
        assert_eq!(
            text,
            "flush set inet warden admin_v4\nflush set inet warden admin_v6\n\
             add element inet warden admin_v4 { 192.0.0.0/16, 198.51.100.1 }\n"
        );
    }
}
