//! wardenctl: the admin tool for wardend.
//!
//! Exit codes: 0 ok, 1 error, 2 usage, 3 not authorized, 4 daemon unreachable.
// The workspace [lints] table denies these too; said here as well, where a
// reader of the crate looks first.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod client;
mod commands;
mod docs;
mod doctor;
mod explain;
mod fallback;
mod fleet;
mod human;
mod metrics;
mod totp;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    fallback::set_root_socket(cli.root_socket.clone());
    fallback::set_config(cli.config.clone());
    let result = match cli.command {
        Command::Config {
            command: ConfigCommand::Check { file },
        } => commands::config_check(file.as_deref(), json),
        Command::GenerateDocs { dir } => docs::generate(&dir),
        command => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(async move {
                match command {
                    Command::Status => commands::status(json).await,
                    Command::Locks => commands::locks(json).await,
                    Command::Failures(a) => commands::failures(a, json).await,
                    Command::History(a) => commands::history(a, json).await,
                    Command::Unlock(a) => commands::unlock(a, json).await,
                    Command::Lock(a) => commands::lock(a, json).await,
                    Command::UserStatus { user } => commands::user_status(user, json).await,
                    Command::RhostStatus { rhost } => explain::rhost_status(&rhost, json).await,
                    Command::Explain(a) => explain::explain(a, json).await,
                    Command::Watch => commands::watch(json).await,
                    Command::Metrics { output } => metrics::metrics(output.as_deref()).await,
                    Command::Reload => commands::reload(json).await,
                    Command::Doctor { pam_dir } => commands::doctor(&pam_dir, json).await,
                    Command::Totp { command } => totp::run(command, json).await,
                    Command::Fleet {
                        command: cli::FleetCommand::Status,
                    } => fleet::status(json).await,
                    Command::Config { .. } | Command::GenerateDocs { .. } => Ok(()),
                }
            }),
            Err(e) => Err(client::CtlError::Failed(format!("cannot start: {e}"))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(client::CtlError::Reported(code)) => ExitCode::from(code),
        // A script asked for JSON: it gets its error as JSON on stdout too.
        Err(e) if json => {
            let _ = commands::print_json(&serde_json::json!({
                "error": e.to_string(),
                "exit_code": e.exit_code(),
            }));
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            eprintln!("wardenctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
