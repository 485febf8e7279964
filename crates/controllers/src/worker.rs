//! Workers: take keys off a controller's queue and reconcile them, as
//! client-go's `processNextWorkItem`.
//!
//! A reconcile that succeeds forgets the key's failures and, if it asks,
//! queues the key again after a delay; one that fails is queued again after
//! its per-key backoff. Either way the key is marked done, so an event that
//! came in meanwhile brings it back once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use skiff_client::WorkQueue;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::context::Runner;
use crate::error::Error;

/// Runs `workers` workers over `queue` until `shutdown`, each calling
/// `sync(key)`: `Ok(Some(delay))` to look again after `delay`. Keys are
/// usually [`skiff_client::ObjectKey`]s; the garbage collector's are uids.
pub(crate) async fn run<T, F, Fut>(
    controller: &'static str,
    queue: WorkQueue<T>,
    workers: usize,
    shutdown: CancellationToken,
    sync: F,
) where
    T: Clone + Eq + std::hash::Hash + std::fmt::Display + Send + Sync + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>, Error>> + Send,
{
    let stop = queue.clone();
    let token = shutdown.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        stop.shutdown();
    });
    let mut handles = Vec::new();
    for _ in 0..workers.max(1) {
        let (queue, sync) = (queue.clone(), sync.clone());
        handles.push(tokio::spawn(async move {
            while let Some(key) = queue.get().await {
                let span = tracing::debug_span!("reconcile", controller, key = %key);
                match sync(key.clone()).instrument(span).await {
                    Ok(requeue) => {
                        queue.forget(&key);
                        if let Some(delay) = requeue {
                            queue.add_after(key.clone(), delay);
                        }
                    }
                    Err(error) => {
                        let delay = queue.requeue_rate_limited(key.clone());
                        tracing::info!(controller, %key, %error, ?delay, "reconcile failed; retrying");
                    }
                }
                queue.done(&key);
            }
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
}

/// A controller's shell, as its workers call it: look at `key` now.
pub(crate) trait Reconciler: Send + Sync + 'static {
    /// What its queue holds: usually a [`skiff_client::ObjectKey`].
    type Key: Clone + Eq + std::hash::Hash + std::fmt::Display + Send + Sync + 'static;

    /// Reconciles what `key` names: `Ok(Some(delay))` to look again after `delay`.
    fn sync(&self, key: &Self::Key)
        -> impl Future<Output = Result<Option<Duration>, Error>> + Send;
}

/// The [`Runner`] a controller registers: `workers` workers over `queue`,
/// each calling `reconciler.sync(key)`.
pub(crate) fn runner<R: Reconciler>(
    controller: &'static str,
    queue: WorkQueue<R::Key>,
    workers: usize,
    reconciler: R,
) -> Runner {
    let reconciler = Arc::new(reconciler);
    Box::new(move |shutdown| {
        Box::pin(run(controller, queue, workers, shutdown, move |key| {
            let reconciler = reconciler.clone();
            async move { reconciler.sync(&key).await }
        }))
    })
}
