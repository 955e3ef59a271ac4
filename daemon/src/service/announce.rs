//! What leaves wardend about its decisions: log lines and the events behind
//! D-Bus signals. They leave after the commit they describe, in commit order,
//! from a thread of their own, so a lock is never announced and then taken
//! back by a full disk, and a slow syslog stalls neither the engine nor the
//! store. The operation is answered once its lines are written, so a reply
//! never runs ahead of its log line.

use super::limits::LogLimiter;
use crate::engine::{Event, EventKind, Origin};
use crate::log::{Level, Log};
use crate::logline;
use crate::store::{Done, StoreError, Then};
use crate::time::Time;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::broadcast;

struct Announcement {
    events: Vec<Event>,
    origin: Origin,
    at: Time,
    result: Result<(), StoreError>,
    done: Done,
}

pub struct Announcer {
    tx: mpsc::Sender<Announcement>,
    lines: Arc<LogLimiter>,
    events: broadcast::Sender<Event>,
    tally: Arc<Tally>,
}

/// Committed events by kind since start, and failed commits: for metrics.
#[derive(Default)]
pub struct Tally {
    by_kind: [AtomicU64; EventKind::ALL.len()],
    store_errors: AtomicU64,
}

impl Tally {
    fn count(&self, e: &Event) {
        if let Some(i) = EventKind::ALL.iter().position(|k| *k == e.kind) {
            self.by_kind[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(kind, count)` for every kind, in a fixed order.
    pub fn by_kind(&self) -> Vec<(&'static str, u64)> {
        EventKind::ALL
            .iter()
            .zip(self.by_kind.iter())
            .map(|(k, n)| (k.name(), n.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn store_errors(&self) -> u64 {
        self.store_errors.load(Ordering::Relaxed)
    }
}

impl Announcer {
    /// Starts the announcing thread; it ends when the announcer is dropped.
    pub fn start(log: Arc<Log>) -> std::io::Result<Announcer> {
        let (tx, rx) = mpsc::channel::<Announcement>();
        let lines = Arc::new(LogLimiter::default());
        // Sending never waits on a listener; a slow one loses the oldest.
        let events = broadcast::channel(1024).0;
        let tally = Arc::new(Tally::default());
        let voice = Voice {
            log,
            lines: lines.clone(),
            events: events.clone(),
            tally: tally.clone(),
        };
        std::thread::Builder::new()
            .name("announcer".into())
            .spawn(move || {
                for a in rx {
                    voice.say(a);
                }
            })?;
        Ok(Announcer {
            tx,
            lines,
            events,
            tally,
        })
    }

    /// The writer's callback for one operation's events.
    pub fn then(&self, events: Vec<Event>, origin: Origin, at: Time) -> Then {
        let tx = self.tx.clone();
        Box::new(move |result: Result<(), StoreError>, done: Done| {
            let a = Announcement {
                events,
                origin,
                at,
                result,
                done,
            };
            // With the announcer gone (only at exit), the answer still goes.
            if let Err(mpsc::SendError(a)) = tx.send(a) {
                let _ = a.done.send(a.result);
            }
        })
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Summaries of the lines held back; written by the caller.
    pub fn summaries(&self, now: Time) -> Vec<String> {
        self.lines.summaries(now)
    }
}

struct Voice {
    log: Arc<Log>,
    lines: Arc<LogLimiter>,
    events: broadcast::Sender<Event>,
    tally: Arc<Tally>,
}

impl Voice {
    fn say(&self, a: Announcement) {
        let (result, done) = (a.result.clone(), a.done);
        self.lines_for(a.events, a.origin, a.at, &a.result);
        let _ = done.send(result);
    }

    fn lines_for(
        &self,
        events: Vec<Event>,
        origin: Origin,
        at: Time,
        result: &Result<(), StoreError>,
    ) {
        if let Err(e) = result {
            self.tally.store_errors.fetch_add(1, Ordering::Relaxed);
            // Nothing of it is on disk: no signal, and one loud line saying
            // what was decided and is not recorded.
            let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
            kinds.dedup();
            self.log.error(&format!(
                "store-error unrecorded={} kinds={} error={} action=\"nothing of this was announced; free space or repair the state directory, the decisions hold in memory until wardend restarts\"",
                events.len(),
                logline::quote(&kinds.join(",")),
                logline::quote(&e.to_string())
            ));
            return;
        }
        for e in events {
            self.tally.count(&e);
            if self.lines.admit(&e, origin, at) {
                let level = match e.kind {
                    EventKind::Locked
                    | EventKind::Refused
                    | EventKind::WouldLock
                    | EventKind::WouldRefuse => Level::Notice,
                    _ => Level::Info,
                };
                self.log.write(level, &logline::format(&e));
            }
            if matches!(e.kind, EventKind::Locked | EventKind::Unlocked) {
                let _ = self.events.send(e);
            }
        }
    }
}
