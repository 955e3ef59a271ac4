//! Config errors that name the file, the line and the key, so an admin can go
//! straight to the mistake.

use std::ops::Range;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {source}. Create it (see the README's configuration reference) or pass --config PATH", path.display())]
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
        let message = err.message().trim().to_string();
        let named = backticked_field(&message);
        ConfigError::at(path, text, err.span(), named.as_deref(), message)
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
