//! `wardenctl doctor`: reads a PAM directory and says, per service, whether
//! pam_warden is wired completely, partly or not at all, and which of its
//! arguments the module would refuse.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use warden_proto::args::{Mode, Options};

/// One line of a PAM file, as far as the doctor cares.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Line {
    /// `type control module args...`
    Module {
        kind: String,
        module: String,
        args: Vec<String>,
    },
    /// `@include file` (all types) or `type include|substack file`.
    Include { kind: Option<String>, file: String },
}

/// What a service's stack does with pam_warden.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub service: String,
    /// `complete`, `partial` or `none`.
    pub wiring: &'static str,
    /// What is missing or wrong, in words.
    pub problems: Vec<String>,
    /// Whether the account line is there (it allows unless enforce_in_account).
    pub account: bool,
}

impl Report {
    pub fn is_bad(&self) -> bool {
        self.wiring == "partial" || !self.problems.is_empty()
    }
}

/// Splits a line into words, keeping a bracketed control (`[success=1 default=bad]`)
/// as one.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(file) = line.strip_prefix("@include") {
            out.push(Line::Include {
                kind: None,
                file: file.trim().to_string(),
            });
            continue;
        }
        let w = words(line);
        let (Some(kind), Some(control)) = (w.first(), w.get(1)) else {
            continue;
        };
        let kind = kind.trim_start_matches('-').to_string();
        if control == "include" || control == "substack" {
            if let Some(file) = w.get(2) {
                out.push(Line::Include {
                    kind: Some(kind),
                    file: file.clone(),
                });
            }
            continue;
        }
        if let Some(module) = w.get(2) {
            out.push(Line::Module {
                kind,
                module: module.clone(),
                args: w[3..].to_vec(),
            });
        }
    }
    out
}

/// The module lines of `file` for `kind` (all kinds when `None`), includes
/// expanded, in order.
fn expand(
    files: &BTreeMap<String, Vec<Line>>,
    file: &str,
    kind: Option<&str>,
    depth: usize,
) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let Some(lines) = files.get(file) else {
        return out;
    };
    if depth > 16 {
        return out;
    }
    for line in lines {
        match line {
            Line::Module {
                kind: k,
                module,
                args,
            } if kind.is_none_or(|want| want == k) => {
                out.push((k.clone(), module.clone(), args.clone()));
            }
            Line::Include { kind: k, file } => {
                let want = k.as_deref().or(kind);
                if kind.is_some() && k.is_some() && k.as_deref() != kind {
                    continue;
                }
                out.extend(expand(files, file, want, depth + 1));
            }
            Line::Module { .. } => {}
        }
    }
    out
}

/// The installed module, or the build's `libpam_warden.so` named by path.
fn is_warden(module: &str) -> bool {
    Path::new(module)
        .file_name()
        .is_some_and(|n| n == "pam_warden.so" || n == "libpam_warden.so")
}

/// Reports on every service of a PAM directory given as `name -> text`. A
/// file that other files include is a piece of stacks, not a service.
pub fn diagnose(texts: &BTreeMap<String, String>) -> Vec<Report> {
    let files: BTreeMap<String, Vec<Line>> = texts
        .iter()
        .map(|(name, text)| (name.clone(), parse(text)))
        .collect();
    let included: BTreeSet<&str> = files
        .values()
        .flatten()
        .filter_map(|l| match l {
            Line::Include { file, .. } => Some(file.as_str()),
            Line::Module { .. } => None,
        })
        .collect();
    files
        .keys()
        .filter(|name| !included.contains(name.as_str()))
        .map(|service| report(&files, service))
        .collect()
}

fn report(files: &BTreeMap<String, Vec<Line>>, service: &str) -> Report {
    let lines = expand(files, service, None, 0);
    let mut problems = Vec::new();
    let mut modes: Vec<Mode> = Vec::new();
    let mut account = false;
    for (kind, module, args) in lines.iter().filter(|(_, m, _)| is_warden(m)) {
        let opts = Options::parse(args.iter().map(String::as_str));
        for bad in &opts.unknown {
            problems.push(format!(
                "{kind} line has an argument the module refuses: \"{bad}\" (every login through it fails)"
            ));
        }
        match (kind.as_str(), opts.mode) {
            ("auth", Some(m)) => modes.push(m),
            ("auth", None) => problems.push(format!(
                "auth line {module} has no phase: add preauth, authfail or authsucc"
            )),
            ("account", _) => account = true,
            _ => {}
        }
    }
    let want = [
        (Mode::Preauth, "preauth"),
        (Mode::Authfail, "authfail"),
        (Mode::Authsucc, "authsucc"),
    ];
    let missing: Vec<&str> = want
        .iter()
        .filter(|(m, _)| !modes.contains(m))
        .map(|(_, n)| *n)
        .collect();
    let wiring = if modes.is_empty() {
        "none"
    } else if missing.is_empty() {
        "complete"
    } else {
        "partial"
    };
    if wiring == "partial" {
        problems.push(format!(
            "no {} line: {}",
            missing.join(" or "),
            if missing.contains(&"authfail") || missing.contains(&"authsucc") {
                "attempts begin and never report how they end"
            } else {
                "nothing reserves a place before the password check"
            }
        ));
    }
    let pos = |m: Mode| modes.iter().position(|x| *x == m);
    if let (Some(p), Some(f)) = (pos(Mode::Preauth), pos(Mode::Authfail)) {
        if p > f {
            problems.push("preauth comes after authfail; it must come first".into());
        }
    }
    Report {
        service: service.to_string(),
        wiring,
        problems,
        account,
    }
}

/// Reads every regular file of `dir`.
pub fn read_dir(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let (Some(name), Ok(text)) = (
            entry.file_name().to_str().map(str::to_string),
            std::fs::read_to_string(entry.path()),
        ) {
            out.insert(name, text);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    const COMMON_AUTH: &str = "auth requisite pam_warden.so preauth\n\
        auth [success=2 default=ignore] pam_unix.so nullok\n\
        auth [default=die] pam_warden.so authfail\n\
        auth requisite pam_deny.so\n\
        auth required pam_permit.so\n\
        auth required pam_warden.so authsucc\n";

    #[test]
    fn debian_includes_are_followed() {
        let r = diagnose(&dir(&[
            ("common-auth", COMMON_AUTH),
            ("common-account", "account required pam_warden.so\n"),
            ("sshd", "@include common-auth\n@include common-account\n"),
            (
                "login",
                "auth requisite pam_warden.so preauth\n@include common-account\n",
            ),
            ("cron", "account required pam_unix.so\n"),
        ]));
        let by: BTreeMap<&str, &Report> = r.iter().map(|r| (r.service.as_str(), r)).collect();
        assert_eq!(
            by.keys().copied().collect::<Vec<_>>(),
            ["cron", "login", "sshd"]
        );
        assert_eq!(by["sshd"].wiring, "complete");
        assert!(by["sshd"].account && by["sshd"].problems.is_empty());
        assert_eq!(by["login"].wiring, "partial");
        assert!(
            by["login"].problems[0].contains("authfail or authsucc"),
            "{:?}",
            by["login"]
        );
        assert_eq!(by["cron"].wiring, "none");
    }

    #[test]
    fn fedora_includes_take_their_own_type() {
        let r = diagnose(&dir(&[
            ("system-auth", &COMMON_AUTH.replace("auth ", "auth        ")),
            (
                "sudo",
                "auth include system-auth\naccount include system-auth\n",
            ),
            ("su", "-auth substack system-auth\n"),
        ]));
        assert!(r.iter().all(|r| r.wiring == "complete"), "{r:?}");
    }

    #[test]
    fn arguments_the_module_refuses_are_named() {
        let r = diagnose(&dir(&[(
            "sshd",
            &COMMON_AUTH.replace("preauth", "preauth on_unavailable=Deny"),
        )]));
        assert!(r[0].is_bad());
        assert!(r[0].problems[0].contains("on_unavailable=Deny"), "{r:?}");
        let r = diagnose(&dir(&[(
            "sshd",
            &COMMON_AUTH.replace("preauth", "preuath"),
        )]));
        assert_eq!(r[0].wiring, "partial");
        assert!(r[0].problems.iter().any(|p| p.contains("preuath")));
    }
}
