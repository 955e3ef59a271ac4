//! The command line, as clap sees it; also the source of the man page and the
//! shell completions.

use clap::{ArgGroup, Args, Parser, Subcommand};
use std::path::PathBuf;

/// Admin tool for wardend: list, lock and unlock, over the system D-Bus.
#[derive(Parser)]
#[command(name = "wardenctl", version, about, long_about = None)]
pub struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// wardend's root-only socket, asked when the system bus cannot be
    /// used (root only).
    #[arg(long, global = true, value_name = "PATH", default_value = crate::fallback::DEFAULT_ROOT_SOCKET)]
    pub root_socket: PathBuf,
    /// wardend's configuration, for reading its store when no wardend runs
    /// (`locks` and `history`, root only).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "/etc/warden/warden.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The daemon's version, uptime, counts, store size and paths.
    Status,
    /// Every active lock.
    Locks,
    /// Recent failures from the audit log (history --kind failure,totp,abandoned).
    Failures(FailuresArgs),
    /// Every kind of event from the audit log, newest first: successes,
    /// failures, codes, refusals, locks and unlocks (admins' included).
    History(HistoryArgs),
    /// Lift locks and clear counters.
    Unlock(UnlockArgs),
    /// Lock a user or an address.
    Lock(LockArgs),
    /// Whether a user is locked and for how long (your own without USER).
    UserStatus {
        /// The user; you by default.
        user: Option<String>,
    },
    /// What stands against an address: its counts, and admin, range and
    /// prefix locks covering it.
    RhostStatus {
        /// The address.
        rhost: String,
    },
    /// What would happen to a login attempt now, and why: every key it
    /// counts against, any lock that refuses it, whether the source is
    /// familiar, and whether a code would be asked. Changes nothing.
    Explain(ExplainArgs),
    /// Metrics in the Prometheus text format, for node_exporter's textfile
    /// collector (warden-metrics.timer writes them once a minute).
    Metrics {
        /// Write to this file atomically instead of printing.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print lock and unlock events as they happen.
    Watch,
    /// Ask wardend to re-read its configuration; a bad file is refused.
    Reload,
    /// TOTP second factor: enroll, confirm, status, remove, recovery codes.
    Totp {
        #[command(subcommand)]
        command: TotpCommand,
    },
    /// Read the PAM stacks and say, per service, whether pam_warden is wired
    /// completely, partly or not at all, and which arguments it would refuse.
    Doctor {
        /// The PAM directory.
        #[arg(long, value_name = "DIR", default_value = "/etc/pam.d")]
        pam_dir: PathBuf,
    },
    /// The fleet this host shares its lockout with (`[fleet]`).
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write the man page and shell completions into DIR.
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
}

#[derive(Subcommand)]
pub enum FleetCommand {
    /// The backend, this host's health, and every host seen recently with
    /// its policy hash, lag and state; warns when hosts run different rules.
    Status,
}

#[derive(Subcommand)]
pub enum TotpCommand {
    /// Start an enrollment: prints the otpauth URI, a QR code and recovery
    /// codes, once. You by default (needs self_enroll = true).
    Enroll { user: Option<String> },
    /// Activate an enrollment with a first code: `confirm [USER] CODE`.
    #[command(arg_required_else_help = true)]
    Confirm {
        /// USER CODE, or just CODE for yourself.
        #[arg(num_args = 1..=2, value_names = ["USER", "CODE"])]
        args: Vec<String>,
    },
    /// Whether a user is enrolled, and recovery codes left.
    Status { user: Option<String> },
    /// Remove a user's enrollment (admins only).
    Remove { user: String },
    /// Replace a user's recovery codes; the old ones stop working. For your
    /// own codes, give a current code from your authenticator with --code;
    /// an admin replacing someone's needs none.
    RecoveryCodes {
        user: Option<String>,
        /// A current code from the authenticator app (6 digits).
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file offline, with the daemon's own errors.
    Check {
        /// The file; /etc/warden/warden.toml by default.
        file: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct FailuresArgs {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub rhost: Option<String>,
    /// How far back, e.g. 30m, 1h, 7d.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// At most this many (default 100).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["user", "user_flag", "rhost", "all", "key"])))]
pub struct UnlockArgs {
    pub user: Option<String>,
    /// The user, as a flag (the same as the positional USER).
    #[arg(long = "user", id = "user_flag", value_name = "USER")]
    pub user_flag: Option<String>,
    #[arg(long, value_name = "ADDR")]
    pub rhost: Option<String>,
    /// Every lock and counter; asks first on a terminal, else needs --yes.
    #[arg(long)]
    pub all: bool,
    /// Do not ask before --all.
    #[arg(long)]
    pub yes: bool,
    /// One key, as `wardenctl locks` prints it: "RULE field=value ...".
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["user", "rhost"])))]
#[command(group(ArgGroup::new("length").required(true).args(["for_", "permanent"])))]
pub struct LockArgs {
    pub user: Option<String>,
    #[arg(long, value_name = "ADDR")]
    pub rhost: Option<String>,
    /// How long, e.g. 30m, 1h, 7d.
    #[arg(long = "for", id = "for_", value_name = "DURATION")]
    pub for_: Option<String>,
    /// Until an admin unlocks.
    #[arg(long)]
    pub permanent: bool,
    /// Why, for the audit log.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Args)]
pub struct ExplainArgs {
    pub user: String,
    /// Where the attempt comes from; a local login without it.
    #[arg(long, value_name = "ADDR")]
    pub rhost: Option<String>,
    /// The PAM service.
    #[arg(long, value_name = "SERVICE", default_value = "sshd")]
    pub service: String,
    /// The tty, for rules that track it (sshd sets "ssh").
    #[arg(long, value_name = "TTY")]
    pub tty: Option<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long, value_name = "ADDR")]
    pub rhost: Option<String>,
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Only these kinds: success, failure, totp, abandoned, aborted,
    /// refused, locked, unlocked (repeat, or separate with commas).
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<String>,
    /// From this long ago, e.g. 30m, 1h, 7d.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Up to this long ago, e.g. 10m.
    #[arg(long, value_name = "DURATION")]
    pub until: Option<String>,
    /// At most this many (default 100).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
}
