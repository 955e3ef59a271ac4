//! What a peer may do, from its SO_PEERCRED uid.

/// Who is on the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// sshd, sudo, su, login: may report for any user.
    Root,
    /// Anyone else, such as a screen locker: only for their own username.
    User { uid: u32, name: Option<String> },
}

impl Peer {
    /// Looks the uid up in NSS; blocking, so call it off the runtime.
    pub fn lookup(uid: u32) -> Peer {
        if uid == 0 {
            return Peer::Root;
        }
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name);
        Peer::User { uid, name }
    }

    /// Whether this peer may report for `user` (already folded as the config
    /// says, so the peer's own name is folded the same way to compare).
    pub fn may_act_for(&self, user: &str, names: &crate::config::UserNames) -> bool {
        match self {
            Peer::Root => true,
            Peer::User { name, .. } => {
                name.as_deref().map(|n| names.fold(n)).as_deref() == Some(user)
            }
        }
    }

    pub fn origin(&self) -> crate::engine::Origin {
        match self {
            Peer::Root => crate::engine::Origin::Root,
            Peer::User { uid, .. } => crate::engine::Origin::Peer(*uid),
        }
    }

    pub fn is_root(&self) -> bool {
        *self == Peer::Root
    }

    pub fn uid(&self) -> u32 {
        match self {
            Peer::Root => 0,
            Peer::User { uid, .. } => *uid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_act_only_for_themselves() {
        let alice = Peer::User {
            uid: 1000,
            name: Some("alice".into()),
        };
        let same = crate::config::UserNames::default();
        assert!(alice.may_act_for("alice", &same));
        assert!(!alice.may_act_for("bob", &same));
        assert!(!alice.may_act_for("Alice", &same));
        let folded = crate::config::UserNames {
            fold_case: true,
            strip_realms: vec!["EXAMPLE.COM".into()],
        };
        assert!(alice.may_act_for(&folded.fold("Alice@example.com"), &folded));
        let nameless = Peer::User {
            uid: 4242,
            name: None,
        };
        assert!(!nameless.may_act_for("", &same));
        assert!(Peer::Root.may_act_for("bob", &same));
    }
}
