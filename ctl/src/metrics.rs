//! `metrics`: the Prometheus text format, for node_exporter's textfile
//! collector (the `warden-metrics.timer` writes it once a minute).

use crate::client::CtlError;
use crate::fallback::open;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP warden_{name} {help}");
    let _ = writeln!(out, "# TYPE warden_{name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "warden_{name}{labels} {v}");
    }
}

fn one(v: u64) -> Vec<(String, u64)> {
    vec![(String::new(), v)]
}

/// The text, or `warden_up 0` when wardend cannot be asked.
async fn render() -> (String, Result<(), CtlError>) {
    let mut out = String::new();
    let proxy = match open().await {
        Ok(p) => p,
        Err(e) => {
            metric(&mut out, "up", "gauge", "1 when wardend answered.", &one(0));
            return (out, Err(e));
        }
    };
    let status = proxy.status().await;
    let locks = proxy.list_locks().await;
    let (s, locks) = match (status, locks) {
        (Ok(s), Ok(l)) => (s, l),
        (Err(e), _) | (_, Err(e)) => {
            metric(&mut out, "up", "gauge", "1 when wardend answered.", &one(0));
            return (out, Err(e));
        }
    };
    metric(&mut out, "up", "gauge", "1 when wardend answered.", &one(1));
    let bus = u64::from(proxy.over_bus());
    metric(
        &mut out,
        "bus_up",
        "gauge",
        "1 when wardend was reached over the system bus, 0 over its root socket.",
        &one(bus),
    );
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for l in &locks {
        *by_rule.entry(l.rule.clone()).or_default() += 1;
    }
    let by_rule: Vec<(String, u64)> = by_rule
        .into_iter()
        .map(|(r, n)| {
            (
                format!(
                    "{{rule=\"{}\"}}",
                    r.replace('\\', "\\\\").replace('"', "\\\"")
                ),
                n,
            )
        })
        .collect();
    metric(
        &mut out,
        "locks",
        "gauge",
        "Active locks, by rule.",
        &by_rule,
    );
    metric(
        &mut out,
        "keys_tracked",
        "gauge",
        "Keys in the table.",
        &one(s.keys),
    );
    metric(
        &mut out,
        "max_tracked_keys",
        "gauge",
        "The table's bound.",
        &one(s.max_tracked_keys),
    );
    metric(
        &mut out,
        "table_full",
        "gauge",
        "1 when the table was full in the last minute.",
        &one(u64::from(s.table_full)),
    );
    metric(
        &mut out,
        "attempts_in_flight",
        "gauge",
        "Attempts begun and not yet ended.",
        &one(s.attempts_in_flight),
    );
    metric(
        &mut out,
        "store_bytes",
        "gauge",
        "Size of the store file.",
        &one(s.store_bytes),
    );
    metric(
        &mut out,
        "store_errors_total",
        "counter",
        "Commits that failed since start.",
        &one(s.store_errors),
    );
    metric(
        &mut out,
        "uptime_seconds",
        "gauge",
        "Seconds since wardend started.",
        &one(s.uptime_secs),
    );
    let events: Vec<(String, u64)> = s
        .events_total
        .iter()
        .map(|(k, n)| (format!("{{kind=\"{k}\"}}"), *n))
        .collect();
    metric(
        &mut out,
        "events_total",
        "counter",
        "Committed events since start, by kind (failure, success, refused, locked, ...).",
        &events,
    );
    metric(
        &mut out,
        "evicted_keys_total",
        "counter",
        "Unlocked keys dropped to stay within the bound.",
        &one(s.evicted_keys),
    );
    metric(
        &mut out,
        "evicted_locks_total",
        "counter",
        "Locks dropped because the table held nothing else.",
        &one(s.evicted_locks),
    );
    metric(
        &mut out,
        "refused_crowded_total",
        "counter",
        "Attempts refused because too many were in flight.",
        &one(s.refused_crowded),
    );
    metric(
        &mut out,
        "half_wired_services",
        "gauge",
        "PAM services that never report how attempts end.",
        &one(s.half_wired_services.len() as u64),
    );
    (out, Ok(()))
}

/// Prints the metrics, or writes them to `output` atomically (a temporary
/// file renamed over it), so the collector never reads half a file.
pub async fn metrics(output: Option<&Path>) -> Result<(), CtlError> {
    let (text, result) = render().await;
    match output {
        None => print!("{text}"),
        Some(path) => {
            let tmp = path.with_extension("prom.tmp");
            let fail = |e: std::io::Error| CtlError::Failed(format!("{}: {e}", path.display()));
            std::fs::write(&tmp, &text).map_err(fail)?;
            std::fs::rename(&tmp, path).map_err(fail)?;
        }
    }
    result
}
