//! The man pages and completions: wardenctl(8) and wardend(8) come from their
//! clap definitions, pam_warden(8) and warden.toml(5) from docs/man; every
//! page renders without a warning and has the sections an admin looks for.

use std::path::{Path, PathBuf};
use std::process::Command;
use warden_e2e::paths;

fn pages(dir: &Path) -> Vec<PathBuf> {
    let status = Command::new(paths::wardenctl())
        .arg("generate-docs")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(paths::wardend())
        .arg("--man")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(dir.join("wardend.8"), out.stdout).unwrap();
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man");
    vec![
        dir.join("wardenctl.8"),
        dir.join("wardend.8"),
        man.join("pam_warden.8"),
        man.join("warden.toml.5"),
    ]
}

#[test]
fn man_page_and_completions_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    pages(dir.path());
    let man = std::fs::read_to_string(dir.path().join("wardenctl.8")).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH wardenctl"),
        "{man}"
    );
    for sub in [
        "status",
        "locks",
        "failures",
        "unlock",
        "lock",
        "watch",
        "config",
        "explain",
        "history",
        "rhost-status",
    ] {
        // roff writes a hyphen as \-.
        let roff = sub.replace('-', "\\-");
        assert!(man.contains(&roff), "the man page lacks {sub}");
    }
    let bash = std::fs::read_to_string(dir.path().join("wardenctl.bash")).unwrap();
    assert!(bash.contains("--rhost") && bash.contains("--permanent"));
    assert!(dir.path().join("_wardenctl").exists() && dir.path().join("wardenctl.fish").exists());
}

#[test]
fn every_man_page_renders_cleanly_with_its_sections() {
    let dir = tempfile::tempdir().unwrap();
    for page in pages(dir.path()) {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", page.display());
        assert!(
            stderr.trim().is_empty(),
            "{}: warnings:\n{stderr}",
            page.display()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for section in ["EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"] {
            assert!(text.contains(section), "{} lacks {section}", page.display());
        }
    }
}
