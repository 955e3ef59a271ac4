//! `explain` and `rhost-status`: why an attempt would be refused, and what
//! stands against an address, in words and tables.

use crate::cli::ExplainArgs;
use crate::client::CtlError;
use crate::commands::{now, print_json};
use crate::fallback::open;
use crate::human::{relative, table};
use warden_api::KeyCount;

fn lock_text(k: &KeyCount, now: i64) -> String {
    if !k.locked {
        return "-".into();
    }
    let when = if k.permanent {
        "until unlocked".to_string()
    } else {
        format!("ends {}", relative(k.until, now))
    };
    let who = match (k.by.as_str(), k.reason.is_empty()) {
        ("rule", _) => String::new(),
        (by, true) => format!(", by {by}"),
        (by, false) => format!(", by {by}: {}", k.reason),
    };
    format!("locked, {when}{who}")
}

fn keys_table(keys: &[KeyCount], now: i64) -> String {
    let mut rows = vec![["KEY", "FAILURES", "LIMIT", "IN FLIGHT", "LOCK"]
        .map(String::from)
        .to_vec()];
    for k in keys {
        rows.push(vec![
            k.key.clone(),
            k.failures.to_string(),
            if k.limit == 0 {
                "-".into()
            } else {
                k.limit.to_string()
            },
            k.in_flight.to_string(),
            lock_text(k, now),
        ]);
    }
    table(&rows)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

pub async fn explain(a: ExplainArgs, json: bool) -> Result<(), CtlError> {
    let e = open()
        .await?
        .explain(
            &a.user,
            a.rhost.as_deref().unwrap_or(""),
            &a.service,
            a.tty.as_deref().unwrap_or(""),
        )
        .await?;
    if json {
        return print_json(&e);
    }
    let now = now();
    let from = if e.rhost.is_empty() {
        "a local login".to_string()
    } else {
        format!("from {} (source {})", e.rhost, e.source)
    };
    println!("{} on {}, {from}:", e.user, e.service);
    if e.allowed {
        let how = if e.allowlisted {
            " (on [allow]: never locked)"
        } else {
            ""
        };
        println!("  ALLOWED now{how}");
        if !e.would.is_empty() {
            let by = if e.would_by.is_empty() {
                String::new()
            } else {
                format!(" by {}", e.would_by)
            };
            println!(
                "  observe mode: enforcing would refuse it ({}{by})",
                e.would
            );
        }
    } else {
        let by = match e.reason.as_str() {
            "locked" => {
                let when = if e.permanent {
                    "until an admin unlocks".to_string()
                } else {
                    format!("for {}", relative(e.until, now).trim_start_matches("in "))
                };
                format!("locked by {} {when}", e.refused_by)
            }
            "busy" => "every place under a limit is held by attempts in flight".into(),
            "denied" => "the address is on [deny]".into(),
            "unverifiable" => "the rhost is a name and [deny] has entries".into(),
            other => other.to_string(),
        };
        println!("  REFUSED: {by}");
        println!("  the user reads: \"{}\"", e.message);
    }
    if !e.keys.is_empty() {
        println!("keys it counts against:");
        print!("{}", indent(&keys_table(&e.keys, now)));
    }
    if !e.covering.is_empty() {
        println!("other locks covering it:");
        print!("{}", indent(&keys_table(&e.covering, now)));
    }
    let familiar = if e.familiar {
        "familiar (a success from it recently)"
    } else {
        "not familiar"
    };
    println!("source: {familiar}");
    if e.familiar_sources.is_empty() {
        println!("  {} has no familiar sources", e.user);
    } else {
        for (s, t) in &e.familiar_sources {
            println!("  familiar: {s}, last success {}", relative(*t, now));
        }
    }
    let code = match e.code.as_str() {
        "code" => "asked after a right password",
        "refused" => "asked, then refused: none is set up",
        "grace" => "not asked yet: allowed with a warning (grace period)",
        _ => "not asked",
    };
    println!("code: {code} ({})", e.code_why);
    Ok(())
}

pub async fn rhost_status(rhost: &str, json: bool) -> Result<(), CtlError> {
    let r = open().await?.get_rhost_status(rhost).await?;
    if json {
        return print_json(&r);
    }
    let now = now();
    let state = if r.denied {
        "refused: on [deny]"
    } else if r.refused {
        "refused: locked"
    } else if r.allowlisted {
        "allowed: on [allow]"
    } else {
        "not locked"
    };
    println!("{} (source {}): {state}", r.rhost, r.source);
    if !r.keys.is_empty() {
        print!("{}", indent(&keys_table(&r.keys, now)));
    }
    if !r.covering.is_empty() {
        println!("locks covering it:");
        print!("{}", indent(&keys_table(&r.covering, now)));
    }
    Ok(())
}
