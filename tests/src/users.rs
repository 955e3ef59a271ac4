//! Throwaway local users, removed when dropped.

use std::io::Write;
use std::process::{Command, Stdio};

pub struct TestUser {
    pub name: String,
    pub uid: u32,
}

impl TestUser {
    pub fn create(name: &str, password: &str) -> TestUser {
        let _ = Command::new("userdel").arg(name).output();
        let ok = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "useradd {name} failed");
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("chpasswd: {e}"));
        if let Some(stdin) = chpasswd.stdin.as_mut() {
            let _ = writeln!(stdin, "{name}:{password}");
        }
        assert!(
            chpasswd.wait().is_ok_and(|s| s.success()),
            "chpasswd failed"
        );
        let uid = nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
            .unwrap_or_else(|| panic!("{name} has no uid"));
        TestUser {
            name: name.to_string(),
            uid,
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// A throwaway local group, removed when dropped.
pub struct TestGroup {
    pub name: String,
}

impl TestGroup {
    pub fn create(name: &str, members: &[&str]) -> TestGroup {
        let _ = Command::new("groupdel").arg(name).output();
        let ok = Command::new("groupadd")
            .arg(name)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "groupadd {name} failed");
        let g = TestGroup {
            name: name.to_string(),
        };
        for m in members {
            g.add(m);
        }
        g
    }

    /// Makes `user` a member, as `usermod -aG` does.
    pub fn add(&self, user: &str) {
        let ok = Command::new("usermod")
            .args(["-aG", &self.name, user])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "usermod -aG {} {user} failed", self.name);
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}
