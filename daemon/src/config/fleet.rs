//! `[fleet]`: where the shared lockout lives, and what to do when it cannot
//! be reached. Absent, wardend decides alone on its embedded store.

use super::types::{Dur, Problem};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// What a host does while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnUnavailable {
    /// Decide with the local engine, seeded with the fleet's locks, and
    /// replay what happened when Redis returns: at most hosts × limit
    /// checks during an outage.
    #[default]
    Local,
    /// Refuse every login that would need the fleet.
    Deny,
    /// Let logins through uncounted. Unlimited guessing while Redis is down.
    Ignore,
}

impl OnUnavailable {
    pub fn name(self) -> &'static str {
        match self {
            OnUnavailable::Local => "local",
            OnUnavailable::Deny => "deny",
            OnUnavailable::Ignore => "ignore",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fleet {
    /// Without its password: that comes from `password_file` or a credential.
    pub url: String,
    pub prefix: String,
    pub host_id: String,
    pub on_unavailable: OnUnavailable,
    pub call_timeout: Duration,
    pub password_file: Option<PathBuf>,
    /// The Redis ACL user (one per host, see packaging/redis/warden-acl.conf);
    /// `default` when absent.
    pub username: Option<String>,
    /// The CA that signed Redis's certificate, for `rediss://`; the system's
    /// roots when absent.
    pub tls_ca: Option<PathBuf>,
    /// Lock events kept in the stream every host follows.
    pub stream_length: u64,
    /// Redis Sentinels (`host:port`) that name the primary; empty: `url`'s host.
    pub sentinels: Vec<String>,
    pub master_name: String,
    /// Replicas a lock must reach (`WAIT`) before it is taken as safe from a
    /// failover; until then this host keeps a copy and asserts it again.
    pub replicas_to_wait: u32,
    pub wait_timeout: Duration,
    /// The fleet's key that seals TOTP records in Redis (32 bytes in hex,
    /// root's, mode 600); `None`: the credential `fleet-totp-key`, or else
    /// TOTP records stay on each host.
    pub totp_key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    pub backend: Spanned<String>,
    pub url: Spanned<String>,
    #[serde(default = "default_prefix")]
    pub prefix: Spanned<String>,
    #[serde(default)]
    pub host_id: Option<Spanned<String>>,
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    #[serde(default = "default_call_timeout")]
    pub call_timeout: Spanned<Dur>,
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub username: Option<Spanned<String>>,
    #[serde(default)]
    pub tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default = "default_stream_length")]
    pub stream_length: u64,
    #[serde(default)]
    pub sentinels: Vec<Spanned<String>>,
    #[serde(default)]
    pub master_name: Option<Spanned<String>>,
    #[serde(default)]
    pub replicas_to_wait: Option<u32>,
    #[serde(default = "default_wait_timeout")]
    pub wait_timeout: Spanned<Dur>,
    #[serde(default)]
    pub totp_key_file: Option<Spanned<PathBuf>>,
}

fn default_wait_timeout() -> Spanned<Dur> {
    Spanned::new(0..0, Dur(Duration::from_millis(50)))
}

fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "w:".into())
}

fn default_call_timeout() -> Spanned<Dur> {
    Spanned::new(0..0, Dur(Duration::from_millis(250)))
}

fn default_stream_length() -> u64 {
    10_000
}

impl RawFleet {
    pub(super) fn check(&self) -> Result<(), Problem> {
        if self.backend.get_ref() != "redis" {
            return Err((
                self.backend.span(),
                format!(
                    "unknown fleet backend \"{}\"; the one backend is \"redis\"",
                    self.backend.get_ref()
                ),
            ));
        }
        let url = self.url.get_ref();
        let (tls, rest) = match (url.strip_prefix("rediss://"), url.strip_prefix("redis://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => {
                return Err((
                    self.url.span(),
                    format!("\"{url}\" is not a redis:// or rediss:// address, such as redis://127.0.0.1:6379/0"),
                ))
            }
        };
        let authority = rest.split('/').next().unwrap_or("");
        if authority.contains('@') {
            return Err((
                self.url.span(),
                "holds a user or password; put the password in password_file (or a systemd credential named redis-password) and the user nowhere: warden.toml is world-readable".into(),
            ));
        }
        if authority.is_empty() {
            return Err((self.url.span(), "names no host".into()));
        }
        for s in &self.sentinels {
            let ok = s
                .get_ref()
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err((s.span(), format!("\"{}\" is not host:port", s.get_ref())));
            }
            if !tls && !is_loopback(s.get_ref()) {
                return Err((
                    s.span(),
                    "a Sentinel off this machine needs rediss:// (TLS) in url".into(),
                ));
            }
        }
        match (&self.master_name, self.sentinels.is_empty()) {
            (None, false) => {
                return Err((
                    self.url.span(),
                    "sentinels are set but master_name is not: name the primary as the Sentinels monitor it".into(),
                ))
            }
            (Some(m), true) => {
                return Err((m.span(), "master_name needs sentinels".into()));
            }
            _ => {}
        }
        if self.wait_timeout.get_ref().0 > Duration::from_secs(1) {
            return Err((
                self.wait_timeout.span(),
                "is longer than 1s; a lock's reply waits on it".into(),
            ));
        }
        if !tls && !is_loopback(authority) && self.sentinels.is_empty() {
            return Err((
                self.url.span(),
                "plain redis:// is only for a Redis on this machine: use rediss:// (TLS) with tls_ca, so that locks, unlocks and the password never cross the network in the clear".into(),
            ));
        }
        if let Some(u) = &self.username {
            let ok = !u.get_ref().is_empty()
                && u.get_ref().len() <= 64
                && u.get_ref().chars().all(|c| c.is_ascii_graphic());
            if !ok {
                return Err((
                    u.span(),
                    "must be 1 to 64 printable characters without spaces".into(),
                ));
            }
        }
        if let Some(ca) = &self.tls_ca {
            if !tls {
                return Err((
                    ca.span(),
                    "is for rediss:// (TLS); the url is redis://".into(),
                ));
            }
            if !ca.get_ref().is_absolute() {
                return Err((ca.span(), "must be an absolute path".into()));
            }
        }
        let prefix = self.prefix.get_ref();
        if prefix.is_empty() || prefix.len() > 32 || prefix.chars().any(|c| c.is_whitespace()) {
            return Err((
                self.prefix.span(),
                "must be 1 to 32 characters without spaces, such as \"w:\"".into(),
            ));
        }
        if let Some(h) = &self.host_id {
            let ok = !h.get_ref().is_empty()
                && h.get_ref().len() <= 64
                && h.get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err((
                    h.span(),
                    "must be 1 to 64 letters, digits, '-', '_' or '.'".into(),
                ));
            }
        }
        let t = self.call_timeout.get_ref().0;
        if t > Duration::from_secs(2) {
            return Err((
                self.call_timeout.span(),
                "is longer than 2s; a login waits on it, and pam_warden gives up sooner".into(),
            ));
        }
        for p in [&self.password_file, &self.totp_key_file]
            .into_iter()
            .flatten()
        {
            if !p.get_ref().is_absolute() {
                return Err((p.span(), "must be an absolute path".into()));
            }
        }
        Ok(())
    }

    pub(super) fn into_fleet(self) -> Fleet {
        Fleet {
            url: self.url.into_inner(),
            prefix: self.prefix.into_inner(),
            host_id: self
                .host_id
                .map_or_else(derived_host_id, Spanned::into_inner),
            on_unavailable: self.on_unavailable,
            call_timeout: self.call_timeout.into_inner().0,
            password_file: self.password_file.map(Spanned::into_inner),
            tls_ca: self.tls_ca.map(Spanned::into_inner),
            username: self.username.map(Spanned::into_inner),
            replicas_to_wait: self
                .replicas_to_wait
                .unwrap_or(u32::from(!self.sentinels.is_empty())),
            sentinels: self
                .sentinels
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            master_name: self
                .master_name
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            wait_timeout: self.wait_timeout.into_inner().0,
            totp_key_file: self.totp_key_file.map(Spanned::into_inner),
            stream_length: self.stream_length.max(100),
        }
    }
}

/// Whether `host[:port]` names this machine: 127.0.0.0/8, ::1 or localhost.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        // [::1]:6379
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A stable name for this host that does not publish its machine id: the
/// first 12 hex digits of its SHA-256. The host name when there is no id.
fn derived_host_id() -> String {
    use sha2::{Digest, Sha256};
    match std::fs::read_to_string("/etc/machine-id") {
        Ok(id) if !id.trim().is_empty() => {
            let d = Sha256::digest(id.trim().as_bytes());
            crate::hex::encode(&d[..6])
        }
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into()),
    }
}
