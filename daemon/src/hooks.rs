//! `[[hook]]` commands, run on lock events: as their own user, with the event
//! as JSON on stdin, an empty environment, a bounded time each and a few at
//! once. They follow the announcer's broadcast, as D-Bus signals do, so a
//! hook runs only for a lock that is on disk, and a slow or stuck one delays
//! no decision: when they fall behind, events are dropped and counted.

use crate::config::{Hook, HookEvent};
use crate::engine::{Event, EventKind, Until};
use crate::logline::quote;
use crate::service::Warden;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Semaphore;

/// Hooks running at once; the rest wait their turn.
const RUNNING: usize = 4;
/// What is kept of a failing hook's stderr for its log line.
const STDERR_KEPT: usize = 200;

pub async fn run(warden: Arc<Warden>) {
    let mut events = warden.subscribe();
    let running = Arc::new(Semaphore::new(RUNNING));
    loop {
        let e = match events.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                warden.log().warn(&format!(
                    "hook-dropped events={n} reason=\"hooks fell behind; these events ran no hook\""
                ));
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(kind) = hook_event(&e) else {
            continue;
        };
        let config = warden.config();
        for hook in config.hooks.iter().filter(|h| h.on.contains(&kind)) {
            let Ok(permit) = running.clone().acquire_owned().await else {
                return;
            };
            let (warden, hook, input) = (warden.clone(), hook.clone(), payload(&e, kind));
            tokio::spawn(async move {
                run_one(&warden, &hook, kind, &input).await;
                drop(permit);
            });
        }
    }
}

fn hook_event(e: &Event) -> Option<HookEvent> {
    match e.kind {
        EventKind::Locked => Some(HookEvent::Locked),
        EventKind::Unlocked => Some(HookEvent::Unlocked),
        _ => None,
    }
}

/// The event as the hook reads it on stdin: one JSON object and a newline.
fn payload(e: &Event, kind: HookEvent) -> Vec<u8> {
    let until = match e.until {
        Some(Until::At(t)) => serde_json::json!(t.0 / 1000),
        Some(Until::Permanent) => serde_json::json!("permanent"),
        None => serde_json::Value::Null,
    };
    let mut out = serde_json::json!({
        "event": kind.name(),
        "time": e.time.0 / 1000,
        "key": e.key.as_ref().map(ToString::to_string),
        "rule": e.rule,
        "user": e.user,
        "rhost": e.rhost,
        "service": e.service,
        "failures": e.failures,
        "until": until,
        "by": e.by,
        "reason": e.reason,
    })
    .to_string()
    .into_bytes();
    out.push(b'\n');
    out
}

async fn run_one(warden: &Warden, hook: &Hook, kind: HookEvent, input: &[u8]) {
    let log = warden.log();
    let program = hook.exec.first().cloned().unwrap_or_default();
    let said = |what: &str| {
        format!(
            "on={} exec={} user={} {what}",
            kind.name(),
            quote(&program),
            quote(&hook.user)
        )
    };
    let user = match nix::unistd::User::from_name(&hook.user) {
        Ok(Some(u)) => u,
        _ => {
            log.error(&format!(
                "hook-failed {} reason=\"no such user; fix [[hook]] user\"",
                said("")
            ));
            return;
        }
    };
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(hook.exec.iter().skip(1))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .current_dir("/")
        // In a process group of its own, so that a timeout kills what it
        // started too.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // As its user with no supplementary groups (std drops them when it sets
    // the uid); a hook of wardend's own user needs no switch, and none of the
    // privilege it takes (see packaging/systemd/hooks.conf).
    if user.uid != nix::unistd::geteuid() {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            log.error(&format!(
                "hook-failed {} error={}",
                said(""),
                quote(&e.to_string())
            ));
            return;
        }
    };
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let finished = tokio::time::timeout(hook.timeout, async {
        if let Some(mut s) = stdin.take() {
            // A hook that does not read its input is its own business.
            let _ = s.write_all(input).await;
        }
        let mut err = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut err).await;
        }
        (child.wait().await, err)
    })
    .await;
    let ms = started.elapsed().as_millis();
    match finished {
        Ok((Ok(status), _)) if status.success() => {
            log.info(&format!("hook-ran {}", said(&format!("ms={ms}"))));
        }
        Ok((status, err)) => {
            let code = status
                .ok()
                .and_then(|s| s.code())
                .map_or("signal".to_string(), |c| c.to_string());
            let err = String::from_utf8_lossy(&err[..err.len().min(STDERR_KEPT)])
                .trim()
                .to_string();
            log.warn(&format!(
                "hook-failed {} status={code} stderr={}",
                said(&format!("ms={ms}")),
                quote(&err)
            ));
        }
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            log.warn(&format!(
                "hook-timeout {} reason=\"killed, with its process group, after {}s\"",
                said(""),
                hook.timeout.as_secs()
            ));
        }
    }
}
