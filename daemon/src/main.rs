//! wardend: the warden daemon.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use warden_daemon::config::{Config, DEFAULT_PATH};
use warden_daemon::describe::describe;
use warden_daemon::engine::Engine;
use warden_daemon::log::Log;
use warden_daemon::service::Warden;
use warden_daemon::store::{RedbStore, Store, Writer};
use warden_daemon::time::Time;

/// Tracks failed logins reported by pam_warden and decides whether the next
/// attempt may go ahead.
#[derive(Parser)]
#[command(name = "wardend", version)]
struct Args {
    /// The configuration file.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_PATH)]
    config: PathBuf,
    /// Validate the configuration, print the effective rules, and exit.
    #[arg(long)]
    check_config: bool,
    /// Log to stderr instead of syslog (for foreground runs).
    #[arg(long)]
    log_stderr: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wardend: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        print!("{}", describe(&config));
        return ExitCode::SUCCESS;
    }
    let log = Arc::new(if args.log_stderr {
        Log::stderr()
    } else {
        Log::syslog()
    });
    match run(config, log.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.error(&e);
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config, log: Arc<Log>) -> Result<(), String> {
    // Everything wardend creates is root-only unless it says otherwise.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let now = Time::now();
    let opened = RedbStore::open(&config.state_dir, now).map_err(|e| e.to_string())?;
    if let Some((aside, why)) = &opened.moved_aside {
        log.error(&format!(
            "store-unusable moved_to={} reason={} action=\"started with an empty store\"",
            warden_daemon::logline::quote(&aside.display().to_string()),
            warden_daemon::logline::quote(why),
        ));
    }
    let store: Arc<dyn Store> = Arc::new(opened.store);
    let snapshot = store.load().map_err(|e| e.to_string())?;
    let mut engine = Engine::new(config.policy.clone(), epoch(now));
    let (keys, locks) = (
        snapshot.keys.len(),
        snapshot
            .keys
            .iter()
            .filter(|(_, s)| s.lock().is_some())
            .count(),
    );
    engine.restore(snapshot.keys, snapshot.familiar);
    let totp_records = snapshot.totp;
    let writer =
        Writer::spawn(store.clone()).map_err(|e| format!("cannot start the store writer: {e}"))?;
    let warden = Arc::new(Warden::new(config, engine, store, writer, log.clone(), now));
    warden
        .restore_totp(totp_records)
        .map_err(|e| e.to_string())?;
    log.info(&format!(
        "started version={} keys={keys} locks={locks}",
        env!("CARGO_PKG_VERSION")
    ));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let socket = warden.config().socket.clone();
        let (listener, activated) = warden_daemon::server::listen(&socket)
            .map_err(|e| format!("cannot listen on {}: {e}. Check that the directory exists and wardend runs as root", socket.display()))?;
        tokio::spawn(warden_daemon::server::serve(listener, warden.clone()));
        let how = if activated { "systemd" } else { "bound" };
        log.info(&format!("listening socket={} via={how}", warden_daemon::logline::quote(&socket.display().to_string())));
        warden_daemon::notify::ready();
        tokio::spawn(warden_daemon::bus::run(warden.clone()));
        let ticker = warden.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                every.tick().await;
                ticker.tick(Time::now()).await;
                n += 1;
                if n % 60 == 0 {
                    ticker.housekeeping(Time::now()).await;
                }
            }
        });
        wait_for_stop().await;
        log.info("stopping");
        if let Err(e) = warden.flush().await {
            log.error(&format!("store-error op=flush error={}", warden_daemon::logline::quote(&e.to_string())));
        }
        Ok::<(), String>(())
    })
}

/// Differs between runs, so attempt ids from before a restart are recognised.
fn epoch(now: Time) -> u32 {
    let mixed = now.0 ^ (u64::from(std::process::id()) << 20);
    (mixed ^ (mixed >> 32)) as u32
}

async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
