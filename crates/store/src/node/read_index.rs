//! Linearizable reads (Raft thesis §6.4, "ReadIndex"): a read waits until this
//! member has applied everything the leader had committed when the read
//! arrived, so it sees every write acknowledged before it.
//!
//! Reads that arrive in one turn of the loop share one ReadIndex request;
//! raft answers it with an index (a `ReadState`), and the reads are answered
//! once the state machine reaches that index.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use raft::{RawNode, ReadState};

use super::Waiting;
use crate::error::StoreError;
use crate::raft::storage::RaftLogReader;

/// The read-index queue.
#[derive(Default)]
pub(super) struct ReadIndex {
    /// Reads gathered this turn, sent to raft as one ReadIndex.
    batch: Vec<Waiting<()>>,
    /// ReadIndex requests in flight, by context.
    sent: HashMap<u64, Vec<Waiting<()>>>,
    next_ctx: u64,
    /// Reads whose index is known, waiting for the state machine to reach it.
    ready: VecDeque<(u64, Vec<Waiting<()>>)>,
}

impl ReadIndex {
    /// A read to gather into this turn's batch.
    pub(super) fn push(&mut self, read: Waiting<()>) {
        self.batch.push(read);
    }

    /// Asks raft for one ReadIndex for this turn's reads.
    pub(super) fn send(&mut self, raw: &mut RawNode<RaftLogReader>) {
        if self.batch.is_empty() {
            return;
        }
        self.next_ctx += 1;
        let ctx = self.next_ctx;
        raw.read_index(ctx.to_be_bytes().to_vec());
        let batch = std::mem::take(&mut self.batch);
        self.sent.insert(ctx, batch);
    }

    /// Raft's answers: each request's reads now wait for its index.
    pub(super) fn indexes_known(&mut self, states: Vec<ReadState>) {
        for state in states {
            let Ok(ctx) = <[u8; 8]>::try_from(&state.request_ctx[..]) else {
                continue;
            };
            if let Some(waiting) = self.sent.remove(&u64::from_be_bytes(ctx)) {
                self.ready.push_back((state.index, waiting));
            }
        }
    }

    /// Answers the reads whose index the state machine has reached.
    pub(super) fn release(&mut self, applied: u64) {
        while let Some((index, _)) = self.ready.front() {
            if *index > applied {
                break;
            }
            let (_, waiting) = self.ready.pop_front().expect("front exists");
            for w in waiting {
                w.answer(Ok(()));
            }
        }
    }

    /// Once a tick: asks again for reads raft dropped, and answers the reads
    /// past their deadline with "request timed out".
    pub(super) fn expire(&mut self, raw: &mut RawNode<RaftLogReader>, now: Instant) {
        // raft-rs drops a ReadIndex silently when there is no leader, or the
        // leader has not yet committed an entry of its term: ask again.
        let waiting: Vec<u64> = self.sent.keys().copied().collect();
        for ctx in waiting {
            raw.read_index(ctx.to_be_bytes().to_vec());
        }
        let late: Vec<u64> = self
            .sent
            .iter()
            .filter(|(_, ws)| ws.iter().all(|w| w.deadline <= now))
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in late {
            for w in self.sent.remove(&ctx).unwrap_or_default() {
                w.answer(Err(StoreError::Timeout));
            }
        }
        for (_, waiting) in self.ready.iter_mut() {
            for w in std::mem::take(waiting) {
                if w.deadline <= now {
                    w.answer(Err(StoreError::Timeout));
                } else {
                    waiting.push(w);
                }
            }
        }
    }

    /// The log refused a write: reads whose ReadIndex is in flight fail.
    pub(super) fn fail_sent(&mut self, err: &StoreError) {
        for w in self.sent.drain().flat_map(|(_, ws)| ws) {
            w.answer(Err(err.clone()));
        }
    }

    /// The loop stops: every read fails.
    pub(super) fn fail(&mut self, err: &StoreError) {
        for w in self.batch.drain(..) {
            w.answer(Err(err.clone()));
        }
        for (_, ws) in self.sent.drain() {
            for w in ws {
                w.answer(Err(err.clone()));
            }
        }
        for (_, ws) in self.ready.drain(..) {
            for w in ws {
                w.answer(Err(err.clone()));
            }
        }
    }
}
