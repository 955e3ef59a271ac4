//! Text both ends print: durations in the config's units, and tables.

use std::fmt::Write as _;
use std::time::Duration;

/// Parses a duration: whole numbers with units, largest first, each unit at
/// most once: `30s`, `15m`, `1h30m`, `7d`, `2w`.
///
/// Stricter than humantime on purpose: a security setting should have
/// exactly one reading, so `15 minutes`, `1.5h`, `30m1h` and bare numbers
/// are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let hint = "use whole numbers with the units w, d, h, m and s, largest first, as in \"30s\", \"15m\", \"1h30m\", \"7d\", \"2w\"";
    let text = text.trim();
    let bad = || format!("invalid duration \"{text}\": {hint}");
    if text.is_empty() {
        return Err(bad());
    }
    let units = [
        ("w", 7 * 86_400u64),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ];
    let mut rest = text;
    let mut next_unit = 0;
    let mut secs: u64 = 0;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit())
            .filter(|i| *i > 0)
            .ok_or_else(bad)?;
        let (digits, tail) = rest.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let i = units
            .iter()
            .position(|(u, _)| *u == unit)
            .filter(|i| *i >= next_unit)
            .ok_or_else(bad)?;
        next_unit = i + 1;
        secs = n
            .checked_mul(units[i].1)
            .and_then(|s| secs.checked_add(s))
            .ok_or_else(|| format!("duration \"{text}\" is too long (at most 100 years)"))?;
        rest = tail;
    }
    if secs > 100 * 365 * 86_400 {
        return Err(format!(
            "duration \"{text}\" is too long (at most 100 years)"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// The shortest exact form of a duration in the config's own units (`90m` stays `90m`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (unit, per) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s % per == 0 {
            return format!("{}{unit}", s / per);
        }
    }
    format!("{s}s")
}

/// Unix seconds as RFC 3339 in UTC, the form SIEMs and fail2ban parse.
pub fn stamp(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Left-aligned columns, two spaces apart.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_each_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn ambiguous_durations_are_refused() {
        for bad in [
            "",
            "15",
            "m",
            "15x",
            "-5m",
            "15 minutes",
            "1.5h",
            "30m1h",
            "1h1h",
            "1h 30m",
            "h1",
        ] {
            let err = parse_duration(bad).err();
            assert!(err.is_some(), "{bad:?} should be refused");
        }
        assert!(parse_duration("99999999999999d")
            .err()
            .is_some_and(|e| e.contains("too long")));
    }

    #[test]
    fn durations_format_back_to_config_units() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(86_400 * 7)), "7d");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn compound_durations_and_weeks_parse() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn stamps_are_rfc3339_utc() {
        assert_eq!(stamp(1_795_356_180), "2026-11-22T14:03:00Z");
    }

    #[test]
    fn tables_align_by_characters() {
        let rows = vec![
            vec!["KEY".to_string(), "N".to_string()],
            vec!["user user=\"jürgen\"".to_string(), "3".to_string()],
        ];
        assert_eq!(
            table(&rows),
            "KEY                 N\nuser user=\"jürgen\"  3\n"
        );
    }
}
