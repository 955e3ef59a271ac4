//! Group commit: one thread owns writing, and every operation that arrives while
//! a commit is in flight joins the next one. Durability then costs one fsync per
//! batch rather than per request.

use super::{Store, StoreError};
use crate::engine::Effects;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The most operations folded into one transaction.
const MAX_BATCH: usize = 4096;

struct Job {
    fx: Effects,
    done: Option<oneshot::Sender<Result<(), StoreError>>>,
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

    /// Queues effects; the receiver resolves once they are durable. Queue order
    /// is commit order, so callers that queue under the engine's lock keep the
    /// store in step with the engine.
    pub fn submit(&self, fx: Effects) -> oneshot::Receiver<Result<(), StoreError>> {
        let (done, rx) = oneshot::channel();
        let job = Job {
            fx,
            done: Some(done),
        };
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            if let Some(done) = job.done {
                let _ = done.send(Err(StoreError::WriterGone));
            }
        }
        rx
    }

    /// Blocking form, for threads outside the runtime.
    pub fn commit_blocking(&self, fx: Effects) -> Result<(), StoreError> {
        self.submit(fx)
            .blocking_recv()
            .unwrap_or(Err(StoreError::WriterGone))
    }
}

fn run(store: Arc<dyn Store>, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = first.fx;
        let mut waiting = vec![first.done];
        while waiting.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    batch.absorb(job.fx);
                    waiting.push(job.done);
                }
                Err(_) => break,
            }
        }
        let result = store.commit(&batch);
        for done in waiting.into_iter().flatten() {
            let _ = done.send(result.clone());
        }
    }
}
