//! Group commit: one thread owns writing, and every operation that arrives while
//! a commit is in flight joins the next one. Durability then costs one fsync per
//! batch rather than per request.

use super::{Durability, Store, StoreError};
use crate::engine::Effects;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most operations folded into one transaction.
const MAX_BATCH: usize = 4096;

/// How long a deferred commit may wait for an fsync. It bounds what a power
/// cut can take back: the last second of successes, which only ever leaves
/// failure counters standing.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// How long a batch of deferred operations (successes) waits for company
/// before its commit. A commit costs redb tens of microseconds of CPU whatever
/// it holds; a busy login server then pays for one every few milliseconds,
/// not one per login. An operation that waits for durability ends the wait;
/// whoever awaits a deferred one's receiver waits this much longer, so
/// nothing answered to a client should.
const GATHER: Duration = Duration::from_millis(5);

/// Tells an operation its commit's result.
pub type Done = oneshot::Sender<Result<(), StoreError>>;

/// Runs on the writer after the commit of its job, in commit order, with the
/// commit's result and the operation's `Done`, which it must answer once it
/// has announced what is now on disk (or known not to be).
pub type Then = Box<dyn FnOnce(Result<(), StoreError>, Done) + Send>;

struct Job {
    fx: Effects,
    durability: Durability,
    done: Done,
    then: Option<Then>,
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub fn spawn(store: Arc<dyn Store>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, rx))?;
        Ok(Writer { tx })
    }

    /// Queues effects; the receiver resolves once they are committed, and with
    /// `Immediate` once they are durable. Queue order is commit order, so
    /// callers that queue under the engine's lock keep the store in step with
    /// the engine.
    pub fn submit(
        &self,
        fx: Effects,
        durability: Durability,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        self.submit_then(fx, durability, None)
    }

    /// Like [`submit`](Self::submit); `then` runs once the commit is done.
    pub fn submit_then(
        &self,
        fx: Effects,
        durability: Durability,
        then: Option<Then>,
    ) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done, rx) = oneshot::channel();
        let job = Job {
            fx,
            durability,
            done,
            then,
        };
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            finish(job.then, job.done, Err(StoreError::WriterGone));
        }
        rx
    }

    /// Makes every deferred commit durable; for a clean stop.
    pub fn flush(&self) -> oneshot::Receiver<Result<(), StoreError>> {
        self.submit(Effects::default(), Durability::Immediate)
    }

    /// Blocking form, for threads outside the runtime.
    pub fn commit_blocking(&self, fx: Effects) -> Result<(), StoreError> {
        self.submit(fx, Durability::Immediate)
            .blocking_recv()
            .unwrap_or(Err(StoreError::WriterGone))
    }
}

fn run(store: Arc<dyn Store>, rx: mpsc::Receiver<Job>) {
    // Set while a deferred commit waits for its fsync.
    let mut flush_by: Option<Instant> = None;
    loop {
        let first = match flush_by {
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Some(by) => match rx.recv_timeout(by.saturating_duration_since(Instant::now())) {
                Ok(job) => job,
                Err(e) => {
                    // A failed flush (a full disk) is retried a second later,
                    // not in a loop.
                    flush_by = store
                        .commit(&Effects::default(), Durability::Immediate)
                        .is_err()
                        .then(|| Instant::now() + FLUSH_AFTER);
                    if e == RecvTimeoutError::Disconnected {
                        return;
                    }
                    continue;
                }
            },
        };
        let mut batch = first.fx;
        let mut durability = first.durability;
        let mut waiting = vec![(first.then, first.done)];
        let gather_until = Instant::now() + GATHER;
        while waiting.len() < MAX_BATCH {
            let next = match durability {
                Durability::Immediate => rx.try_recv().ok(),
                Durability::Deferred => rx
                    .recv_timeout(gather_until.saturating_duration_since(Instant::now()))
                    .ok(),
            };
            match next {
                Some(job) => {
                    batch.absorb(job.fx);
                    if job.durability == Durability::Immediate {
                        durability = Durability::Immediate;
                    }
                    waiting.push((job.then, job.done));
                }
                None => break,
            }
        }
        let result = store.commit(&batch, durability);
        if result.is_ok() {
            flush_by = match durability {
                Durability::Immediate => None,
                Durability::Deferred => flush_by.or(Some(Instant::now() + FLUSH_AFTER)),
            };
        }
        for (then, done) in waiting {
            finish(then, done, result.clone());
        }
    }
}

fn finish(then: Option<Then>, done: Done, result: Result<(), StoreError>) {
    match then {
        Some(then) => then(result, done),
        None => {
            let _ = done.send(result);
        }
    }
}
