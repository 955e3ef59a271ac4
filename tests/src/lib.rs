//! The harness for warden's end-to-end tests and demo: a real wardend, real
//! libpam through a private PAM directory, real sshd, real users.

pub mod bus;
pub mod client;
pub mod daemon;
pub mod disk;
pub mod guest;
pub mod libpam;
pub mod netns;
pub mod pam;
pub mod paths;
pub mod redis;
pub mod sshd;
pub mod system;
pub mod totp;
pub mod users;

/// True when running as root; otherwise prints why the caller skips.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    println!("SKIP {test}: needs root (it creates users, runs sshd or writes /etc/pam.d); CI runs as root");
    false
}

/// A name unique to this process and call, for users and PAM services.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A finished command's stdout and stderr, one after the other.
pub fn joined(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A command that runs as `uid` (its own group, no others), via setpriv.
pub fn as_uid(uid: u32, program: &std::path::Path) -> std::process::Command {
    let gid = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or(65534, |u| u.gid.as_raw());
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid",
        &uid.to_string(),
        "--regid",
        &gid.to_string(),
        "--clear-groups",
        "--",
    ])
    .arg(program);
    c
}

/// Runs a command to the end: whether it succeeded, and all it printed.
pub fn run(cmd: &mut std::process::Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (out.status.success(), joined(&out))
}
