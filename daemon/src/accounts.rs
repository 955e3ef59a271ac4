//! Account database lookups (NSS). Blocking: call them off the runtime.

use nix::unistd::{getgrouplist, Gid, Group, User};
use std::ffi::CString;

/// The names of every group the user belongs to, primary included; empty for
/// a name that is no account.
pub fn groups_of(user: &str) -> Vec<String> {
    let (Ok(Some(u)), Ok(name)) = (User::from_name(user), CString::new(user)) else {
        return Vec::new();
    };
    let gids: Vec<Gid> = getgrouplist(&name, u.gid).unwrap_or_else(|_| vec![u.gid]);
    gids.into_iter()
        .filter_map(|g| Group::from_gid(g).ok().flatten())
        .map(|g| g.name)
        .collect()
}

/// The names of the user's groups for a rule's scope: empty for a name that
/// is no account (as for an account in no group, so that no one can tell
/// which exist); `None` when the account database could not say (sssd down),
/// which a scope reads strictly.
pub fn groups_checked(user: &str) -> Option<Vec<String>> {
    use nix::errno::Errno;
    let Ok(name) = CString::new(user) else {
        return Some(Vec::new());
    };
    let u = match User::from_name(user) {
        Ok(Some(u)) => u,
        // getpwnam_r(3): each of these also means "not found".
        Ok(None) | Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => {
            return Some(Vec::new())
        }
        Err(_) => return None,
    };
    let gids = getgrouplist(&name, u.gid).ok()?;
    let mut names = Vec::with_capacity(gids.len());
    for g in gids {
        names.push(Group::from_gid(g).ok()??.name);
    }
    Some(names)
}

/// The running system, for the config checks: /etc/pam.d (or another
/// directory) and the account database.
pub struct LiveSystem {
    pub pam_dir: std::path::PathBuf,
}

impl crate::config::SystemFacts for LiveSystem {
    fn pam_service_exists(&self, name: &str) -> bool {
        !name.contains('/') && self.pam_dir.join(name).is_file()
    }

    fn group_exists(&self, name: &str) -> bool {
        matches!(Group::from_name(name), Ok(Some(_)))
    }

    fn user_exists(&self, name: &str) -> bool {
        matches!(User::from_name(name), Ok(Some(_)))
    }
}
