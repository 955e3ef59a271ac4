//! wardend: the warden daemon.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use warden_daemon::accounts::LiveSystem;
use warden_daemon::config::{lint, Config, DEFAULT_PATH};
use warden_daemon::describe::describe;
use warden_daemon::dirs;
use warden_daemon::engine::Engine;
use warden_daemon::log::Log;
use warden_daemon::logline::quote;
use warden_daemon::server::{self, Door};
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
    /// Print this man page (roff) and exit.
    #[arg(long, hide = true)]
    man: bool,
    /// Read the store read-only while wardend is stopped, print `locks` or
    /// `history` (the newest 10,000 events) as JSON, and exit.
    #[arg(long, value_name = "WHAT", value_parser = ["locks", "history"])]
    read_store: Option<String>,
    /// Print the Redis function library this build runs in a fleet, and
    /// exit: for an admin to load where hosts' ACL users may not
    /// (`redis-cli FUNCTION LOAD REPLACE "$(wardend --fleet-library)"`).
    #[arg(long)]
    fleet_library: bool,
}

/// `--read-store`: what wardenctl shows when no wardend answers, straight
/// from the store, without writing to it.
fn read_store(config: &Config, what: &str) -> ExitCode {
    use warden_daemon::service::LockView;
    use warden_daemon::store::{AuditQuery, StoreReader};
    let reader = match StoreReader::open(&config.state_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wardend: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = Time::now();
    let json = match what {
        "locks" => reader.load().map(|snap| {
            let mut locks: Vec<LockView> = snap
                .keys
                .iter()
                .filter(|(_, st)| st.lock().is_some_and(|l| !l.expired(now)))
                .filter_map(|(k, st)| LockView::of(k, st))
                .collect();
            locks.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.key.cmp(&b.key)));
            let entries: Vec<_> = locks.iter().map(warden_daemon::views::lock_entry).collect();
            serde_json::to_string(&entries)
        }),
        _ => reader
            .audit(&AuditQuery {
                limit: 10_000,
                ..AuditQuery::default()
            })
            .map(|events| {
                let entries: Vec<_> = events
                    .into_iter()
                    .map(warden_daemon::views::audit_entry)
                    .collect();
                serde_json::to_string(&entries)
            }),
    };
    match json {
        Ok(Ok(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("wardend: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("wardend: {e}");
            ExitCode::FAILURE
        }
    }
}

const MAN_EXTRA: &str = r#".SH SIGNALS
.TP
.B SIGHUP
Re-read the configuration, as \fBwardenctl reload\fR does; a file with an error is refused and the running configuration stays.
.TP
.B SIGTERM
Make every commit durable and stop.
.SH "EXIT STATUS"
.TP
.B 0
Stopped cleanly, or \-\-check\-config found the file valid.
.TP
.B 1
The configuration has an error (named by file, line and key), a directory is unsafe, or the store cannot be opened; the reason is logged.
.SH FILES
.TP
.I /etc/warden/warden.toml
The configuration; see \fBwarden.toml\fR(5).
.TP
.I /var/lib/warden/warden.redb
The store: counters, locks, familiar sources, TOTP records and the audit log; root only.
.TP
.I /run/warden/warden.sock\fR, \fI/run/warden/warden\-root.sock
The sockets pam_warden uses; the second is root's alone.
.TP
.I /usr/lib/systemd/system/wardend.service\fR, \fIwardend.socket
The units.
.SH EXAMPLES
Check a configuration before a reload:
.PP
.nf
    wardend \-\-check\-config \-\-config /etc/warden/warden.toml
.fi
.PP
Run in the foreground with the log on stderr:
.PP
.nf
    wardend \-\-log\-stderr
.fi
.SH "SEE ALSO"
.BR wardenctl (8),
.BR pam_warden (8),
.BR warden.toml (5)
"#;

/// The man page, from the same clap definition as the options themselves.
fn print_man() -> ExitCode {
    use clap::CommandFactory;
    let man = clap_mangen::Man::new(Args::command()).section("8");
    let mut page = Vec::new();
    let rendered = man
        .render_title(&mut page)
        .and_then(|()| man.render_name_section(&mut page))
        .and_then(|()| man.render_synopsis_section(&mut page))
        .and_then(|()| man.render_description_section(&mut page))
        .and_then(|()| man.render_options_section(&mut page));
    if let Err(e) = rendered {
        eprintln!("wardend: {e}");
        return ExitCode::FAILURE;
    }
    page.extend_from_slice(MAN_EXTRA.as_bytes());
    use std::io::Write;
    match std::io::stdout().write_all(&page) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.man {
        return print_man();
    }
    if args.fleet_library {
        print!("{}", warden_daemon::fleet::LIBRARY);
        return ExitCode::SUCCESS;
    }
    let (config, text) = match Config::load_with_text(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wardend: {e}");
            return ExitCode::FAILURE;
        }
    };
    let system = LiveSystem {
        pam_dir: "/etc/pam.d".into(),
    };
    if let Some(what) = &args.read_store {
        return read_store(&config, what);
    }
    let warnings = lint(&args.config, &text, &system);
    if args.check_config {
        for w in &warnings {
            eprintln!("{w}");
        }
        print!("{}", describe(&config));
        return ExitCode::SUCCESS;
    }
    let log = Arc::new(if args.log_stderr {
        Log::stderr()
    } else {
        Log::syslog()
    });
    for w in &warnings {
        log.warn(&format!("config-warning {}", quote(w)));
    }
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
    // Nothing is trusted before its directory is: root's, and writable by no
    // one else, all the way up.
    dirs::socket_dir("socket", &config.socket).map_err(|e| e.to_string())?;
    dirs::socket_dir("root_socket", &config.root_socket).map_err(|e| e.to_string())?;
    dirs::state_dir("state_dir", &config.state_dir).map_err(|e| e.to_string())?;
    dirs::store_file(
        "state_dir",
        &config.state_dir.join(warden_daemon::store::FILE_NAME),
    )
    .map_err(|e| e.to_string())?;
    let now = Time::now();
    let opened = RedbStore::open(&config.state_dir, now).map_err(|e| e.to_string())?;
    if let Some((aside, why)) = &opened.moved_aside {
        log.error(&format!(
            "store-unusable moved_to={} reason={} action=\"started with an empty store\"",
            quote(&aside.display().to_string()),
            quote(why),
        ));
    }
    let store: Arc<dyn Store> = Arc::new(opened.store);
    let snapshot = store.load().map_err(|e| e.to_string())?;
    let seed = getrandom::u64().map_err(|e| format!("no randomness for the locks' jitter: {e}"))?;
    let mut engine = Engine::new(config.policy.clone(), epoch(now)).with_jitter_seed(seed);
    engine.restore(snapshot.keys, snapshot.familiar);
    let (keys, locks) = (engine.tracked_keys(), engine.lock_count());
    let totp_records = snapshot.totp;
    // Bound once the state is loaded, so a socket that answers is a daemon
    // that is ready, and while wardend is still one thread: each socket's mode
    // comes from the umask at bind time.
    let listeners = server::listen(&config.socket, &config.root_socket)?;
    let writer =
        Writer::spawn(store.clone()).map_err(|e| format!("cannot start the store writer: {e}"))?;
    let (warden, fleet) = match config.fleet.clone() {
        None => (
            Warden::local(
                config,
                engine,
                totp_records,
                store,
                writer,
                log.clone(),
                now,
            )
            .map_err(|e| format!("cannot start the announcer: {e}"))?,
            None,
        ),
        Some(f) => {
            log.info(&format!(
                "fleet backend=redis url={} host={} prefix={} on_unavailable={}",
                quote(&f.url),
                quote(&f.host_id),
                quote(&f.prefix),
                f.on_unavailable.name()
            ));
            let (w, b) = warden_daemon::fleet::warden(
                config,
                f,
                engine,
                totp_records,
                store,
                writer,
                log.clone(),
                now,
            )?;
            if !b.shares_totp_records() {
                log.warn(&format!(
                    "fleet-totp-per-host action=\"TOTP enrollments stay on each host; to share them, set [fleet] totp_key_file (or the credential {}) on every host\"",
                    warden_daemon::fleet::KEY_CREDENTIAL
                ));
            }
            (w, Some(b))
        }
    };
    let warden = Arc::new(warden);
    log.info(&format!(
        "started version={} keys={keys} locks={locks}",
        env!("CARGO_PKG_VERSION")
    ));
    warden.warn_if_observing();
    warden_daemon::words::bind(&warden.config().messages.catalogs);
    let config = warden.config();
    let how = |passed: bool| if passed { "systemd" } else { "bound" };
    log.info(&format!(
        "listening socket={} via={} root_socket={} via={}",
        quote(&config.socket.display().to_string()),
        how(listeners.activated.0),
        quote(&config.root_socket.display().to_string()),
        how(listeners.activated.1),
    ));
    server::serve_root_apart(listeners.root, warden.clone())
        .map_err(|e| format!("cannot start the root socket's thread: {e}"))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    if let Some(f) = &fleet {
        rt.block_on(f.first_contact())?;
    }
    let public = listeners.public;
    rt.block_on(async move {
        tokio::spawn(server::serve(public, Door::Public, warden.clone()));
        warden_daemon::notify::ready();
        tokio::spawn(warden_daemon::bus::run(warden.clone()));
        tokio::spawn(warden_daemon::hooks::run(warden.clone()));
        tokio::spawn(warden_daemon::firewall::run(warden.clone()));
        if let Some(fleet) = fleet {
            tokio::spawn(warden_daemon::fleet::run_tasks(fleet));
        }
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
        wait_for_stop(warden.clone()).await;
        log.info("stopping");
        if let Err(e) = warden.flush().await {
            log.error(&format!(
                "store-error op=flush error={}",
                quote(&e.to_string())
            ));
        }
        Ok::<(), String>(())
    })
}

/// Differs between runs, so attempt ids from before a restart are recognised.
fn epoch(now: Time) -> u32 {
    let mixed = now.0 ^ (u64::from(std::process::id()) << 20);
    (mixed ^ (mixed >> 32)) as u32
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile reloads the config, as
/// `wardenctl reload` and `systemctl reload wardend` do.
async fn wait_for_stop(warden: Arc<Warden>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                // A refusal is logged by reload itself; the daemon runs on.
                let _ = warden.reload("signal").await;
            }
        }
    }
}
