//! `[firewall]`: address locks dropped at the packet level too, so that a
//! locked guesser no longer costs sshd a handshake, a key exchange and a
//! fork per try. wardend keeps the sets of the shipped `inet warden` table in
//! step with its locks: it follows the announcer's broadcast (so a set never
//! holds a lock that is not on disk, and no decision waits for nft), writes
//! every set whole at start, hourly and whenever it may have missed an event,
//! and lets the kernel time elements out with their locks. PAM still
//! enforces every lock: the firewall only saves the work.

pub mod nft;

use crate::engine::{Event, EventKind, Until};
use crate::logline::quote;
use crate::service::Warden;
use crate::time::Time;
use nft::{Element, Layer};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Where the packages put nft.
const NFT: &str = "/usr/sbin/nft";
/// The longest one batch may take before it counts as failed.
const NFT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often every set is written whole, to heal what was missed.
const RESYNC: Duration = Duration::from_secs(3600);
/// Events gathered into one batch.
const BATCH: usize = 4096;
/// How often a failure is logged while nft keeps failing.
const FAILURE_LOG: Duration = Duration::from_secs(60);

pub async fn run(warden: Arc<Warden>) {
    if warden.config().firewall.is_none() {
        return;
    }
    // Subscribed before the first sync, so no lock falls between the two.
    let mut events = warden.subscribe();
    let mut sets = Sets {
        warden: warden.clone(),
        failed_at: None,
        failures: 0,
    };
    sets.whole("start").await;
    let mut hourly = tokio::time::interval(RESYNC);
    hourly.tick().await;
    loop {
        tokio::select! {
            got = events.recv() => {
                let first = match got {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => {
                        sets.whole("missed-events").await;
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match events.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(TryRecvError::Lagged(_)) => {
                            sets.whole("missed-events").await;
                            batch.clear();
                            break;
                        }
                        Err(_) => break,
                    }
                }
                sets.events(&batch).await;
            }
            _ = hourly.tick() => sets.whole("hourly").await,
        }
    }
}

struct Sets {
    warden: Arc<Warden>,
    failed_at: Option<Instant>,
    /// Failures not yet logged.
    failures: u64,
}

impl Sets {
    /// Writes every set from the locks that stand now.
    async fn whole(&mut self, why: &str) {
        let now = Time::now();
        let Some(elements) = self.elements(now).await else {
            return;
        };
        let text = nft::rewrite(&Layer::ALL, &elements, now);
        if self.apply(&text).await {
            self.warden.log().info(&format!(
                "firewall-synced why={why} elements={}",
                elements.len()
            ));
        }
    }

    /// Applies a run of lock events; on failure, writes the sets whole.
    async fn events(&mut self, batch: &[Event]) {
        let now = Time::now();
        let mut text = String::new();
        let mut admin = false;
        for e in batch {
            let until = match e.until {
                Some(Until::At(t)) => Some(t),
                _ => None,
            };
            let Some(el) = e.key.as_ref().and_then(|k| Element::of(k, until)) else {
                continue;
            };
            match (e.kind, el.layer) {
                (EventKind::Locked | EventKind::Unlocked, Layer::Admin) => admin = true,
                (EventKind::Locked, _) => text.push_str(&nft::add(&el, now)),
                (EventKind::Unlocked, _) => text.push_str(&nft::remove(&el)),
                _ => {}
            }
        }
        if admin {
            let Some(elements) = self.elements(now).await else {
                return;
            };
            text.push_str(&nft::rewrite(&[Layer::Admin], &elements, now));
        }
        if text.is_empty() || self.apply(&text).await {
            return;
        }
        self.whole("after-failure").await;
    }

    /// The elements of every address lock that stands and refuses.
    async fn elements(&mut self, now: Time) -> Option<Vec<Element>> {
        match self.warden.locks(now).await {
            Ok(locks) => Some(
                locks
                    .iter()
                    .filter(|l| !l.observe)
                    .filter_map(|l| Element::of(&l.key, l.until))
                    .collect(),
            ),
            Err(e) => {
                self.failed(&format!("cannot read the locks: {e}"));
                None
            }
        }
    }

    /// Runs one batch through `nft -f -`, as one transaction.
    async fn apply(&mut self, text: &str) -> bool {
        let outcome = tokio::time::timeout(NFT_TIMEOUT, run_nft(text)).await;
        let error = match outcome {
            Ok(Ok(())) => {
                if self.failed_at.take().is_some() {
                    self.warden
                        .log()
                        .info("firewall-recovered reason=\"nft applies the sets again\"");
                    self.failures = 0;
                }
                return true;
            }
            Ok(Err(e)) => e,
            Err(_) => format!("nft took over {}s", NFT_TIMEOUT.as_secs()),
        };
        self.failed(&error);
        false
    }

    /// Logs a failure at error, at most once a minute: a firewall that
    /// silently stopped would leave the admin believing it blocks.
    fn failed(&mut self, error: &str) {
        self.failures += 1;
        if self.failed_at.is_some_and(|t| t.elapsed() < FAILURE_LOG) {
            return;
        }
        self.failed_at = Some(Instant::now());
        self.warden.log().error(&format!(
            "firewall-failed failures={} error={} action=\"locks still refuse in PAM, but packets from locked addresses get through: include /usr/share/warden/warden.nft in the ruleset, and install the unit drop-in firewall.conf (CAP_NET_ADMIN, the host's network)\"",
            self.failures,
            quote(error.trim())
        ));
        self.failures = 0;
    }
}

async fn run_nft(text: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new(NFT)
        .args(["-f", "-"])
        .env_clear()
        .env("LANG", "C.UTF-8")
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {NFT}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| format!("cannot write to nft: {e}"))?;
    }
    let mut err = Vec::new();
    if let Some(s) = child.stderr.as_mut() {
        let _ = s.take(64 * 1024).read_to_end(&mut err).await;
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&err);
    // nft names the line it refused first; the first lines say enough.
    let said: Vec<&str> = err.lines().take(3).collect();
    Err(said.join(" | "))
}
