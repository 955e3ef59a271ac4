//! Who may call what: root and members of `admin_group` may do everything;
//! anyone may read their own status.

use nix::unistd::{Group, Uid, User};

/// The caller's name and whether they are an admin, from the account database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub name: Option<String>,
    pub admin: bool,
}

impl Caller {
    /// Blocking NSS lookups: call it off the runtime's worker threads.
    pub fn lookup(uid: u32, admin_group: &str) -> Caller {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let group = Group::from_name(admin_group).ok().flatten();
        let admin = uid == 0
            || match (&user, &group) {
                (Some(u), Some(g)) => u.gid == g.gid || g.mem.contains(&u.name),
                _ => false,
            };
        Caller {
            uid,
            name: user.map(|u| u.name),
            admin,
        }
    }

    pub fn may_read_user(&self, user: &str) -> bool {
        self.admin || self.name.as_deref() == Some(user)
    }
}
