//! The configuration file: TOML, validated as it is read.
//!
//! Every value is checked while it is deserialized, so that each error carries the
//! span of the offending value and can name the file, the line and the key.

mod error;
mod fleet;
mod hooks;
mod lint;
mod messages;
mod scope;
mod types;

pub use error::ConfigError;
pub use fleet::{Fleet, OnUnavailable};
pub use hooks::{Hook, HookEvent};
pub use lint::{lint, SystemFacts};
pub use messages::{Messages, PLACEHOLDERS};
pub use scope::UserScope;
pub use types::{Field, Lockout, Mode};

use ipnet::IpNet;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use types::{default_rules, positive_duration, prefix_v4, prefix_v6, Cidr, RawRule};

pub const DEFAULT_PATH: &str = "/etc/warden/warden.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/warden";
/// Members of this group may use wardenctl's admin commands; the API crate
/// holds the name, so that wardenctl's messages name the same group.
pub use warden_api::DEFAULT_ADMIN_GROUP;
/// The module reads the same constants, so both ends agree without a config.
pub use warden_proto::args::{DEFAULT_SOCKET, ROOT_SOCKET_NAME};

/// The rule name of locks set by an admin.
pub const ADMIN_RULE: &str = "admin";
/// The rule name of locks on a whole address prefix (see `[aggregate]`).
pub const PREFIX_RULE: &str = "prefix";
/// The rule that counts wrong codes on every service, beside the user rules.
pub const CODE_RULE: &str = "code";
/// Rule names wardend keeps for itself.
pub const RESERVED_RULES: [&str; 3] = [ADMIN_RULE, PREFIX_RULE, CODE_RULE];

/// The root-only socket that goes with a public socket path.
pub fn root_socket_for(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or(Path::new("/"))
        .join(ROOT_SOCKET_NAME)
}

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
    /// A random extra of up to this much on each lock's end (and its
    /// restarts), so that a guesser cannot time the unlock; zero: none.
    pub jitter: Duration,
    /// Counts and locks, but refuses nothing (`mode = "observe"`).
    pub observe: bool,
    /// Which users it applies to.
    pub scope: UserScope,
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
    /// Attempts begun and not yet ended, in all and per unprivileged uid.
    pub max_attempts_in_flight: usize,
    pub max_attempts_per_uid: usize,
    /// Keys one user name may hold before its new keys fold into one per rule.
    pub max_keys_per_user: usize,
    /// Locks on whole prefixes; `None` when `[aggregate] enabled = false`.
    pub aggregate: Option<Aggregate>,
    /// Counts wrong codes on every service, beside the rules that track
    /// `user`: no rule's `services`, `users` or `groups` can make guessing
    /// codes unlimited anywhere.
    pub code_rule: Rule,
    /// `mode = "observe"` at the top: the deny list, prefix locks and the
    /// wrong-code rule refuse nothing either. Admin locks still do.
    pub observe: bool,
}

impl Policy {
    /// A rule by name: the configured ones, and wardend's own `prefix` and `code`.
    pub fn rule_named(&self, name: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.name == name)
            .or_else(|| {
                self.aggregate
                    .as_ref()
                    .map(|a| &a.rule)
                    .filter(|r| r.name == name)
            })
            .or_else(|| Some(&self.code_rule).filter(|r| r.name == name))
    }

    /// The names of the rules in observe mode.
    pub fn observing(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|r| r.observe)
            .map(|r| r.name.as_str())
            .collect()
    }

    /// Whether the locks of this rule refuse nothing (observe mode). An
    /// admin's lock, or a lock of a rule no longer configured, is enforced.
    pub fn observes(&self, rule: &str) -> bool {
        self.rule_named(rule).is_some_and(|r| r.observe)
    }
}

/// When many locks come from one prefix, the prefix itself is locked.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// Live locks tipped from one prefix before the prefix is locked.
    pub locks: u32,
    /// The prefix lock's length and escalation, as a rule named `prefix`.
    pub rule: Rule,
}

/// How user names are folded before they are keyed, for directories that
/// treat `Admin` and `admin` as one account (sssd, AD).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct UserNames {
    pub fold_case: bool,
    /// `@realm` suffixes to strip (compared without case); `"*"` strips any.
    pub strip_realms: Vec<String>,
}

impl UserNames {
    /// The name as keys, the allow list and TOTP records see it.
    pub fn fold(&self, user: &str) -> String {
        let mut name = user;
        if let Some((local, realm)) = user.rsplit_once('@') {
            let strip = self
                .strip_realms
                .iter()
                .any(|r| r == "*" || r.eq_ignore_ascii_case(realm));
            if strip && !local.is_empty() {
                name = local;
            }
        }
        if self.fold_case {
            name.to_lowercase()
        } else {
            name.to_string()
        }
    }

    pub fn is_identity(&self) -> bool {
        !self.fold_case && self.strip_realms.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    pub max_events: u64,
    pub max_age: Duration,
    /// One name's events beyond this push out that name's oldest, no one else's.
    pub max_events_per_user: u64,
    /// Trimming for `max_events` takes events of busier names first and keeps
    /// each name's newest this many while others have more.
    pub min_events_per_user: u64,
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
    /// Only root may connect: sshd, sudo, su and login use it, so local users
    /// flooding `socket` cannot delay them.
    pub root_socket: PathBuf,
    pub state_dir: PathBuf,
    pub audit: Audit,
    pub policy: Policy,
    pub totp: TotpPolicy,
    pub users: UserNames,
    /// `None`: this host decides alone (the default).
    pub fleet: Option<Fleet>,
    /// Commands run on lock events, in order.
    pub hooks: Vec<Hook>,
    /// `None`: locks stay in PAM (the default).
    pub firewall: Option<Firewall>,
    /// A wrong password that repeats one of the user's last three within the
    /// rules' window is recorded but not counted again.
    pub same_password_once: bool,
    /// What refused users read, and the catalogues that translate it.
    pub messages: std::sync::Arc<Messages>,
}

/// `[firewall]`: where address locks are also dropped at the packet level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// The sets of the `inet warden` table that the shipped
    /// `/usr/share/warden/warden.nft` defines.
    Nftables,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirewall {
    backend: RawFirewallBackend,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawFirewallBackend {
    Nftables,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_text(path).map(|(c, _)| c)
    }

    /// The config and the text it came from (for [`lint`]).
    pub fn load_with_text(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path).map(|c| (c, text))
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
    socket: Spanned<PathBuf>,
    #[serde(default)]
    root_socket: Option<Spanned<PathBuf>>,
    #[serde(default = "default_state_dir")]
    state_dir: Spanned<PathBuf>,
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
    #[serde(default)]
    mode: Option<Spanned<Mode>>,
    #[serde(default = "yes")]
    same_password_once: bool,
    #[serde(default = "v4_default", deserialize_with = "prefix_v4")]
    ipv4_prefix: u8,
    #[serde(default = "v6_default", deserialize_with = "prefix_v6")]
    ipv6_prefix: u8,
    #[serde(default = "max_keys_default")]
    max_tracked_keys: Spanned<u64>,
    #[serde(default = "in_flight_default", deserialize_with = "types::count")]
    max_attempts_in_flight: u64,
    #[serde(default = "per_uid_default", deserialize_with = "types::count")]
    max_attempts_per_uid: u64,
    #[serde(default = "per_user_keys_default", deserialize_with = "types::count")]
    max_keys_per_user: u64,
    #[serde(default)]
    aggregate: RawAggregate,
    #[serde(default)]
    users: RawUsers,
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
    #[serde(default)]
    fleet: Option<fleet::RawFleet>,
    #[serde(default)]
    hook: Vec<hooks::RawHook>,
    #[serde(default)]
    firewall: Option<RawFirewall>,
    #[serde(default)]
    messages: messages::RawMessages,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAggregate {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "agg_v4_default", deserialize_with = "prefix_v4")]
    ipv4_prefix: u8,
    #[serde(default = "agg_v6_default", deserialize_with = "prefix_v6")]
    ipv6_prefix: u8,
    #[serde(default = "agg_locks_default", deserialize_with = "types::count")]
    locks: u64,
    #[serde(default = "secs::<3600>", deserialize_with = "positive_duration")]
    lockout: Duration,
    #[serde(default = "two", deserialize_with = "types::escalate")]
    escalate: f64,
    #[serde(default = "secs::<604800>", deserialize_with = "positive_duration")]
    max_lockout: Duration,
}

impl Default for RawAggregate {
    fn default() -> Self {
        RawAggregate {
            enabled: true,
            ipv4_prefix: agg_v4_default(),
            ipv6_prefix: agg_v6_default(),
            locks: agg_locks_default(),
            lockout: secs::<3600>(),
            escalate: two(),
            max_lockout: secs::<604800>(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUsers {
    #[serde(default)]
    fold_case: bool,
    #[serde(default)]
    strip_realms: Vec<String>,
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
    #[serde(default, deserialize_with = "types::services")]
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
    #[serde(default = "max_events_default", deserialize_with = "types::count")]
    max_events: u64,
    #[serde(
        default = "audit_max_age_default",
        deserialize_with = "positive_duration"
    )]
    max_age: Duration,
    #[serde(default = "per_user_events_default", deserialize_with = "types::count")]
    max_events_per_user: u64,
    #[serde(default = "min_user_events_default", deserialize_with = "types::count")]
    min_events_per_user: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        let a = Audit::default();
        RawAudit {
            max_events: a.max_events,
            max_age: a.max_age,
            max_events_per_user: a.max_events_per_user,
            min_events_per_user: a.min_events_per_user,
        }
    }
}

/// The one place the audit defaults are written: the config's serde defaults
/// and the store's retention before a config is set both read it.
impl Default for Audit {
    fn default() -> Self {
        Audit {
            max_events: 100_000,
            max_age: Duration::from_secs(90 * 86_400),
            max_events_per_user: 1_000,
            min_events_per_user: 50,
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
        for (key, p) in [("socket", &self.socket), ("state_dir", &self.state_dir)]
            .into_iter()
            .chain(self.root_socket.as_ref().map(|p| ("root_socket", p)))
        {
            if !p.get_ref().is_absolute() {
                return Err(at(
                    p.span(),
                    format!(
                        "{key} must be an absolute path, not \"{}\"",
                        p.get_ref().display()
                    ),
                ));
            }
        }
        if self.audit.min_events_per_user > self.audit.max_events_per_user {
            return Err(ConfigError::at(
                path,
                text,
                None,
                Some("audit.min_events_per_user"),
                "is larger than audit.max_events_per_user; lower it or raise the other".into(),
            ));
        }
        if *self.max_tracked_keys.get_ref() < 1000 {
            return Err(at(
                self.max_tracked_keys.span(),
                "must be at least 1000, so that eviction cannot thrash".into(),
            ));
        }
        if self.fleet.is_some() {
            // The fleet's Redis library decides alone; it has no observe mode,
            // and a host that believed itself observing would be enforcing.
            let observing = self
                .mode
                .iter()
                .chain(self.rule.iter().filter_map(|r| r.mode.as_ref()))
                .find(|m| *m.get_ref() == Mode::Observe);
            if let Some(m) = observing {
                return Err(at(
                    m.span(),
                    "observe mode is not available with [fleet]: try it on one host first, then \
                     join the fleet with mode = \"enforce\""
                        .into(),
                ));
            }
        }
        if let Some(f) = &self.fleet {
            f.check().map_err(|(span, why)| {
                let span = (!span.is_empty()).then_some(span);
                let field = span.is_none().then_some("fleet");
                ConfigError::at(path, text, span, field, why)
            })?;
        }
        self.messages.check().map_err(|(span, why)| {
            let span = (!span.is_empty()).then_some(span);
            let field = span.is_none().then_some("messages");
            ConfigError::at(path, text, span, field, why)
        })?;
        for hook in &self.hook {
            hook.check().map_err(|(span, why)| {
                let span = (!span.is_empty()).then_some(span);
                let field = span.is_none().then_some("hook");
                ConfigError::at(path, text, span, field, why)
            })?;
        }
        for (i, rule) in self.rule.iter().enumerate() {
            let name = rule.name.get_ref();
            if self.rule[..i].iter().any(|r| r.name.get_ref() == name) {
                return Err(at(
                    rule.name.span(),
                    format!("rule name \"{name}\" is used twice; give each [[rule]] its own name"),
                ));
            }
            if let (Some(j), Lockout::Permanent) = (&rule.jitter, rule.lockout.0) {
                return Err(at(
                    j.span(),
                    "a permanent lockout has no end to blur; remove jitter or give lockout a length".into(),
                ));
            }
            if let Some(j) = rule
                .jitter
                .as_ref()
                .filter(|j| j.get_ref().0 > Duration::from_secs(86_400))
            {
                return Err(at(j.span(), "must be at most 1d".into()));
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
        let mode = self.mode.map_or(Mode::Enforce, Spanned::into_inner);
        let observe = mode == Mode::Observe;
        let users = UserNames {
            fold_case: self.users.fold_case,
            strip_realms: self.users.strip_realms,
        };
        let fold = |v: Vec<String>| -> Vec<String> { v.iter().map(|u| users.fold(u)).collect() };
        let rules: Vec<Rule> = self
            .rule
            .into_iter()
            .map(|r| {
                let mut rule = r.into_rule(mode);
                rule.scope.users = rule.scope.users.map(fold);
                rule.scope.exclude_users = fold(std::mem::take(&mut rule.scope.exclude_users));
                rule
            })
            .collect();
        let code_rule = Rule {
            observe,
            ..code_rule()
        };
        let a = self.aggregate;
        let aggregate = a.enabled.then(|| Aggregate {
            ipv4_prefix: a.ipv4_prefix,
            ipv6_prefix: a.ipv6_prefix,
            locks: u32::try_from(a.locks).unwrap_or(u32::MAX),
            rule: Rule {
                name: PREFIX_RULE.into(),
                track: vec![Field::Rhost],
                limit: u32::try_from(a.locks).unwrap_or(u32::MAX),
                window: self.escalation_memory,
                lockout: Lockout::For(a.lockout),
                escalate: a.escalate,
                max_lockout: a.max_lockout.max(a.lockout),
                services: None,
                jitter: Duration::ZERO,
                observe,
                scope: UserScope::default(),
            },
        });
        let t = self.totp;
        let totp = TotpPolicy {
            required_for_users: fold(t.required_for_users),
            required_for_groups: t.required_for_groups,
            services: t.services,
            optional: t.optional,
            grace_until: t.grace_until.map(|d| d.0),
            trusted_rhosts: t.trusted_rhosts.into_iter().map(|c| c.0).collect(),
            remember: t.remember.map(|d| d.0),
            self_enroll: t.self_enroll,
            issuer: t.issuer,
        };
        let socket = self.socket.into_inner();
        let root_socket = self
            .root_socket
            .map_or_else(|| root_socket_for(&socket), Spanned::into_inner);
        Config {
            path,
            admin_group: self.admin_group,
            socket,
            root_socket,
            state_dir: self.state_dir.into_inner(),
            totp,
            audit: Audit {
                max_events: self.audit.max_events,
                max_age: self.audit.max_age,
                max_events_per_user: self.audit.max_events_per_user,
                min_events_per_user: self.audit.min_events_per_user,
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
                allow_users: fold(self.allow.users),
                allow_rhosts: self.allow.rhosts.into_iter().map(|c| c.0).collect(),
                deny_rhosts: self.deny.rhosts.into_iter().map(|c| c.0).collect(),
                max_attempts_in_flight: usize::try_from(self.max_attempts_in_flight)
                    .unwrap_or(usize::MAX),
                max_attempts_per_uid: usize::try_from(self.max_attempts_per_uid)
                    .unwrap_or(usize::MAX),
                max_keys_per_user: usize::try_from(self.max_keys_per_user).unwrap_or(usize::MAX),
                aggregate,
                code_rule,
                observe,
            },
            users,
            fleet: self.fleet.map(fleet::RawFleet::into_fleet),
            hooks: self
                .hook
                .into_iter()
                .map(hooks::RawHook::into_hook)
                .collect(),
            same_password_once: self.same_password_once,
            messages: std::sync::Arc::new(self.messages.into_messages()),
            firewall: self.firewall.map(|f| match f.backend {
                RawFirewallBackend::Nftables => Firewall::Nftables,
            }),
        }
    }
}

/// Counts wrong codes everywhere: as the shipped user rule.
fn code_rule() -> Rule {
    let m = |n: u64| Duration::from_secs(60 * n);
    Rule {
        name: CODE_RULE.into(),
        track: vec![Field::User],
        limit: 5,
        window: m(15),
        lockout: Lockout::For(m(15)),
        escalate: 2.0,
        max_lockout: m(24 * 60),
        services: None,
        jitter: Duration::ZERO,
        observe: false,
        scope: UserScope::default(),
    }
}

fn default_socket() -> Spanned<PathBuf> {
    Spanned::new(0..0, PathBuf::from(DEFAULT_SOCKET))
}
fn default_admin_group() -> String {
    DEFAULT_ADMIN_GROUP.into()
}
fn default_state_dir() -> Spanned<PathBuf> {
    Spanned::new(0..0, PathBuf::from(DEFAULT_STATE_DIR))
}
fn two() -> f64 {
    2.0
}
fn agg_v4_default() -> u8 {
    24
}
fn agg_v6_default() -> u8 {
    48
}
fn agg_locks_default() -> u64 {
    8
}
fn in_flight_default() -> u64 {
    65_536
}
fn per_uid_default() -> u64 {
    16
}
fn per_user_keys_default() -> u64 {
    32
}
fn per_user_events_default() -> u64 {
    Audit::default().max_events_per_user
}
fn min_user_events_default() -> u64 {
    Audit::default().min_events_per_user
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
    Audit::default().max_events
}
fn audit_max_age_default() -> Duration {
    Audit::default().max_age
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;
