//! Where the built artefacts are: next to the running test or demo binary.

use std::path::PathBuf;

/// `target/<profile>`, found from the running executable.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

pub fn artefact(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --release --workspace` (make build) first",
        p.display()
    );
    p
}

pub fn wardend() -> PathBuf {
    artefact("wardend")
}

pub fn module() -> PathBuf {
    artefact("libpam_warden.so")
}

pub fn pam_driver() -> PathBuf {
    artefact("pam-driver")
}

pub fn raw_client() -> PathBuf {
    artefact("raw-client")
}

pub fn fake_daemon() -> PathBuf {
    artefact("fake-daemon")
}

pub fn wardenctl() -> PathBuf {
    artefact("wardenctl")
}

/// A file of the repository, such as the shipped D-Bus policy.
pub fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}
