//! `wardenctl fleet status`: the fleet as this host sees it.

use crate::client::CtlError;
use crate::commands::{now, print_json};
use crate::fallback::open;
use crate::human::{relative, table};
use serde_json::Value;

pub async fn status(json: bool) -> Result<(), CtlError> {
    let report = open().await?.fleet_status().await?;
    if json {
        return print_json(&report);
    }
    print!("{}", render(&report, now()));
    Ok(())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// The report for people: this host, then every host seen, with a loud
/// warning when their rules differ.
pub fn render(r: &Value, now_secs: i64) -> String {
    let mut out = String::new();
    let health = if r.get("healthy").and_then(Value::as_bool).unwrap_or(false) {
        "healthy".to_string()
    } else {
        let since = r
            .get("degraded_since")
            .and_then(Value::as_u64)
            .map(|ms| relative(i64::try_from(ms / 1000).unwrap_or(0), now_secs))
            .unwrap_or_default();
        format!(
            "DEGRADED since {since}: {} (on_unavailable = {})",
            s(r, "last_error"),
            s(r, "on_unavailable")
        )
    };
    out.push_str(&table(&[
        vec![
            "backend".into(),
            format!(
                "{} {} (prefix {})",
                s(r, "backend"),
                s(r, "url"),
                s(r, "prefix")
            ),
        ],
        vec!["this host".into(), format!("{}  {health}", s(r, "host"))],
        vec!["policy".into(), s(r, "policy_hash").into()],
        vec![
            "journal".into(),
            format!(
                "{} decisions made alone, waiting to be replayed",
                n(r, "journal")
            ),
        ],
        vec![
            "lock signals".into(),
            format!(
                "p50 {}ms, p99 {}ms from Redis to this host's signal (latest {})",
                n(r, "signal_p50_ms"),
                n(r, "signal_p99_ms"),
                n(r, "signals")
            ),
        ],
    ]));
    let hosts = r
        .get("hosts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let redis_now = n(r, "now");
    let mine = s(r, "policy_hash");
    let mut rows = vec![vec![
        "HOST".into(),
        "POLICY".into(),
        "SEEN".into(),
        "LAG".into(),
        "STATE".into(),
        "VERSION".into(),
    ]];
    let mut hashes: Vec<&str> = Vec::new();
    for h in &hosts {
        let seen_ago = redis_now.saturating_sub(n(h, "seen")) / 1000;
        let state = if h.get("degraded").and_then(Value::as_bool).unwrap_or(false) {
            "degraded"
        } else if seen_ago > 30 {
            "silent"
        } else {
            "ok"
        };
        let hash = s(h, "policy_hash");
        if !hashes.contains(&hash) {
            hashes.push(hash);
        }
        let mark = if hash != mine { " (differs)" } else { "" };
        rows.push(vec![
            s(h, "host").into(),
            format!("{hash}{mark}"),
            relative(now_secs - i64::try_from(seen_ago).unwrap_or(0), now_secs),
            format!("{}ms", n(h, "lag_ms")),
            state.into(),
            s(h, "version").into(),
        ]);
    }
    out.push('\n');
    out.push_str(&table(&rows));
    if hashes.len() > 1 {
        out.push_str(&format!(
            "\nwarning: the hosts run {} different policies: one key then counts against different limits on different hosts, which breaks exactness. Give every host the same rules.\n",
            hashes.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_policies_are_called_out() {
        let r: Value = serde_json::from_str(
            r#"{"backend":"redis","url":"redis://127.0.0.1:6379/0","prefix":"w:","host":"a","on_unavailable":"local","policy_hash":"aaa","healthy":true,"degraded_since":null,"last_error":"","journal":0,"now":100000,
            "hosts":[{"host":"a","policy_hash":"aaa","version":"0.1.0","seen":99000,"lag_ms":1,"degraded":false},
                     {"host":"b","policy_hash":"bbb","version":"0.1.0","seen":10000,"lag_ms":0,"degraded":false}]}"#,
        )
        .unwrap_or(Value::Null);
        let text = render(&r, 1_000);
        assert!(text.contains("bbb (differs)"), "{text}");
        assert!(text.contains("silent"), "{text}");
        assert!(text.contains("2 different policies"), "{text}");
        assert!(!text.contains("aaa (differs)"), "{text}");
    }
}
