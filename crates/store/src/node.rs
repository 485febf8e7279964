//! The apply loop: the one thread that turns proposals into durable, applied,
//! announced writes.
//!
//! Each turn of the loop takes every proposal waiting (up to a batch limit) and:
//!
//! 1. appends them to the write-ahead log as consecutive entries;
//! 2. fsyncs the log once for the whole batch — group commit: while one fsync
//!    runs, the next batch gathers, so throughput grows with concurrent clients;
//! 3. applies the entries to the MVCC state machine in log order and hands the
//!    changes to sled as one atomic batch together with the applied index;
//! 4. hands each entry's events to the watch hub, in revision order;
//! 5. answers the waiting clients.
//!
//! All five steps run on one thread: handing batches between a log thread and
//! an apply thread (as etcd does) cost more in thread switches on small
//! machines than the overlap won (see docs/benchmarks.md).
//!
//! A client hears "done" only after step 2, so an acknowledged write survives a
//! crash: on restart, [`open`] replays the log from sled's applied index.
//!
//! # Caveats
//! Log segments are kept until snapshots exist to replace them (the replicated
//! store's issue); the log grows with every write until then.

use std::sync::Arc;

use prost::Message;
use skiff_proto::store::LogEntry;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Result, StoreError};
use crate::mvcc::{Applied, Mvcc};
use crate::store::{Inner, StoreConfig};
use crate::wal::{Entry, Wal, WalOptions};

/// The log directory inside the data directory.
pub(crate) const WAL_DIR: &str = "wal";
/// The applied state's directory inside the data directory.
pub(crate) const DB_DIR: &str = "db";
/// With one member there is one term.
pub(crate) const TERM: u64 = 1;

/// A request waiting for its log entry to be applied.
pub(crate) struct Proposal {
    pub(crate) entry: LogEntry,
    /// None when nobody waits (a lease expiry).
    pub(crate) respond: Option<oneshot::Sender<Result<Applied>>>,
}

/// What [`open`] recovered.
pub(crate) struct Opened {
    pub(crate) db: sled::Db,
    pub(crate) mvcc: Mvcc,
    pub(crate) wal: Wal,
}

/// Opens sled and the log and replays every logged entry sled has not applied.
pub(crate) fn open(config: &StoreConfig) -> Result<Opened> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StoreError::Storage(format!("creating {}: {e}", config.data_dir.display())))?;
    let db = sled::Config::new()
        .path(config.data_dir.join(DB_DIR))
        .cache_capacity(config.cache_bytes)
        // The log provides durability; sled is tuned for write throughput.
        .mode(sled::Mode::HighThroughput)
        .open()?;
    let mut mvcc = Mvcc::open(db.open_tree("kv")?)?;
    let (wal, recovered) = Wal::open(&config.data_dir.join(WAL_DIR), WalOptions::default())
        .map_err(|e| StoreError::Storage(e.to_string()))?;
    let applied = mvcc.applied_index();
    if let Some(first) = recovered.entries.first() {
        if first.index > applied + 1 {
            return Err(StoreError::Storage(format!(
                "the log starts at entry {} but the applied state ends at {applied}: entries are missing",
                first.index
            )));
        }
    }
    let mut replayed = 0;
    for entry in recovered.entries.iter().filter(|e| e.index > applied) {
        let decoded = LogEntry::decode(entry.data.as_slice()).map_err(|e| {
            StoreError::Storage(format!("log entry {} does not decode: {e}", entry.index))
        })?;
        // A request that failed when first applied fails the same way again.
        let _ = mvcc.apply(entry.index, &decoded);
        replayed += 1;
    }
    mvcc.commit()?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        applied_index = mvcc.applied_index(),
        revision = mvcc.current_revision(),
        replayed,
        "store opened"
    );
    Ok(Opened { db, mvcc, wal })
}

/// A persisted batch: each proposal with its log index.
type Persisted = Vec<(u64, Proposal)>;

/// Starts the loop on its own thread (fsync blocks).
pub(crate) fn spawn(
    inner: Arc<Inner>,
    wal: Wal,
    proposals: mpsc::Receiver<Proposal>,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("skiff-apply".into())
        .spawn(move || {
            run(&inner, wal, proposals);
            tracing::info!("apply loop stopped");
        })
        .map_err(|e| StoreError::Storage(format!("starting the apply thread: {e}")))
}

/// Gathers waiting proposals and runs one turn over them, until the store stops.
fn run(inner: &Inner, mut wal: Wal, mut proposals: mpsc::Receiver<Proposal>) {
    let max = inner.config.max_batch_entries.max(1);
    let mut batch = Vec::with_capacity(max);
    while let Some(first) = proposals.blocking_recv() {
        if inner.stop.is_cancelled() {
            break;
        }
        batch.push(first);
        while batch.len() < max {
            match proposals.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // Entries with no request only wake the loop (see `Store::close`).
        batch.retain(|p| p.entry.request.is_some());
        if batch.is_empty() {
            continue;
        }
        if let Some(persisted) = persist(inner, &mut wal, &mut batch) {
            apply(inner, persisted);
        }
    }
}

/// Steps 1 and 2: appends `batch` (drained) to the log and fsyncs it; `None` when the log
/// refused it, in which case every proposal has been answered with the error.
fn persist(inner: &Inner, wal: &mut Wal, batch: &mut Vec<Proposal>) -> Option<Persisted> {
    let _span = tracing::debug_span!("persist_batch", entries = batch.len()).entered();
    let first_index = wal.last_index() + 1;
    let entries: Vec<Entry> = batch
        .iter()
        .enumerate()
        .map(|(i, p)| Entry {
            index: first_index + i as u64,
            term: TERM,
            data: p.entry.encode_to_vec(),
        })
        .collect();
    if let Err(err) = wal.append(&entries).and_then(|()| wal.sync()) {
        tracing::error!(%err, "writing the log failed; the batch is refused");
        // The refused entries must not come back on replay: cut them off. A log
        // that cannot even do that cannot take writes safely any more.
        if let Err(cut) = wal
            .truncate_after(first_index - 1)
            .and_then(|()| wal.sync())
        {
            tracing::error!(err = %cut, "cannot roll the log back; refusing all further writes");
            inner.stop.cancel();
        }
        fail_all(batch, StoreError::LogWrite(err.to_string()));
        return None;
    }
    Some(
        entries
            .iter()
            .map(|e| e.index)
            .zip(batch.drain(..))
            .collect(),
    )
}

/// Steps 3 to 5 for a persisted batch.
fn apply(inner: &Inner, batch: Persisted) {
    let _span = tracing::debug_span!("apply_batch", entries = batch.len()).entered();
    // 3. Apply in log order; the changes go to sled as one atomic batch.
    let results: Vec<Result<Applied>> = match inner.mvcc.write() {
        Ok(mut mvcc) => {
            let results = batch
                .iter()
                .map(|(index, p)| mvcc.apply(*index, &p.entry))
                .collect();
            if let Err(err) = mvcc.commit() {
                tracing::error!(%err, "writing the applied state failed");
            }
            results
        }
        Err(_) => {
            let err = StoreError::Storage("state machine lock poisoned".into());
            batch.iter().map(|_| Err(err.clone())).collect()
        }
    };
    // 4. + 5. Announce, then answer.
    for ((_, proposal), mut result) in batch.into_iter().zip(results) {
        if let Ok(applied) = &mut result {
            if !applied.events.is_empty() {
                inner
                    .hub
                    .notify(applied.revision, std::mem::take(&mut applied.events));
            }
        }
        if let Some(respond) = proposal.respond {
            let _ = respond.send(result);
        }
    }
}

fn fail_all(batch: &mut Vec<Proposal>, err: StoreError) {
    for p in batch.drain(..) {
        if let Some(respond) = p.respond {
            let _ = respond.send(Err(err.clone()));
        }
    }
}
