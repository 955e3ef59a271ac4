//! The man page and completions come from the clap definition.

use std::process::Command;
use warden_e2e::paths;

#[test]
fn man_page_and_completions_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(paths::wardenctl())
        .arg("generate-docs")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let man = std::fs::read_to_string(dir.path().join("wardenctl.1")).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH wardenctl"),
        "{man}"
    );
    for sub in [
        "status", "locks", "failures", "unlock", "lock", "watch", "config",
    ] {
        assert!(man.contains(sub), "the man page lacks {sub}");
    }
    let bash = std::fs::read_to_string(dir.path().join("wardenctl.bash")).unwrap();
    assert!(bash.contains("--rhost") && bash.contains("--permanent"));
    assert!(dir.path().join("_wardenctl").exists() && dir.path().join("wardenctl.fish").exists());
}
