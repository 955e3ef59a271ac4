//! Warnings about a configuration that is valid but may not do what its admin
//! thinks, found by checking it against the system: a rule scoped to a PAM
//! service that does not exist here (Debian's is `sshd`, not `ssh`), a group
//! or user that no account database knows. Each names the file, line and key.

use super::ConfigError;
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

/// What the checks need to know of the system; the daemon asks the real one
/// (`crate::accounts::LiveSystem`), tests a fake.
pub trait SystemFacts {
    fn pam_service_exists(&self, name: &str) -> bool;
    fn group_exists(&self, name: &str) -> bool;
    fn user_exists(&self, name: &str) -> bool;
}

/// Only the values the checks look at, with their places in the file. The
/// file has already been validated, so nothing else needs reading here.
#[derive(Deserialize)]
struct Loose {
    admin_group: Option<Spanned<String>>,
    #[serde(default)]
    rule: Vec<LooseRule>,
    totp: Option<LooseTotp>,
}

#[derive(Deserialize)]
struct LooseRule {
    services: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    exclude_users: Vec<Spanned<String>>,
    #[serde(default)]
    exclude_groups: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
struct LooseTotp {
    services: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    required_for_groups: Vec<Spanned<String>>,
    #[serde(default)]
    required_for_users: Vec<Spanned<String>>,
}

/// The warnings for a file that parsed, as `file:line: key: warning: ...`.
pub fn lint(path: &Path, text: &str, facts: &dyn SystemFacts) -> Vec<String> {
    let Ok(loose) = toml::from_str::<Loose>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let at = |span: std::ops::Range<usize>, message: String| {
        ConfigError::at(path, text, Some(span), None, format!("warning: {message}")).to_string()
    };
    let service = |s: &Spanned<String>, what: &str| -> Option<String> {
        let name = s.get_ref();
        (!facts.pam_service_exists(name)).then(|| {
            let hint = if name == "ssh" {
                " (Debian's is \"sshd\")"
            } else {
                ""
            };
            format!("no PAM service \"{name}\" here{hint}: {what} never applies to it")
        })
    };
    for rule in &loose.rule {
        for s in rule.services.iter().flatten() {
            if let Some(m) = service(s, "this rule") {
                out.push(at(s.span(), m));
            }
        }
        // A typo here switches a rule off for the people it was meant for,
        // or leaves on it those it was meant to spare.
        for (list, what) in [
            (&rule.groups, "this rule applies to no one through it"),
            (&rule.exclude_groups, "it spares no one"),
        ] {
            for g in list.iter().filter(|g| !facts.group_exists(g.get_ref())) {
                let m = format!("the group \"{}\" does not exist: {what}", g.get_ref());
                out.push(at(g.span(), m));
            }
        }
        for u in rule
            .users
            .iter()
            .chain(&rule.exclude_users)
            .filter(|u| !facts.user_exists(u.get_ref()))
        {
            out.push(at(
                u.span(),
                format!("\"{}\" is no account here", u.get_ref()),
            ));
        }
    }
    let group = loose
        .admin_group
        .as_ref()
        .map_or(super::DEFAULT_ADMIN_GROUP, |g| g.get_ref().as_str());
    if !facts.group_exists(group) {
        let m = format!(
            "the group \"{group}\" does not exist: only root can use wardenctl's admin commands until it does"
        );
        match &loose.admin_group {
            Some(g) => out.push(at(g.span(), m)),
            // Not in the file: the default, which has no line to name.
            None => out.push(format!(
                "{}: admin_group (default): warning: {m}",
                path.display()
            )),
        }
    }
    if let Some(t) = &loose.totp {
        for s in t.services.iter().flatten() {
            if let Some(m) = service(s, "the code policy") {
                out.push(at(s.span(), m));
            }
        }
        for g in &t.required_for_groups {
            if !facts.group_exists(g.get_ref()) {
                out.push(at(
                    g.span(),
                    format!(
                        "the group \"{}\" does not exist: no one is required to give a code through it",
                        g.get_ref()
                    ),
                ));
            }
        }
        for u in &t.required_for_users {
            if !facts.user_exists(u.get_ref()) {
                out.push(at(
                    u.span(),
                    format!("\"{}\" is no account here", u.get_ref()),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl SystemFacts for Fake {
        fn pam_service_exists(&self, name: &str) -> bool {
            ["sshd", "sudo"].contains(&name)
        }
        fn group_exists(&self, name: &str) -> bool {
            name == "wheel"
        }
        fn user_exists(&self, name: &str) -> bool {
            name == "alice"
        }
    }

    #[test]
    fn warnings_name_file_line_and_key() {
        let text = "admin_group = \"wheel\"\n\n[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"1h\"\nlockout = \"1h\"\nservices = [\"sshd\", \"ssh\"]\n\n[totp]\nrequired_for_groups = [\"admins\"]\nrequired_for_users = [\"alice\", \"bob\"]\n";
        let w = lint(Path::new("/etc/warden/warden.toml"), text, &Fake);
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].starts_with("/etc/warden/warden.toml:9: rule[1].services: warning: no PAM service \"ssh\" here (Debian's is \"sshd\")"), "{}", w[0]);
        assert!(w[1].starts_with("/etc/warden/warden.toml:12: totp.required_for_groups: warning: the group \"admins\""), "{}", w[1]);
        assert!(w[2].starts_with("/etc/warden/warden.toml:13: totp.required_for_users: warning: \"bob\" is no account"), "{}", w[2]);
    }

    #[test]
    fn a_typo_in_a_rules_scope_is_named() {
        let text = "admin_group = \"wheel\"\n[[rule]]\nname = \"u\"\ntrack = [\"user\"]\nlimit = 3\nwindow = \"1h\"\nlockout = \"1h\"\ngroups = [\"wheel\", \"sudoers\"]\nexclude_users = [\"alice\", \"ci\"]\n";
        let w = lint(Path::new("w.toml"), text, &Fake);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(w[0].starts_with("w.toml:8: rule[1].groups: warning: the group \"sudoers\" does not exist: this rule applies to no one"), "{}", w[0]);
        assert!(
            w[1].starts_with("w.toml:9: rule[1].exclude_users: warning: \"ci\" is no account"),
            "{}",
            w[1]
        );
    }

    #[test]
    fn a_missing_default_admin_group_is_named() {
        let w = lint(Path::new("w.toml"), "", &Fake);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("w.toml: admin_group (default): warning: the group \"warden-admin\""),
            "{}",
            w[0]
        );
    }
}
