//! Which users a rule applies to: `users`, `groups`, `exclude_users` and
//! `exclude_groups` on a `[[rule]]`. Pure: the account database is read by
//! the service, and its answer handed in.

/// Everyone by default.
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct UserScope {
    /// Only these users (folded as keys are) and the members of `groups`;
    /// `None` with `groups` also `None`: everyone.
    pub users: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub exclude_users: Vec<String>,
    pub exclude_groups: Vec<String>,
}

impl UserScope {
    /// Whether any of it needs the user's groups.
    pub fn needs_groups(&self) -> bool {
        self.groups.is_some() || !self.exclude_groups.is_empty()
    }

    /// Whether the rule applies to `user`, whose groups are `groups` (`None`:
    /// the account database could not say). Not knowing reads strictly: a
    /// rule for a group applies, and a group's exclusion does not.
    pub fn covers(&self, user: &str, groups: Option<&[String]>) -> bool {
        if self.exclude_users.iter().any(|u| u == user) {
            return false;
        }
        let in_any = |list: &[String], g: &[String]| g.iter().any(|x| list.contains(x));
        if groups.is_some_and(|g| in_any(&self.exclude_groups, g)) {
            return false;
        }
        if self.users.is_none() && self.groups.is_none() {
            return true;
        }
        self.names(user)
            || self
                .groups
                .as_ref()
                .is_some_and(|list| groups.is_none_or(|g| in_any(list, g)))
    }

    /// Whether `users` names this user: an explicit choice, which
    /// `lock_root = false` does not overrule for root.
    pub fn names(&self, user: &str) -> bool {
        self.users
            .as_ref()
            .is_some_and(|list| list.iter().any(|u| u == user))
    }

    /// In words, for `wardend --check-config`: `all`, or what it takes and leaves.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = &self.users {
            parts.push(format!("users={}", u.join(",")));
        }
        if let Some(g) = &self.groups {
            parts.push(format!("groups={}", g.join(",")));
        }
        if !self.exclude_users.is_empty() {
            parts.push(format!("not users={}", self.exclude_users.join(",")));
        }
        if !self.exclude_groups.is_empty() {
            parts.push(format!("not groups={}", self.exclude_groups.join(",")));
        }
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scopes_take_and_leave_users_and_groups() {
        let all = UserScope::default();
        assert!(all.covers("anyone", Some(&[])));
        let sudoers = UserScope {
            groups: Some(v(&["sudo"])),
            users: Some(v(&["root"])),
            exclude_users: v(&["backup"]),
            ..UserScope::default()
        };
        assert!(sudoers.covers("root", Some(&[])));
        assert!(sudoers.covers("alice", Some(&v(&["users", "sudo"]))));
        assert!(!sudoers.covers("bob", Some(&v(&["users"]))));
        assert!(!sudoers.covers("backup", Some(&v(&["sudo"]))));
        // An account database that cannot answer: the group's rule applies.
        assert!(sudoers.covers("carol", None));
        let but_services = UserScope {
            exclude_groups: v(&["svc"]),
            ..UserScope::default()
        };
        assert!(!but_services.covers("ci", Some(&v(&["svc"]))));
        assert!(but_services.covers("alice", Some(&v(&["users"]))));
        // ...and a group's exclusion does not.
        assert!(but_services.covers("ci", None));
        assert_eq!(
            sudoers.describe(),
            "users=root groups=sudo not users=backup"
        );
        assert_eq!(all.describe(), "all");
    }
}
