//! What a refused user reads, in their language and in the admin's words:
//! the shipped catalogues (po/*.po, compiled with msgfmt) through glibc's
//! gettext, for a de_DE.UTF-8 locale the test builds with localedef, set by
//! the PAM application as sudo and su set theirs; `[messages]` templates with
//! their placeholders; and the same words for a name that is no account.

use std::path::{Path, PathBuf};
use std::process::Command;
use warden_e2e::daemon::{user_rule, Daemon, NO_FAMILIAR};
use warden_e2e::pam::PamDir;
use warden_e2e::{paths, run};

/// The shipped catalogues compiled, and a German locale, under `dir`.
fn catalogues_and_locale(dir: &Path) -> (PathBuf, PathBuf) {
    let mo = dir.join("mo");
    for lang in ["de", "fr"] {
        let out = mo.join(lang).join("LC_MESSAGES");
        std::fs::create_dir_all(&out).unwrap();
        let (ok, text) = run(Command::new("msgfmt")
            .arg("--check")
            .arg("-o")
            .arg(out.join("warden.mo"))
            .arg(paths::repo_file(&format!("po/{lang}.po"))));
        assert!(ok, "msgfmt {lang}: {text}");
    }
    let loc = dir.join("locale");
    std::fs::create_dir_all(&loc).unwrap();
    let (ok, text) = run(Command::new("localedef")
        .args(["-i", "de_DE", "-f", "UTF-8"])
        .arg(loc.join("de_DE.UTF-8")));
    // localedef warns (exit 1) about things that do not stop the locale.
    assert!(
        ok || loc.join("de_DE.UTF-8/LC_MESSAGES").exists(),
        "localedef: {text}"
    );
    (mo, loc)
}

fn start(extra: &str, loc: &Path) -> Daemon {
    Daemon::start_with_env(
        &format!("{NO_FAMILIAR}{}{extra}", user_rule(2, "1h", "15m")),
        &[("LOCPATH", loc.to_str().unwrap())],
    )
}

#[test]
fn refusals_speak_the_applications_language() {
    let dir = tempfile::tempdir().unwrap();
    let (mo, loc) = catalogues_and_locale(dir.path());
    let d = start(
        &format!("[messages]\ncatalogs = \"{}\"\n", mo.display()),
        &loc,
    );
    let pam = PamDir::new(&d.socket, "0", "");
    let ghost = "wmsg-no-such-account";
    for user in ["alice", ghost] {
        for _ in 0..2 {
            pam.wrong_in("de_DE.UTF-8", &loc, user);
        }
        let o = pam.wrong_in("de_DE.UTF-8", &loc, user);
        assert_eq!(
            o.messages,
            ["Zu viele fehlgeschlagene Versuche. Versuchen Sie es in 15 Minuten erneut."],
            "{user}: {o:?}"
        );
    }
    // The C locale, as sshd runs: English.
    let o = pam.attempt("alice", "right", None);
    assert_eq!(
        o.messages,
        ["Too many failed attempts. Try again in 15 minutes."]
    );
    // A locale name a request makes up is never a path: English.
    let out = d.request(&["begin", "alice", "--locale", "../../../tmp/x"]);
    assert!(out.contains("Too many failed attempts."), "{out}");
}

#[test]
fn an_admins_words_fill_their_placeholders_in_the_users_language() {
    let dir = tempfile::tempdir().unwrap();
    let (mo, loc) = catalogues_and_locale(dir.path());
    let d = start(
        &format!(
            "[messages]\ncatalogs = \"{}\"\ncontact = \"+49 30 1234\"\nlocked = \"Gesperrt ({{time_left}}). {{try_again}} Hilfe: {{contact}}\"\n",
            mo.display()
        ),
        &loc,
    );
    let pam = PamDir::new(&d.socket, "0", "");
    for _ in 0..2 {
        pam.wrong_in("de_DE.UTF-8", &loc, "bob");
    }
    let o = pam.wrong_in("de_DE.UTF-8", &loc, "bob");
    assert_eq!(
        o.messages,
        ["Gesperrt (15 Minuten). Versuchen Sie es in 15 Minuten erneut. Hilfe: +49 30 1234"],
        "{o:?}"
    );
    let o = pam.attempt("bob", "right", None);
    assert_eq!(
        o.messages,
        ["Gesperrt (15 minutes). Try again in 15 minutes. Hilfe: +49 30 1234"]
    );
}
