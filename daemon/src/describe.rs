//! The effective configuration in words and an aligned table, as printed by
//! `wardend --check-config`.

use crate::config::{Config, Lockout};
use crate::time::format_duration;
use std::fmt::Write as _;

pub fn describe(c: &Config) -> String {
    let p = &c.policy;
    let mut out = String::new();
    let _ = writeln!(out, "{}: ok", c.path.display());
    let _ = writeln!(out, "socket     {}", c.socket.display());
    let _ = writeln!(out, "root only  {}", c.root_socket.display());
    let _ = writeln!(out, "state_dir  {}", c.state_dir.display());
    let _ = writeln!(out, "admins     root and group {}", c.admin_group);
    let _ = writeln!(out);
    let header = [
        "RULE", "TRACK", "LIMIT", "WINDOW", "LOCKOUT", "ESCALATE", "MAX", "SERVICES", "USERS",
        "MODE",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in &p.rules {
        let track: Vec<&str> = r.track.iter().map(|f| f.name()).collect();
        let (lockout, max) = match r.lockout {
            Lockout::For(d) => (format_duration(d), format_duration(r.max_lockout)),
            Lockout::Permanent => ("permanent".into(), "-".into()),
        };
        rows.push(vec![
            r.name.clone(),
            track.join("+"),
            r.limit.to_string(),
            format_duration(r.window),
            lockout,
            if r.escalate > 1.0 {
                format!("x{}", r.escalate)
            } else {
                "-".into()
            },
            max,
            r.services.as_ref().map_or("all".into(), |s| s.join(",")),
            r.scope.describe(),
            if r.observe { "observe" } else { "enforce" }.into(),
        ]);
    }
    out.push_str(&table(&rows));
    if p.rules.is_empty() {
        let _ = writeln!(out, "(no rules: nothing will ever be locked)");
    }
    let observing = p.observing();
    if p.observe {
        let _ = writeln!(
            out,
            "OBSERVE MODE: nothing is refused but admin locks; the log says would-lock and would-refuse"
        );
    } else if !observing.is_empty() {
        let _ = writeln!(
            out,
            "observe mode for rule {}: its locks refuse no one",
            observing.join(", ")
        );
    }
    let _ = writeln!(out);
    let onoff = |b: bool| if b { "on" } else { "off" };
    let _ = writeln!(
        out,
        "attempt_timeout                 {}",
        format_duration(p.attempt_timeout)
    );
    let _ = writeln!(
        out,
        "escalation_memory               {}",
        format_duration(p.escalation_memory)
    );
    let _ = writeln!(
        out,
        "reset_on_success                {}",
        onoff(p.reset_on_success)
    );
    let _ = writeln!(
        out,
        "extend_on_failure_while_locked  {}",
        onoff(p.extend_on_failure_while_locked)
    );
    let _ = writeln!(
        out,
        "lock_root                       {}",
        onoff(p.lock_root)
    );
    let _ = writeln!(
        out,
        "rhost prefixes                  IPv4 /{}, IPv6 /{}",
        p.ipv4_prefix, p.ipv6_prefix
    );
    let familiar = if p.familiar_enabled {
        format!("on, remembered {}", format_duration(p.familiar_remember))
    } else {
        "off".into()
    };
    let _ = writeln!(out, "familiar sources                {familiar}");
    let _ = writeln!(
        out,
        "max_tracked_keys                {}",
        p.max_tracked_keys
    );
    let _ = writeln!(
        out,
        "max_keys_per_user               {}",
        p.max_keys_per_user
    );
    let _ = writeln!(
        out,
        "attempts in flight              at most {}, {} per unprivileged uid",
        p.max_attempts_in_flight, p.max_attempts_per_uid
    );
    let aggregate = match &p.aggregate {
        Some(a) => format!(
            "{} locks inside one IPv4 /{} or IPv6 /{} lock it for {}",
            a.locks,
            a.ipv4_prefix,
            a.ipv6_prefix,
            match a.rule.lockout {
                Lockout::For(d) => format_duration(d),
                Lockout::Permanent => "ever".into(),
            }
        ),
        None => "off".into(),
    };
    let _ = writeln!(out, "prefix locks                    {aggregate}");
    let names = match (c.users.fold_case, c.users.strip_realms.is_empty()) {
        (false, true) => "as given".to_string(),
        (fold, _) => format!(
            "{}{}",
            if fold { "case folded" } else { "case kept" },
            if c.users.strip_realms.is_empty() {
                String::new()
            } else {
                format!(", @realm stripped for {}", c.users.strip_realms.join(", "))
            }
        ),
    };
    let _ = writeln!(out, "user names                      {names}");
    let _ = writeln!(
        out,
        "wrong codes                     count in every rule that tracks user, and 5 in 15m lock the user everywhere (rule \"code\")"
    );
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    let _ = writeln!(
        out,
        "allow users                     {}",
        list(p.allow_users.clone())
    );
    let _ = writeln!(
        out,
        "allow rhosts                    {}",
        list(p.allow_rhosts.iter().map(|n| n.to_string()).collect())
    );
    let _ = writeln!(
        out,
        "deny rhosts                     {}",
        list(p.deny_rhosts.iter().map(|n| n.to_string()).collect())
    );
    let _ = writeln!(
        out,
        "audit                           {} events, {} per user (the newest {} of each kept longest), {}",
        c.audit.max_events,
        c.audit.max_events_per_user,
        c.audit.min_events_per_user,
        format_duration(c.audit.max_age)
    );
    out.push_str(&totp_policy(&c.totp));
    out
}

/// The code policy in words: who must give a code, where, and who may skip it.
fn totp_policy(t: &crate::config::TotpPolicy) -> String {
    let mut out = String::from("\nsecond factor (TOTP)\n");
    let list = |v: &[String]| v.join(", ");
    let who = match (
        t.required_for_users.is_empty(),
        t.required_for_groups.is_empty(),
    ) {
        (true, true) => "no one".to_string(),
        (false, true) => format!("users {}", list(&t.required_for_users)),
        (true, false) => format!("members of {}", list(&t.required_for_groups)),
        (false, false) => format!(
            "users {} and members of {}",
            list(&t.required_for_users),
            list(&t.required_for_groups)
        ),
    };
    let _ = writeln!(out, "  must give a code                {who}");
    let _ = writeln!(
        out,
        "  enrolled others                 {}",
        if t.optional { "asked too" } else { "not asked" }
    );
    let _ = writeln!(
        out,
        "  where                           {}",
        t.services
            .as_ref()
            .map_or("every PAM service".to_string(), |s| list(s))
    );
    let grace = t.grace_until.map_or("none".to_string(), |g| {
        format!(
            "until {} (not enrolled: let in with a warning)",
            g.minus(std::time::Duration::from_secs(1))
        )
    });
    let _ = writeln!(out, "  grace                           {grace}");
    let trusted: Vec<String> = t.trusted_rhosts.iter().map(|n| n.to_string()).collect();
    let _ = writeln!(
        out,
        "  skipped from                    {}",
        if trusted.is_empty() {
            "nowhere".to_string()
        } else {
            list(&trusted)
        }
    );
    let _ = writeln!(
        out,
        "  remembered after a good code    {}",
        t.remember.map_or("never".to_string(), |d| format!(
            "{} per source",
            format_duration(d)
        ))
    );
    let _ = writeln!(
        out,
        "  self-enrollment                 {}",
        if t.self_enroll {
            "allowed"
        } else {
            "admins only"
        }
    );
    let _ = writeln!(
        out,
        "  unprivileged callers            always asked, never remembered"
    );
    out
}

pub use warden_api::text::table;
