//! The catch-up task: brings one unsynced watcher up to the current revision
//! from history, then hands it back to `notify`.
//!
//! Each step is a small recipe:
//! 1. wait until the watcher's channel has room (a permit), so that what is read
//!    can be sent without waiting while the hub lock is held;
//! 2. under the lock, note the window to read: from the first revision the watcher
//!    has not been sent, up to the current revision (at most [`CATCH_UP_REVISIONS`]);
//! 3. read that window from history, without the lock;
//! 4. under the lock, send it and advance the watcher; if it has reached the
//!    current revision, mark it synced and stop, otherwise go round again.
//!
//! Marking the watcher synced in step 4 happens under the same lock `notify` takes,
//! so the next revision is delivered by `notify` and no revision is read twice.

use std::sync::Arc;

use skiff_proto::mvccpb::Event;
use tokio::sync::mpsc;

use super::watcher::{WatchSpec, WatcherKey};
use super::{HistoryError, Shared, WatchUpdate, CATCH_UP_REVISIONS};

/// What step 2 decided to read.
struct Window {
    spec: WatchSpec,
    from: i64,
    to: i64,
}

/// Whether the catch-up task goes round again.
enum Step {
    Again,
    Done,
}

/// Brings watcher `key` up to date; `tx` is a clone of its channel's sender.
pub(crate) async fn catch_up(shared: Arc<Shared>, key: WatcherKey, tx: mpsc::Sender<WatchUpdate>) {
    loop {
        // 1. Room in the channel.
        let Ok(permit) = tx.reserve().await else {
            // The receiver is gone: the watcher was dropped.
            shared.lock().watchers.remove(&key);
            return;
        };
        // 2. The window to read.
        let Some(window) = window(&shared, key) else {
            return;
        };
        // 3. Read it, off the async threads: history may touch the disk.
        let read = if window.from <= window.to {
            read_history(&shared, &window).await
        } else {
            Ok(Vec::new())
        };
        // 4. Send and advance.
        match finish_step(&shared, key, &window, read, permit) {
            Step::Again => continue,
            Step::Done => return,
        }
    }
}

fn window(shared: &Shared, key: WatcherKey) -> Option<Window> {
    let state = shared.lock();
    let watcher = state.watchers.get(&key)?;
    let to = state
        .current_revision
        .min(watcher.next_revision + CATCH_UP_REVISIONS - 1);
    Some(Window {
        spec: watcher.spec.clone(),
        from: watcher.next_revision,
        to,
    })
}

async fn read_history(shared: &Shared, window: &Window) -> Result<Vec<Event>, HistoryError> {
    let history = Arc::clone(&shared.history);
    let (from, to) = (window.from, window.to);
    let (key, range_end) = (window.spec.key.clone(), window.spec.range_end.clone());
    let read = tokio::task::spawn_blocking(move || history.events(from, to, &key, &range_end));
    match read.await {
        Ok(events) => events.map(|events| window.spec.select(&events)),
        Err(join_error) => Err(HistoryError::Other(join_error.to_string())),
    }
}

fn finish_step(
    shared: &Shared,
    key: WatcherKey,
    window: &Window,
    read: Result<Vec<Event>, HistoryError>,
    permit: mpsc::Permit<'_, WatchUpdate>,
) -> Step {
    let mut state = shared.lock();
    let current = state.current_revision;
    let Some(watcher) = state.watchers.get_mut(&key) else {
        return Step::Done;
    };
    let events = match read {
        Ok(events) => events,
        Err(error) => {
            let compact_revision = match error {
                HistoryError::Compacted { compact_revision } => compact_revision,
                HistoryError::Other(_) => 0,
            };
            tracing::debug!(%error, from = window.from, "watcher canceled while catching up");
            state.watchers.remove(&key);
            permit.send(WatchUpdate::Canceled {
                compact_revision,
                reason: error.to_string(),
            });
            return Step::Done;
        }
    };
    watcher.next_revision = watcher.next_revision.max(window.to + 1);
    let mut permit = Some(permit);
    if !events.is_empty() {
        if let Some(permit) = permit.take() {
            permit.send(WatchUpdate::Events {
                revision: window.to,
                events,
            });
        }
    }
    if watcher.next_revision <= current {
        return Step::Again;
    }
    if watcher.progress_requested {
        let Some(permit) = permit.take() else {
            // The permit went to the events; answer on the next round.
            return Step::Again;
        };
        permit.send(WatchUpdate::Progress { revision: current });
        watcher.progress_requested = false;
    }
    watcher.synced = true;
    Step::Done
}
