//! One function per command: call wardend, then print a table or JSON.

use crate::cli::{FailuresArgs, HistoryArgs, LockArgs, UnlockArgs};
use crate::client::{connect, CtlError};
use crate::fallback::open;
use crate::human::{relative, short, stamp, table};
use serde::Serialize;
use std::path::Path;
use warden_api::text::{format_duration, parse_duration};
use warden_api::LockEntry;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub fn print_json<T: Serialize>(value: &T) -> Result<(), CtlError> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value).map_err(|e| CtlError::Failed(e.to_string()))?;
    // A reader that stops early (| head) is no error of ours.
    let _ = writeln!(std::io::stdout(), "{text}");
    Ok(())
}

fn duration_secs(text: &str) -> Result<u64, CtlError> {
    parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(CtlError::Failed)
}

pub async fn status(json: bool) -> Result<(), CtlError> {
    let s = open().await?.status().await?;
    if json {
        return print_json(&s);
    }
    let rows = vec![
        vec!["version".into(), s.version.clone()],
        vec!["uptime".into(), short(s.uptime_secs)],
        vec!["keys tracked".into(), s.keys.to_string()],
        vec!["active locks".into(), s.locks.to_string()],
        vec![
            "attempts in flight".into(),
            s.attempts_in_flight.to_string(),
        ],
        vec![
            "store size".into(),
            format!("{} KiB", s.store_bytes.div_ceil(1024)),
        ],
        vec!["config".into(), s.config_path.clone()],
        vec!["socket".into(), s.socket_path.clone()],
        vec![
            "key table".into(),
            if s.table_full {
                format!(
                    "FULL in the last minute ({} of {}); {} keys and {} locks dropped since start",
                    s.keys, s.max_tracked_keys, s.evicted_keys, s.evicted_locks
                )
            } else {
                format!("{} of {}", s.keys, s.max_tracked_keys)
            },
        ],
        vec![
            "refused, too many in flight".into(),
            s.refused_crowded.to_string(),
        ],
    ];
    let mut rows = rows;
    if !s.half_wired_services.is_empty() {
        rows.push(vec![
            "wired by half".into(),
            format!(
                "{} (attempts begin and never end: run wardenctl doctor)",
                s.half_wired_services.join(", ")
            ),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

fn until_text(l: &LockEntry, now: i64) -> String {
    if l.permanent {
        "permanent".into()
    } else {
        relative(l.until, now)
    }
}

pub fn locks_table(locks: &[LockEntry]) -> String {
    let now = now();
    let mut rows = vec![[
        "RULE", "KEY", "FAILURES", "SINCE", "UNTIL", "LOCKOUTS", "BY",
    ]
    .map(String::from)
    .to_vec()];
    for l in locks {
        let mut by = if l.reason.is_empty() {
            l.by.clone()
        } else {
            format!("{} ({})", l.by, l.reason)
        };
        if l.observe {
            by.push_str(" (observe: refuses no one)");
        }
        rows.push(vec![
            l.rule.clone(),
            l.key.clone(),
            l.failures.to_string(),
            relative(l.since, now),
            until_text(l, now),
            l.lockouts.to_string(),
            by,
        ]);
    }
    table(&rows)
}

pub async fn locks(json: bool) -> Result<(), CtlError> {
    let locks = match open().await {
        Ok(d) => d.list_locks().await?,
        Err(e @ CtlError::Unreachable(_)) => crate::fallback::read_store("locks", e)?,
        Err(e) => return Err(e),
    };
    if json {
        return print_json(&locks);
    }
    if locks.is_empty() {
        println!("no active locks");
    } else {
        print!("{}", locks_table(&locks));
    }
    Ok(())
}

pub async fn history(args: HistoryArgs, json: bool) -> Result<(), CtlError> {
    let ago = |d: &Option<String>| -> Result<i64, CtlError> {
        Ok(match d {
            Some(d) => now() - duration_secs(d)? as i64,
            None => 0,
        })
    };
    let kinds: Vec<&str> = args.kind.iter().map(String::as_str).collect();
    let (since, until) = (ago(&args.since)?, ago(&args.until)?);
    let limit = args.limit.unwrap_or(100);
    let list = match open().await {
        Ok(d) => {
            d.list_events(
                args.user.as_deref().unwrap_or(""),
                args.rhost.as_deref().unwrap_or(""),
                args.service.as_deref().unwrap_or(""),
                &kinds,
                since,
                until,
                limit,
            )
            .await?
        }
        Err(e @ CtlError::Unreachable(_)) => {
            // The store's newest events, filtered here as wardend would.
            let all: Vec<warden_api::AuditEntry> = crate::fallback::read_store("history", e)?;
            let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
            all.into_iter()
                .filter(|e| is(&args.user, &e.user) && is(&args.rhost, &e.rhost))
                .filter(|e| is(&args.service, &e.service))
                .filter(|e| kinds.is_empty() || kinds.contains(&e.kind.as_str()))
                .filter(|e| (since == 0 || e.time >= since) && (until == 0 || e.time <= until))
                .take(limit as usize)
                .collect()
        }
        Err(e) => return Err(e),
    };
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("no events");
        return Ok(());
    }
    let now = now();
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let mut rows = vec![
        ["WHEN", "TIME", "KIND", "USER", "RHOST", "SERVICE", "DETAIL"]
            .map(String::from)
            .to_vec(),
    ];
    for e in &list {
        let mut detail = Vec::new();
        if !e.key.is_empty() {
            detail.push(e.key.clone());
        }
        if e.until > 0 {
            detail.push(format!("until {}", stamp(e.until)));
        }
        if !e.by.is_empty() {
            detail.push(format!("by {}", e.by));
        }
        if !e.reason.is_empty() {
            detail.push(format!("({})", e.reason));
        }
        rows.push(vec![
            relative(e.time, now),
            stamp(e.time),
            e.kind.clone(),
            dash(&e.user),
            dash(&e.rhost),
            dash(&e.service),
            detail.join(" "),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

pub async fn failures(args: FailuresArgs, json: bool) -> Result<(), CtlError> {
    let since = match &args.since {
        Some(d) => now() - duration_secs(d)? as i64,
        None => 0,
    };
    let list = open()
        .await?
        .list_events(
            args.user.as_deref().unwrap_or(""),
            args.rhost.as_deref().unwrap_or(""),
            "",
            &["failure", "totp", "abandoned"],
            since,
            0,
            args.limit.unwrap_or(100),
        )
        .await?;
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("no failures");
        return Ok(());
    }
    let now = now();
    let mut rows = vec![["WHEN", "TIME", "USER", "RHOST", "SERVICE", "TTY", "KIND"]
        .map(String::from)
        .to_vec()];
    for f in &list {
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        rows.push(vec![
            relative(f.time, now),
            stamp(f.time),
            f.user.clone(),
            dash(&f.rhost),
            dash(&f.service),
            dash(&f.tty),
            f.kind.clone(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

pub async fn unlock(args: UnlockArgs, json: bool) -> Result<(), CtlError> {
    let user = args.user.as_ref().or(args.user_flag.as_ref());
    let (what, value) = match (user, &args.rhost, &args.key, args.all) {
        (Some(u), _, _, _) => ("user", u.clone()),
        (_, Some(r), _, _) => ("rhost", r.clone()),
        (_, _, Some(k), _) => ("key", k.clone()),
        _ => ("all", String::new()),
    };
    if what == "all" && !args.yes {
        confirm_all()?;
    }
    let (n, lifted) = open().await?.unlock(what, &value).await?;
    if json {
        return print_json(&serde_json::json!({
            "cleared": n,
            "locks_lifted": lifted,
            "was_locked": !lifted.is_empty(),
        }));
    }
    let target = if what == "all" {
        "nothing".to_string()
    } else {
        format!("{what} {value}")
    };
    match (n, lifted.len()) {
        (0, _) => println!("{target} was not locked, and had no failures counted"),
        (n, 0) => println!(
            "{target} was not locked; cleared the failures of {n} key{}",
            if n == 1 { "" } else { "s" }
        ),
        (1, _) => println!("unlocked 1 key"),
        (n, _) => println!("unlocked {n} keys"),
    }
    for key in &lifted {
        println!("  lifted: {key}");
    }
    Ok(())
}

/// `unlock --all` lifts every lock on the host, attackers' included: asked
/// first on a terminal, and refused without --yes anywhere else.
fn confirm_all() -> Result<(), CtlError> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(CtlError::Usage(
            "unlock --all lifts every lock, attackers' too; add --yes to do it without a terminal"
                .into(),
        ));
    }
    print!("Lift every lock and clear every counter, attackers' included? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CtlError::Failed("nothing unlocked".into()))
    }
}

pub async fn lock(args: LockArgs, json: bool) -> Result<(), CtlError> {
    let (what, value) = match (&args.user, &args.rhost) {
        (Some(u), _) => ("user", u.clone()),
        (_, Some(r)) => ("rhost", r.clone()),
        _ => return Err(CtlError::Failed("name a user or --rhost".into())),
    };
    // Permanent only when asked: a zero length is a typo, not "for ever".
    let seconds = match &args.for_ {
        Some(d) => match duration_secs(d)? {
            0 => {
                return Err(CtlError::Failed(format!(
                    "--for {d} is no time at all; give a length such as 30m, or --permanent"
                )))
            }
            n => n,
        },
        None => 0,
    };
    let permanent = args.permanent;
    let key = open()
        .await?
        .lock(what, &value, seconds, permanent, &args.reason)
        .await?;
    if json {
        return print_json(
            &serde_json::json!({ "key": key, "seconds": seconds, "permanent": permanent }),
        );
    }
    let how = if permanent {
        "permanently".to_string()
    } else {
        format!(
            "for {}",
            format_duration(std::time::Duration::from_secs(seconds))
        )
    };
    // What was locked, as the admin named it; `locks` and --json give the whole key.
    let target = key
        .split_once(' ')
        .map_or(key.as_str(), |(_, fields)| fields);
    println!("locked {target} {how}");
    Ok(())
}

pub async fn user_status(user: Option<String>, json: bool) -> Result<(), CtlError> {
    let user = match user {
        Some(u) => u,
        None => nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .ok_or_else(|| CtlError::Failed("cannot tell who you are; name the user".into()))?,
    };
    let s = open().await?.get_user_status(&user).await?;
    if json {
        return print_json(&s);
    }
    if !s.locked {
        println!("{} is not locked ({} recent failures)", s.user, s.failures);
    } else {
        let how_long = if s.permanent {
            "until an admin unlocks".to_string()
        } else {
            format!("for {} more", short(s.seconds_left))
        };
        let scope = match s.scope.as_str() {
            "unfamiliar" => {
                ", from unfamiliar sources only: logins from familiar places go on".to_string()
            }
            "sources" => format!(", from {} only", s.scope_sources.join(", ")),
            _ => ", from everywhere".to_string(),
        };
        println!("{} is locked {how_long}{scope}", s.user);
        print!("{}", locks_table(&s.locks));
    }
    if !s.address_locks.is_empty() {
        println!(
            "{} was refused in the last hour by locks on where they came from:",
            s.user
        );
        print!("{}", locks_table(&s.address_locks));
    }
    Ok(())
}

pub async fn reload(json: bool) -> Result<(), CtlError> {
    let path = connect().await?.reload_config().await?;
    if json {
        return print_json(&serde_json::json!({ "reloaded": path }));
    }
    println!("reloaded {path}");
    Ok(())
}

pub async fn watch(json: bool) -> Result<(), CtlError> {
    use tokio_stream_lite::next;
    let proxy = connect().await?;
    let mut locked = proxy.receive_locked().await?;
    let mut unlocked = proxy.receive_unlocked().await?;
    // On stderr, so that --json output stays one object per line.
    eprintln!("watching lock events; Ctrl-C to stop");
    loop {
        tokio::select! {
            Some(sig) = next(&mut locked) => {
                let a = sig.args()?;
                if json {
                    print_json_line(&serde_json::json!({"event": "locked", "key": a.key(), "rule": a.rule(), "until": a.until()}));
                } else {
                    let until = if *a.until() == 0 { "permanently".to_string() } else { format!("until {} ({})", stamp(*a.until()), relative(*a.until(), now())) };
                    println!("{} locked   {} {until}", stamp(now()), a.key());
                }
            }
            Some(sig) = next(&mut unlocked) => {
                let a = sig.args()?;
                if json {
                    print_json_line(&serde_json::json!({"event": "unlocked", "key": a.key(), "rule": a.rule(), "by": a.by()}));
                } else {
                    println!("{} unlocked {} by {}", stamp(now()), a.key(), a.by());
                }
            }
            else => return Err(CtlError::Unreachable("the bus connection closed".into())),
        }
    }
}

fn print_json_line(v: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Polls a signal stream without pulling in a stream crate.
mod tokio_stream_lite {
    use std::future::poll_fn;
    use std::pin::Pin;

    pub async fn next<S: zbus::export::futures_core::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
    }
}

/// `config check`: wardend's own check, so that both read a file the same
/// way; wardend prints the errors, warnings and the effective rules.
pub fn config_check(file: Option<&Path>, json: bool) -> Result<(), CtlError> {
    let wardend = wardend_path();
    let mut cmd = std::process::Command::new(&wardend);
    cmd.arg("--check-config");
    if let Some(f) = file {
        cmd.arg("--config").arg(f);
    }
    let cannot = |e: std::io::Error| {
        CtlError::Failed(format!(
            "cannot run {}: {e}; is the warden package installed?",
            wardend.display()
        ))
    };
    if json {
        let out = cmd.output().map_err(cannot)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .map(|l| l.strip_prefix("wardend: ").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .collect();
        let (errors, warnings): (Vec<&str>, Vec<&str>) = if out.status.success() {
            (Vec::new(), lines)
        } else {
            (lines, Vec::new())
        };
        print_json(&serde_json::json!({
            "file": file.unwrap_or(Path::new("/etc/warden/warden.toml")),
            "valid": out.status.success(),
            "errors": errors,
            "warnings": warnings,
            "effective": String::from_utf8_lossy(&out.stdout),
        }))?;
        return if out.status.success() {
            Ok(())
        } else {
            Err(CtlError::Reported(1))
        };
    }
    let status = cmd.status().map_err(cannot)?;
    if status.success() {
        Ok(())
    } else {
        Err(CtlError::Reported(1))
    }
}

/// wardend next to wardenctl (a build tree), else where the packages put it.
pub fn wardend_path() -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("wardend"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "/usr/sbin/wardend".into())
}

/// `doctor`: the PAM directory's wiring, and what the daemon has noticed
/// (services that begin attempts and never end them), when it can be asked.
pub async fn doctor(pam_dir: &Path, json: bool) -> Result<(), CtlError> {
    let files = crate::doctor::read_dir(pam_dir)
        .map_err(|e| CtlError::Failed(format!("cannot read {}: {e}", pam_dir.display())))?;
    let reports = crate::doctor::diagnose(&files);
    let noticed = match connect().await {
        Ok(proxy) => proxy.status().await.ok().map(|s| s.half_wired_services),
        Err(_) => None,
    };
    let bad = reports.iter().any(crate::doctor::Report::is_bad);
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            services: &'a [crate::doctor::Report],
            daemon_half_wired: Option<Vec<String>>,
        }
        print_json(&Out {
            services: &reports,
            daemon_half_wired: noticed.clone(),
        })?;
    } else {
        let mut rows = vec![["SERVICE", "WARDEN", "ACCOUNT", "PROBLEMS"]
            .map(String::from)
            .to_vec()];
        for r in reports
            .iter()
            .filter(|r| r.wiring != "none" || !r.problems.is_empty())
        {
            rows.push(vec![
                r.service.clone(),
                r.wiring.to_string(),
                if r.account { "yes" } else { "no" }.into(),
                if r.problems.is_empty() {
                    "-".into()
                } else {
                    r.problems.join("; ")
                },
            ]);
        }
        let none: Vec<&str> = reports
            .iter()
            .filter(|r| r.wiring == "none" && r.problems.is_empty())
            .map(|r| r.service.as_str())
            .collect();
        if rows.len() > 1 {
            print!("{}", table(&rows));
        } else {
            println!("pam_warden is in no stack of {}", pam_dir.display());
        }
        if !none.is_empty() {
            println!("not guarded: {}", none.join(", "));
        }
        match noticed {
            Some(list) if !list.is_empty() => println!(
                "wardend has seen attempts begin and never end for: {} (their abandoned attempts are not counted)",
                list.join(", ")
            ),
            Some(_) => {}
            None => println!("(wardend was not asked: the bus or the daemon is not there)"),
        }
    }
    if bad {
        return Err(CtlError::Failed(
            "some stacks are wired by half or have arguments the module refuses; fix the lines above".into(),
        ));
    }
    Ok(())
}
