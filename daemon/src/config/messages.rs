//! `[messages]`: an admin's own words for refusals, with placeholders, and
//! where the gettext catalogues of the shipped words are.

use super::types::Problem;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["time_left", "try_again", "reason", "contact"];
/// The longest template: a line or two at a prompt.
const MAX_TEMPLATE: usize = 400;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Messages {
    /// Where `LL/LC_MESSAGES/warden.mo` are found.
    pub catalogs: PathBuf,
    pub contact: String,
    /// The admin's templates; `None`: the shipped words, translated.
    pub locked: Option<String>,
    pub address_locked: Option<String>,
    pub admin_locked: Option<String>,
    pub denied: Option<String>,
    pub crowded: Option<String>,
}

impl Default for Messages {
    fn default() -> Self {
        Messages {
            catalogs: PathBuf::from("/usr/share/locale"),
            contact: String::new(),
            locked: None,
            address_locked: None,
            admin_locked: None,
            denied: None,
            crowded: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMessages {
    catalogs: Option<Spanned<PathBuf>>,
    contact: Option<Spanned<String>>,
    locked: Option<Spanned<String>>,
    address_locked: Option<Spanned<String>>,
    admin_locked: Option<Spanned<String>>,
    denied: Option<Spanned<String>>,
    crowded: Option<Spanned<String>>,
}

/// A template's problem: an unknown placeholder, a brace left open, too long.
fn check_template(text: &str) -> Result<(), String> {
    if text.len() > MAX_TEMPLATE {
        return Err(format!("is {} bytes, over {MAX_TEMPLATE}", text.len()));
    }
    if text.contains(['\n', '\r', '\0']) {
        return Err("must be one line".into());
    }
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("has a '{' with no '}'".into());
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "has an unknown placeholder {{{name}}}; use {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("has a '}' with no '{'".into());
    }
    Ok(())
}

impl RawMessages {
    pub(super) fn check(&self) -> Result<(), Problem> {
        for t in [
            &self.locked,
            &self.address_locked,
            &self.admin_locked,
            &self.denied,
            &self.crowded,
        ]
        .into_iter()
        .flatten()
        {
            check_template(t.get_ref()).map_err(|why| (t.span(), why))?;
        }
        if let Some(c) = &self.contact {
            if c.get_ref().contains(['\n', '\r', '\0', '{', '}']) || c.get_ref().len() > 200 {
                return Err((
                    c.span(),
                    "must be one line of at most 200 bytes, without braces".into(),
                ));
            }
        }
        if let Some(d) = self
            .catalogs
            .as_ref()
            .filter(|d| !d.get_ref().is_absolute())
        {
            return Err((d.span(), "must be an absolute path".into()));
        }
        Ok(())
    }

    pub(super) fn into_messages(self) -> Messages {
        let d = Messages::default();
        let take = |t: Option<Spanned<String>>| t.map(Spanned::into_inner);
        Messages {
            catalogs: self.catalogs.map_or(d.catalogs, Spanned::into_inner),
            contact: self.contact.map_or(d.contact, Spanned::into_inner),
            locked: take(self.locked),
            address_locked: take(self.address_locked),
            admin_locked: take(self.admin_locked),
            denied: take(self.denied),
            crowded: take(self.crowded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_only_known_placeholders() {
        assert!(check_template("Locked. {try_again} Call {contact}.").is_ok());
        assert!(check_template("no placeholders").is_ok());
        assert!(check_template("{time_left").is_err_and(|e| e.contains("no '}'")));
        assert!(check_template("{minutes} left")
            .is_err_and(|e| e.contains("{minutes}") && e.contains("{time_left}")));
        assert!(check_template("a } b").is_err());
        assert!(check_template("two\nlines").is_err());
    }
}
