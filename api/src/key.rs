//! The canonical spelling of a lock key, and its parser.
//!
//! A key is written `RULE field=value ...`: the rule's name, then its fields
//! in the rule's order, as in `user user=alice from=unfamiliar`. A value is
//! written bare when it is printable ASCII without `"`, `\` or `=`, and
//! otherwise in double quotes with `"` and `\` escaped by a backslash,
//! control characters and `=` as `\xNN`, and characters that hide or reorder
//! text (zero-width and bidirectional marks) as `\u{NNNN}`. The log writes
//! its values the same way, so a literal `=` only ever follows a real field
//! name there. Every key spells one way, and [`parse`] reads back exactly
//! what [`spell`] writes, whatever a user name or address holds.

use std::fmt::Write as _;

/// A key read back from its spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spelled {
    pub rule: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} at character {at} of the key; a key is written RULE field=value ..., exactly as `wardenctl locks` prints it (quote the whole key for the shell)")]
pub struct KeyError {
    /// A character offset into the text, counted from 1.
    pub at: usize,
    pub what: String,
}

/// `RULE field=value ...`.
pub fn spell<'a>(rule: &str, fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from(rule);
    for (name, value) in fields {
        let _ = write!(out, " {name}={}", quote(value));
    }
    out
}

/// A value as keys and log lines write it: bare when plain, else quoted.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '='));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || c == '=' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if hides_text(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters that print as nothing or reorder what follows: a name holding
/// one could pass for another in a terminal.
fn hides_text(c: char) -> bool {
    matches!(u32::from(c),
        0x00ad | 0x034f | 0x061c | 0x115f | 0x1160 | 0x17b4 | 0x17b5 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f | 0x3164 | 0xfeff
        | 0xffa0 | 0xfff9..=0xfffb)
}

/// Reads a key written by [`spell`]. Bare values may also hold other
/// printable characters (`user=jürgen`), as a person would type them.
pub fn parse(text: &str) -> Result<Spelled, KeyError> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser { chars, at: 0 };
    p.skip_space();
    let rule = p.word()?;
    if rule.is_empty() {
        return Err(p.error("expected a rule name"));
    }
    let mut fields = Vec::new();
    loop {
        if !p.skip_space() {
            if p.done() {
                break;
            }
            return Err(p.error("expected a space"));
        }
        if p.done() {
            break;
        }
        let name = p.word()?;
        if name.is_empty() || !p.eat('=') {
            return Err(p.error("expected field=value"));
        }
        let value = p.value()?;
        fields.push((name, value));
    }
    if fields.is_empty() {
        return Err(p.error("a key needs at least one field=value after the rule"));
    }
    Ok(Spelled { rule, fields })
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn error(&self, what: &str) -> KeyError {
        KeyError {
            at: self.at + 1,
            what: what.to_string(),
        }
    }

    fn done(&self) -> bool {
        self.at >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Whether any space was skipped.
    fn skip_space(&mut self) -> bool {
        let start = self.at;
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
        self.at > start
    }

    /// A rule or field name: letters, digits, `-`, `_`, `.`.
    fn word(&mut self) -> Result<String, KeyError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                out.push(c);
                self.at += 1;
            } else if c.is_whitespace() || c == '=' {
                break;
            } else {
                return Err(self.error(&format!("'{}' cannot be in a name", c.escape_debug())));
            }
        }
        Ok(out)
    }

    fn value(&mut self) -> Result<String, KeyError> {
        if !self.eat('"') {
            let mut out = String::new();
            while let Some(c) = self.peek() {
                if c.is_whitespace() {
                    break;
                }
                if matches!(c, '"' | '\\' | '=') || c.is_control() || hides_text(c) {
                    return Err(self.error(&format!(
                        "'{}' must be inside a quoted value",
                        c.escape_debug()
                    )));
                }
                out.push(c);
                self.at += 1;
            }
            if out.is_empty() {
                return Err(self.error("an empty value is written \"\""));
            }
            return Ok(out);
        }
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("the quoted value has no closing quote"));
            };
            self.at += 1;
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, KeyError> {
        let Some(c) = self.peek() else {
            return Err(self.error("the key ends inside an escape"));
        };
        self.at += 1;
        match c {
            '"' | '\\' => Ok(c),
            'x' => self.hex(2),
            'u' => {
                if !self.eat('{') {
                    return Err(self.error("\\u is written \\u{NNNN}"));
                }
                let c = self.hex_until('}')?;
                Ok(c)
            }
            _ => {
                self.at -= 1;
                Err(self.error("unknown escape; use \\\", \\\\, \\xNN or \\u{NNNN}"))
            }
        }
    }

    fn hex(&mut self, n: usize) -> Result<char, KeyError> {
        let digits: String = self.chars.iter().skip(self.at).take(n).collect();
        if digits.chars().count() != n {
            return Err(self.error("\\x takes two hex digits"));
        }
        let c = self.char_of(&digits)?;
        self.at += n;
        Ok(c)
    }

    fn hex_until(&mut self, end: char) -> Result<char, KeyError> {
        let mut digits = String::new();
        while let Some(c) = self.peek() {
            self.at += 1;
            if c == end {
                return self.char_of(&digits);
            }
            if digits.len() == 6 {
                break;
            }
            digits.push(c);
        }
        Err(self.error("\\u{...} takes one to six hex digits"))
    }

    fn char_of(&self, digits: &str) -> Result<char, KeyError> {
        u32::from_str_radix(digits, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error(&format!("\"{digits}\" is not a character in hex")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn round_trip(rule: &str, fields: &[(&str, &str)]) {
        let text = spell(rule, fields.iter().copied());
        let back = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(back.rule, rule, "{text}");
        let got: Vec<(&str, &str)> = back
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, fields, "{text}");
    }

    #[test]
    fn plain_keys_read_as_they_always_did() {
        assert_eq!(
            spell("user", [("user", "alice"), ("from", "unfamiliar")]),
            "user user=alice from=unfamiliar"
        );
        assert_eq!(
            spell("admin", [("rhost", "2001:db8::/48")]),
            "admin rhost=2001:db8::/48"
        );
    }

    #[test]
    fn awkward_values_round_trip() {
        for v in [
            "jürgen",
            "a b",
            "say \"hi\"",
            "back\\slash",
            "x=y",
            "x user=root",
            "",
            "tab\there",
            "new\nline",
            "zero\u{200b}width",
            "rtl\u{202e}txt",
            "日本",
            "\u{7f}\u{85}",
            "\"",
            "\\",
            "=",
        ] {
            round_trip("user", &[("user", v), ("rhost", "203.0.113.7")]);
        }
    }

    #[test]
    fn escapes_keep_fields_and_lines_apart() {
        assert_eq!(quote("x user=root"), "\"x user\\x3droot\"");
        assert_eq!(quote("a\u{202e}b"), "\"a\\u{202e}b\"");
        assert_eq!(quote("jürgen"), "\"jürgen\"");
        assert!(!spell("r", [("user", "a\nb")]).contains('\n'));
    }

    #[test]
    fn people_may_type_what_they_see() {
        let k = parse("  user   user=jürgen  ").unwrap();
        assert_eq!(k.fields, [("user".to_string(), "jürgen".to_string())]);
    }

    #[test]
    fn malformed_keys_say_where() {
        for (bad, at) in [
            ("", 1),
            ("user", 5),
            ("user user", 10),
            ("user user=\"open", 16),
            ("user user=a\"b", 12),
            ("user user=\"x\"y", 14),
            ("user user=\"\\q\"", 13),
            ("user user=\"\\x4\"", 14),
            ("us\"er user=a", 3),
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.at, at, "{bad:?}: {e}");
        }
    }
}
