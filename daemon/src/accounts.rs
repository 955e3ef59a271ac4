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
