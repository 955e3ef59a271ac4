//! The configuration file: TOML, validated as it is read.
//!
//! Every value is checked while it is deserialized, so that each error carries the
//! span of the offending value and can name the file, the line and the key.

mod error;
mod types;

pub use error::ConfigError;
pub use types::{Field, Lockout};

use ipnet::IpNet;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use types::{default_rules, positive_duration, prefix_v4, prefix_v6, Cidr, RawRule};

pub const DEFAULT_PATH: &str = "/etc/warden/warden.toml";
pub const DEFAULT_SOCKET: &str = "/run/warden/warden.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/warden";

/// One lockout rule, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub track: Vec<Field>,
    pub limit: u32,
    pub window: Duration,
    pub lockout: Lockout,
    pub escalate: f64,
    pub max_lockout: Duration,
    /// `None`: every service.
    pub services: Option<Vec<String>>,
}

impl Rule {
    pub fn tracks(&self, field: Field) -> bool {
        self.track.contains(&field)
    }

    pub fn applies_to_service(&self, service: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == service))
    }
}

/// Everything the engine decides with.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub attempt_timeout: Duration,
    pub escalation_memory: Duration,
    pub reset_on_success: bool,
    pub extend_on_failure_while_locked: bool,
    pub lock_root: bool,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub max_tracked_keys: usize,
    pub familiar_enabled: bool,
    pub familiar_remember: Duration,
    pub allow_users: Vec<String>,
    pub allow_rhosts: Vec<IpNet>,
    pub deny_rhosts: Vec<IpNet>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    pub max_events: u64,
    pub max_age: Duration,
}

/// Who must give a TOTP code, and who is spared.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TotpPolicy {
    pub required_for_users: Vec<String>,
    pub required_for_groups: Vec<String>,
    /// `None`: every service.
    pub services: Option<Vec<String>>,
    pub optional: bool,
    /// Required but not enrolled users are let in, with a warning, before this.
    pub grace_until: Option<crate::time::Time>,
    pub trusted_rhosts: Vec<IpNet>,
    pub remember: Option<Duration>,
    pub self_enroll: bool,
    pub issuer: String,
}

/// The whole validated file.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    /// Members may call the mutating D-Bus methods and read others' data.
    pub admin_group: String,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub audit: Audit,
    pub policy: Policy,
    pub totp: TotpPolicy,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
        raw.check(path, text)?;
        Ok(raw.into_config(path.to_path_buf()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_socket")]
    socket: PathBuf,
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default = "default_admin_group")]
    admin_group: String,
    #[serde(default = "secs::<60>", deserialize_with = "positive_duration")]
    attempt_timeout: Duration,
    #[serde(default = "secs::<86400>", deserialize_with = "positive_duration")]
    escalation_memory: Duration,
    #[serde(default = "yes")]
    reset_on_success: bool,
    #[serde(default = "yes")]
    extend_on_failure_while_locked: bool,
    #[serde(default)]
    lock_root: bool,
    #[serde(default = "v4_default", deserialize_with = "prefix_v4")]
    ipv4_prefix: u8,
    #[serde(default = "v6_default", deserialize_with = "prefix_v6")]
    ipv6_prefix: u8,
    #[serde(default = "max_keys_default")]
    max_tracked_keys: Spanned<u64>,
    #[serde(default)]
    familiar: RawFamiliar,
    #[serde(default)]
    allow: RawAllow,
    #[serde(default)]
    deny: RawDeny,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    totp: RawTotp,
    #[serde(default = "default_rules")]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFamiliar {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "secs::<2592000>", deserialize_with = "positive_duration")]
    remember: Duration,
}

impl Default for RawFamiliar {
    fn default() -> Self {
        RawFamiliar {
            enabled: true,
            remember: secs::<2592000>(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    rhosts: Vec<Cidr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTotp {
    #[serde(default)]
    required_for_users: Vec<String>,
    #[serde(default)]
    required_for_groups: Vec<String>,
    #[serde(default)]
    services: Option<Vec<String>>,
    #[serde(default = "yes")]
    optional: bool,
    #[serde(default)]
    grace_until: Option<types::Date>,
    #[serde(default)]
    trusted_rhosts: Vec<Cidr>,
    #[serde(default)]
    remember: Option<types::Dur>,
    #[serde(default)]
    self_enroll: bool,
    #[serde(default = "default_issuer")]
    issuer: String,
}

impl Default for RawTotp {
    fn default() -> Self {
        RawTotp {
            required_for_users: Vec::new(),
            required_for_groups: Vec::new(),
            services: None,
            optional: true,
            grace_until: None,
            trusted_rhosts: Vec::new(),
            remember: None,
            self_enroll: false,
            issuer: default_issuer(),
        }
    }
}

fn default_issuer() -> String {
    "warden".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDeny {
    #[serde(default)]
    rhosts: Vec<Cidr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default = "max_events_default")]
    max_events: u64,
    #[serde(default = "secs::<7776000>", deserialize_with = "positive_duration")]
    max_age: Duration,
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            max_events: max_events_default(),
            max_age: Duration::from_secs(7_776_000),
        }
    }
}

impl RawConfig {
    /// The checks that span several values; single values are checked as they parse.
    fn check(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            ConfigError::at(path, text, Some(span), None, message)
        };
        if self.totp.issuer.contains(':') || self.totp.issuer.is_empty() {
            return Err(ConfigError::at(
                path,
                text,
                None,
                Some("totp.issuer"),
                "must be a non-empty name without ':' (authenticator apps split on it)".into(),
            ));
        }
        if *self.max_tracked_keys.get_ref() < 1000 {
            return Err(at(
                self.max_tracked_keys.span(),
                "must be at least 1000, so that eviction cannot thrash".into(),
            ));
        }
        for (i, rule) in self.rule.iter().enumerate() {
            let name = rule.name.get_ref();
            if self.rule[..i].iter().any(|r| r.name.get_ref() == name) {
                return Err(at(
                    rule.name.span(),
                    format!("rule name \"{name}\" is used twice; give each [[rule]] its own name"),
                ));
            }
            if let (Some(max), Lockout::For(lockout)) = (&rule.max_lockout, rule.lockout.0) {
                if max.get_ref().0 < lockout {
                    return Err(at(
                        max.span(),
                        "max_lockout is shorter than lockout; raise it or remove it".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn into_config(self, path: PathBuf) -> Config {
        let rules = self.rule.into_iter().map(RawRule::into_rule).collect();
        let t = self.totp;
        let totp = TotpPolicy {
            required_for_users: t.required_for_users,
            required_for_groups: t.required_for_groups,
            services: t.services,
            optional: t.optional,
            grace_until: t.grace_until.map(|d| d.0),
            trusted_rhosts: t.trusted_rhosts.into_iter().map(|c| c.0).collect(),
            remember: t.remember.map(|d| d.0),
            self_enroll: t.self_enroll,
            issuer: t.issuer,
        };
        Config {
            path,
            admin_group: self.admin_group,
            socket: self.socket,
            state_dir: self.state_dir,
            totp,
            audit: Audit {
                max_events: self.audit.max_events,
                max_age: self.audit.max_age,
            },
            policy: Policy {
                rules,
                attempt_timeout: self.attempt_timeout,
                escalation_memory: self.escalation_memory,
                reset_on_success: self.reset_on_success,
                extend_on_failure_while_locked: self.extend_on_failure_while_locked,
                lock_root: self.lock_root,
                ipv4_prefix: self.ipv4_prefix,
                ipv6_prefix: self.ipv6_prefix,
                max_tracked_keys: usize::try_from(self.max_tracked_keys.into_inner())
                    .unwrap_or(usize::MAX),
                familiar_enabled: self.familiar.enabled,
                familiar_remember: self.familiar.remember,
                allow_users: self.allow.users,
                allow_rhosts: self.allow.rhosts.into_iter().map(|c| c.0).collect(),
                deny_rhosts: self.deny.rhosts.into_iter().map(|c| c.0).collect(),
            },
        }
    }
}

fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET)
}
fn default_admin_group() -> String {
    "warden-admin".into()
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn yes() -> bool {
    true
}
fn v4_default() -> u8 {
    32
}
fn v6_default() -> u8 {
    64
}
fn max_keys_default() -> Spanned<u64> {
    Spanned::new(0..0, 1_000_000)
}
fn max_events_default() -> u64 {
    100_000
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
