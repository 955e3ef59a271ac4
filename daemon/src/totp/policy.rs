//! Who must give a code, where, and who is spared.

use super::TotpRecord;
use crate::config::TotpPolicy;
use crate::time::Time;
use std::net::IpAddr;

/// The facts about one successful password.
pub struct Situation<'a> {
    pub user: &'a str,
    pub service: &'a str,
    pub ip: Option<IpAddr>,
    /// The rhost cut to its prefix, as the lockout rules key it.
    pub source: &'a str,
    pub groups: &'a [String],
    pub record: Option<&'a TotpRecord>,
    pub now: Time,
    /// The attempt comes from an unprivileged peer, which names its own
    /// service: no service scope, trusted address or remembered source may
    /// spare it the code.
    pub strict: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Let the success stand.
    Nothing,
    /// Ask for a code.
    Code,
    /// Required but not enrolled: refuse.
    Refuse,
    /// Required but not enrolled, inside the grace period: allow with a warning.
    Grace(Time),
}

pub fn decide(p: &TotpPolicy, s: &Situation<'_>) -> Need {
    decide_why(p, s).0
}

/// The decision, and in words the policy line that made it (for `explain`).
pub fn decide_why(p: &TotpPolicy, s: &Situation<'_>) -> (Need, &'static str) {
    if !s.strict
        && p.services
            .as_ref()
            .is_some_and(|list| !list.iter().any(|x| x == s.service))
    {
        return (Need::Nothing, "the service is not in [totp] services");
    }
    if !s.strict
        && s.ip
            .is_some_and(|ip| p.trusted_rhosts.iter().any(|n| n.contains(&ip)))
    {
        return (Need::Nothing, "the address is in [totp] trusted_rhosts");
    }
    let required = p.required_for_users.iter().any(|u| u == s.user)
        || s.groups.iter().any(|g| p.required_for_groups.contains(g));
    match s.record.filter(|r| r.confirmed) {
        Some(r) if required || p.optional => {
            if !s.strict && r.remembers(s.source, s.now) {
                (
                    Need::Nothing,
                    "a code was given from this source recently ([totp] remember)",
                )
            } else if required {
                (
                    Need::Code,
                    "required for this user or a group of theirs, and enrolled",
                )
            } else {
                (
                    Need::Code,
                    "enrolled, and [totp] optional asks every enrolled user",
                )
            }
        }
        Some(_) => (
            Need::Nothing,
            "enrolled, but not required and [totp] optional is off",
        ),
        None if !required => (Need::Nothing, "not required, and not enrolled"),
        None => match p.grace_until {
            Some(until) if s.now < until => (
                Need::Grace(until),
                "required but not enrolled: allowed with a warning until the grace ends",
            ),
            _ => (
                Need::Refuse,
                "required but not enrolled: asked for a code, then refused",
            ),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(confirmed: bool) -> TotpRecord {
        TotpRecord {
            secret: vec![1; 20],
            confirmed,
            created: Time(0),
            last_step: 0,
            salt: vec![2; 16],
            recovery: Vec::new(),
            remembered: vec![("192.0.2.1".into(), Time(5000))],
        }
    }

    fn ask<'a>(
        p: &TotpPolicy,
        user: &'a str,
        rec: Option<&'a TotpRecord>,
        source: &'a str,
        now: u64,
    ) -> Need {
        let groups = vec!["staff".to_string()];
        decide(
            p,
            &Situation {
                user,
                service: "sshd",
                ip: source.parse().ok(),
                source,
                groups: &groups,
                record: rec,
                now: Time(now),
                strict: false,
            },
        )
    }

    #[test]
    fn enrolled_users_are_asked_unless_spared() {
        let mut p = TotpPolicy {
            optional: true,
            ..Default::default()
        };
        let r = record(true);
        assert_eq!(ask(&p, "alice", Some(&r), "203.0.113.1", 0), Need::Code);
        assert_eq!(
            ask(&p, "alice", Some(&r), "192.0.2.1", 1000),
            Need::Nothing,
            "remembered"
        );
        assert_eq!(
            ask(&p, "alice", Some(&r), "192.0.2.1", 6000),
            Need::Code,
            "remember ran out"
        );
        p.trusted_rhosts = vec!["203.0.113.0/24".parse().unwrap()];
        assert_eq!(ask(&p, "alice", Some(&r), "203.0.113.1", 0), Need::Nothing);
        p.services = Some(vec!["sudo".into()]);
        assert_eq!(ask(&p, "alice", Some(&r), "198.51.100.1", 0), Need::Nothing);
        p.services = None;
        p.optional = false;
        assert_eq!(
            ask(&p, "alice", Some(&r), "198.51.100.1", 0),
            Need::Nothing,
            "not required, not optional"
        );
    }

    #[test]
    fn a_strict_situation_is_spared_nothing() {
        let p = TotpPolicy {
            optional: true,
            services: Some(vec!["sudo".into()]),
            trusted_rhosts: vec!["192.0.2.0/24".parse().unwrap()],
            ..Default::default()
        };
        let r = record(true);
        let groups = Vec::new();
        let s = |strict| Situation {
            user: "alice",
            service: "not-sudo",
            ip: "192.0.2.1".parse().ok(),
            source: "192.0.2.1",
            groups: &groups,
            record: Some(&r),
            now: Time(1000),
            strict,
        };
        assert_eq!(decide(&p, &s(false)), Need::Nothing);
        assert_eq!(decide(&p, &s(true)), Need::Code);
    }

    #[test]
    fn unconfirmed_enrollments_are_not_asked() {
        let p = TotpPolicy {
            optional: true,
            ..Default::default()
        };
        assert_eq!(
            ask(&p, "alice", Some(&record(false)), "203.0.113.1", 0),
            Need::Nothing
        );
    }

    #[test]
    fn required_but_not_enrolled_is_refused_after_the_grace() {
        let mut p = TotpPolicy {
            required_for_groups: vec!["staff".into()],
            ..Default::default()
        };
        assert_eq!(ask(&p, "bob", None, "203.0.113.1", 0), Need::Refuse);
        p.grace_until = Some(Time(100));
        assert_eq!(
            ask(&p, "bob", None, "203.0.113.1", 50),
            Need::Grace(Time(100))
        );
        assert_eq!(ask(&p, "bob", None, "203.0.113.1", 100), Need::Refuse);
        p.required_for_groups.clear();
        p.required_for_users = vec!["bob".into()];
        assert_eq!(
            ask(&p, "bob", Some(&record(false)), "203.0.113.1", 150),
            Need::Refuse
        );
    }
}
