//! The words a refused user reads, in their language: the admin's
//! `[messages]` templates, or the shipped words (`warden_proto::message`)
//! through glibc's gettext and the catalogues under `[messages] catalogs`
//! (`LL/LC_MESSAGES/warden.mo`), as Linux-PAM's own modules are translated.
//! The locale is the PAM application's, which the module sends; it is put in
//! force on this thread alone (`uselocale`) for one message, so logins in
//! different languages at once never mix, and nothing else changes.

use crate::config::Messages;
use std::ffi::{c_char, c_ulong, CStr, CString};
use std::path::Path;
use std::sync::Arc;
use warden_proto::message::{self, English, Refusal, Translate};

const DOMAIN: &CStr = c"warden";
/// The longest locale name taken from a request.
const MAX_LOCALE: usize = 64;

unsafe extern "C" {
    fn bindtextdomain(domain: *const c_char, dir: *const c_char) -> *mut c_char;
    fn bind_textdomain_codeset(domain: *const c_char, codeset: *const c_char) -> *mut c_char;
    fn dgettext(domain: *const c_char, msgid: *const c_char) -> *mut c_char;
    fn dngettext(
        domain: *const c_char,
        one: *const c_char,
        many: *const c_char,
        n: c_ulong,
    ) -> *mut c_char;
}

/// Points gettext at the catalogues; at start and at each reload.
pub fn bind(dir: &Path) -> bool {
    let Ok(dir) = CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated and outlive the calls; glibc
    // copies them.
    unsafe {
        let bound = !bindtextdomain(DOMAIN.as_ptr(), dir.as_ptr()).is_null();
        bind_textdomain_codeset(DOMAIN.as_ptr(), c"UTF-8".as_ptr());
        bound
    }
}

/// A locale name from a request, if it could be one: at most 64 bytes of
/// letters, digits and `_.@-` (never a path), and not the C locale.
pub fn locale_name(raw: Option<&[u8]>) -> Option<String> {
    let raw = raw?;
    let ok = !raw.is_empty()
        && raw.len() <= MAX_LOCALE
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(b));
    let name = String::from_utf8(raw.to_vec()).ok().filter(|_| ok)?;
    (!matches!(name.as_str(), "C" | "POSIX") && !name.starts_with("C.")).then_some(name)
}

/// A loaded locale, freed when dropped; `None` when the system has no such
/// locale (then the words are English, as gettext's would be).
struct Locale(libc::locale_t);

impl Locale {
    fn load(name: &str) -> Option<Locale> {
        let name = CString::new(name).ok()?;
        // SAFETY: a NUL-terminated name and no base locale; glibc returns a
        // new locale object or NULL.
        let l =
            unsafe { libc::newlocale(libc::LC_MESSAGES_MASK, name.as_ptr(), std::ptr::null_mut()) };
        // Built only when not NULL: a Locale frees what it holds.
        (!l.is_null()).then(|| Locale(l))
    }

    /// Runs a gettext call with this locale in force on this thread only.
    fn with<F: FnOnce() -> *mut c_char>(&self, call: F) -> Option<String> {
        // SAFETY: self.0 is a live locale object; the thread's previous one
        // is put back before returning, and the text glibc returns (its own,
        // or the msgid we passed) is copied while both are alive.
        unsafe {
            let before = libc::uselocale(self.0);
            let text = call();
            let out =
                (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned());
            libc::uselocale(before);
            out
        }
    }
}

impl Drop for Locale {
    fn drop(&mut self) {
        // SAFETY: made by newlocale, never in force once `with` has returned.
        unsafe { libc::freelocale(self.0) };
    }
}

impl Translate for Locale {
    fn text(&self, msgid: &str) -> String {
        let Ok(id) = CString::new(msgid) else {
            return msgid.to_string();
        };
        // SAFETY: NUL-terminated domain and msgid, alive during the call.
        self.with(|| unsafe { dgettext(DOMAIN.as_ptr(), id.as_ptr()) })
            .unwrap_or_else(|| msgid.to_string())
    }

    fn plural(&self, one: &str, many: &str, n: u64) -> String {
        let (Ok(o), Ok(m)) = (CString::new(one), CString::new(many)) else {
            return English.plural(one, many, n);
        };
        let count = c_ulong::try_from(n).unwrap_or(c_ulong::MAX);
        // SAFETY: NUL-terminated strings, alive during the call.
        self.with(|| unsafe { dngettext(DOMAIN.as_ptr(), o.as_ptr(), m.as_ptr(), count) })
            .unwrap_or_else(|| English.plural(one, many, n))
    }
}

/// What one request's user reads: their locale and the admin's templates.
/// Send, so it can cross an await; the locale itself is loaded only for the
/// moment a message is made.
#[derive(Clone)]
pub struct Words {
    locale: Option<String>,
    custom: Arc<Messages>,
}

impl Words {
    pub fn new(locale: Option<String>, custom: Arc<Messages>) -> Words {
        Words { locale, custom }
    }

    /// English, for admins (`explain`).
    pub fn english(custom: Arc<Messages>) -> Words {
        Words::new(None, custom)
    }

    fn speak<T>(&self, f: impl FnOnce(&dyn Translate) -> T) -> T {
        match self.locale.as_deref().and_then(Locale::load) {
            Some(l) => f(&l),
            None => f(&English),
        }
    }

    /// A shipped message (its msgid is its English text); nothing stays
    /// nothing (gettext would answer the catalogue's header).
    pub fn text(&self, msgid: &str) -> String {
        if msgid.is_empty() {
            return String::new();
        }
        self.speak(|tr| tr.text(msgid))
    }

    pub fn grace(&self, day: &str) -> String {
        self.speak(|tr| message::grace_notice_in(tr, day))
    }

    /// A refusal by a lock, `seconds_left` `None` when permanent.
    pub fn refusal(&self, r: &Refusal<'_>, seconds_left: Option<u64>) -> String {
        self.speak(|tr| {
            let template = match r {
                Refusal::Locked => &self.custom.locked,
                Refusal::AdminLocked { .. } => &self.custom.admin_locked,
                Refusal::AddressLocked { .. } => &self.custom.address_locked,
            };
            let Some(t) = template else {
                return message::refusal(tr, r, seconds_left);
            };
            let reason = match r {
                Refusal::Locked => "",
                Refusal::AdminLocked { reason } | Refusal::AddressLocked { reason, .. } => reason,
            };
            let time_left = seconds_left.map_or(String::new(), |s| message::wait(tr, s));
            let try_again = message::second_sentence(tr, r, seconds_left);
            self.fill(t, &time_left, &try_again, reason)
        })
    }

    /// `denied` or `crowded`: the admin's words, or the shipped ones.
    pub fn plain(&self, custom: Option<&String>, msgid: &str) -> String {
        match custom {
            Some(t) => self.fill(t, "", "", ""),
            None => self.text(msgid),
        }
    }

    pub fn custom(&self) -> &Messages {
        &self.custom
    }

    fn fill(&self, template: &str, time_left: &str, try_again: &str, reason: &str) -> String {
        let mut out = template.to_string();
        for (name, value) in [
            ("time_left", time_left),
            ("try_again", try_again),
            ("reason", reason),
            ("contact", self.custom.contact.as_str()),
        ] {
            out = message::fill(&out, name, value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_that_could_be_locales_are_taken() {
        assert_eq!(
            locale_name(Some(b"de_DE.UTF-8")).as_deref(),
            Some("de_DE.UTF-8")
        );
        assert_eq!(
            locale_name(Some(b"sr_RS@latin")).as_deref(),
            Some("sr_RS@latin")
        );
        for bad in [
            &b"../../etc/x"[..],
            b"C",
            b"C.UTF-8",
            b"POSIX",
            b"",
            b"de DE",
            &[b'a'; 65],
        ] {
            assert_eq!(locale_name(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(locale_name(None), None);
    }

    #[test]
    fn templates_are_filled_in_english_without_a_locale() {
        let custom = Messages {
            locked: Some("Locked. {try_again} Help: {contact}".into()),
            admin_locked: Some("Held by IT: {reason} ({time_left})".into()),
            denied: Some("No. {contact}".into()),
            contact: "+1 555 0100".into(),
            ..Messages::default()
        };
        let w = Words::new(Some("xx_YY.UTF-8".into()), Arc::new(custom));
        assert_eq!(
            w.refusal(&Refusal::Locked, Some(600)),
            "Locked. Try again in 10 minutes. Help: +1 555 0100"
        );
        assert_eq!(
            w.refusal(&Refusal::AdminLocked { reason: "audit" }, Some(7200)),
            "Held by IT: audit (2 hours)"
        );
        assert_eq!(
            w.refusal(
                &Refusal::AddressLocked {
                    by_admin: false,
                    reason: ""
                },
                None
            ),
            "Too many failed attempts from your address. Ask an administrator to unlock it."
        );
        let denied = w.custom().denied.clone();
        assert_eq!(w.plain(denied.as_ref(), message::DENIED), "No. +1 555 0100");
        assert_eq!(w.plain(None, message::DENIED), "Access denied.");
    }
}
