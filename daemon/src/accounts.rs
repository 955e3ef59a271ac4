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
