//! Files of the host's own that a test must change (a real sudo reads only
//! /etc/pam.d/sudo and /etc/sudoers.d), put back as they were when dropped,
//! even when the test fails.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

pub struct Restore {
    path: PathBuf,
    before: Option<Vec<u8>>,
}

impl Restore {
    /// Writes `content` to `path` with `mode`, remembering what was there.
    pub fn write(path: &str, content: &str, mode: u32) -> Restore {
        let path = PathBuf::from(path);
        let before = std::fs::read(&path).ok();
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        Restore { path, before }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = match &self.before {
            Some(b) => std::fs::write(&self.path, b),
            None => std::fs::remove_file(&self.path),
        };
    }
}

/// A sudoers.d entry letting `user` run anything, one password try per run.
pub fn sudoers_for(user: &str) -> Restore {
    Restore::write(
        &format!("/etc/sudoers.d/{}", crate::unique("warden-test-")),
        &format!("{user} ALL=(ALL) ALL\nDefaults:{user} passwd_tries=1, !lecture\n"),
        0o440,
    )
}

/// Runs `sudo -S -k true` as `user`, typing `password` once.
pub fn sudo(user: &str, password: &str) -> (bool, String) {
    crate::run(std::process::Command::new("sh").arg("-c").arg(format!(
        "printf '%s\\n' '{password}' | runuser -u {user} -- sudo -S -k -p 'password: ' true"
    )))
}
