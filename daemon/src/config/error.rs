//! Config errors that name the file, the line and the key, so an admin can go
//! straight to the mistake.

use std::ops::Range;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {source}. Create it (see warden.toml(5)) or pass --config PATH", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl ConfigError {
    pub(super) fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
        let raw = err.message().trim().to_string();
        let named = backticked_field(&raw);
        let mut e = ConfigError::at(path, text, err.span(), named.as_deref(), raw.clone());
        if let ConfigError::Invalid { key, message, .. } = &mut e {
            *message = in_admins_words(&raw, key, named.as_deref());
        }
        e
    }

    /// Builds an error at a span of `text`; `field` names the key when the span
    /// covers a table rather than a `key = value` line (missing or unknown keys).
    pub(super) fn at(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        field: Option<&str>,
        message: String,
    ) -> ConfigError {
        let start = span.map(|s| s.start.min(text.len())).unwrap_or(0);
        let line = text[..start].matches('\n').count() + 1;
        let lines: Vec<&str> = text.lines().collect();
        let idx = line.saturating_sub(1).min(lines.len().saturating_sub(1));
        let key_here = field
            .map(str::to_string)
            .or_else(|| key_of_line(&lines, idx));
        let table = table_at(&lines, idx);
        let key = match (table, key_here) {
            (Some(t), Some(k)) if !k.contains('.') || !k.starts_with(&t) => format!("{t}.{k}"),
            (Some(t), None) => t,
            (_, Some(k)) => k,
            (None, None) => "(top level)".into(),
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            key,
            message,
        }
    }
}

/// Keys that belong at the top of the file, before any `[table]`.
const TOP_LEVEL: &[&str] = &[
    "socket",
    "root_socket",
    "state_dir",
    "admin_group",
    "attempt_timeout",
    "escalation_memory",
    "reset_on_success",
    "extend_on_failure_while_locked",
    "lock_root",
    "ipv4_prefix",
    "ipv6_prefix",
    "max_tracked_keys",
    "max_attempts_in_flight",
    "max_attempts_per_uid",
    "max_keys_per_user",
];

/// The TOML and serde message in words an admin uses: no Rust type names,
/// and the likely fix for the usual slips.
fn in_admins_words(raw: &str, key: &str, named: Option<&str>) -> String {
    if let Some(field) = named.filter(|_| raw.starts_with("unknown field")) {
        if TOP_LEVEL.contains(&field) && key.contains('.') {
            let table = key.split('.').next().unwrap_or("");
            return format!(
                "`{field}` is a top-level key, but it comes after [{table}], so TOML reads it as part of that table; move it above the first [table] line"
            );
        }
        let expected = raw
            .split_once(", expected")
            .map(|(_, e)| {
                e.trim()
                    .trim_start_matches("one of")
                    .trim()
                    .replace('`', "")
            })
            .unwrap_or_default();
        return if expected.is_empty() {
            format!("unknown field `{field}`")
        } else {
            format!("unknown field `{field}`; this table takes: {expected}")
        };
    }
    if let Some(field) = named.filter(|_| raw.starts_with("missing field")) {
        return format!("missing field `{field}`: it is required here");
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        if key == "rule" && found == "map" {
            return "write [[rule]] with two brackets: each rule is one table in a list of rules"
                .into();
        }
        let found = match found.split_once(' ') {
            Some(("string", v)) => format!("the text {v}"),
            Some(("integer", v)) => format!("the number {}", v.trim_matches('`')),
            Some(("floating", v)) => format!(
                "the number {}",
                v.trim_start_matches("point ").trim_matches('`')
            ),
            Some(("boolean", v)) => v.trim_matches('`').to_string(),
            _ if found == "sequence" => "a list".into(),
            _ if found == "map" => "a table".into(),
            _ => found.to_string(),
        };
        let wanted = if expected.starts_with('i')
            || expected.starts_with('u')
            || expected.contains("integer")
            || expected.starts_with('f')
        {
            "a number, written without quotes"
        } else if expected.contains("bool") {
            "true or false, without quotes"
        } else if expected.contains("sequence") {
            "a list, such as [\"a\", \"b\"]"
        } else if expected.contains("string") || expected.contains("path") {
            "text in quotes"
        } else if expected.contains("struct") || expected.contains("map") {
            "a table"
        } else {
            expected
        };
        return format!("is {found}, but must be {wanted}");
    }
    raw.to_string()
}

fn backticked_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_string)
}

fn is_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

/// The key on this line, or on the nearest `key =` line above it when the value
/// is a multi-line array.
fn key_of_line(lines: &[&str], idx: usize) -> Option<String> {
    for line in lines.get(..=idx)?.iter().rev() {
        if is_header(line) {
            return None;
        }
        if let Some((k, _)) = line.split_once('=') {
            let k = k.trim().trim_matches('"').trim_matches('\'');
            if !k.is_empty() && !k.starts_with('#') {
                return Some(k.to_string());
            }
        }
    }
    None
}

/// The table that line `idx` belongs to: `audit`, or `rule[2]` for the second `[[rule]]`.
fn table_at(lines: &[&str], idx: usize) -> Option<String> {
    let mut current = None;
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in lines.get(..=idx)? {
        let t = line.split('#').next().unwrap_or("").trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let name = name.trim().to_string();
            let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counts.push((name.clone(), 1));
                    1
                }
            };
            current = Some(format!("{name}[{n}]"));
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = Some(name.trim().to_string());
        }
    }
    current
}
