//! Reads and writes of keys: etcd's `KV` service on the handle.

use skiff_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use skiff_proto::store::log_entry;
use tokio::sync::oneshot;

use super::{unexpected, Store};
use crate::error::{Result, StoreError};
use crate::mvcc::{self, Response};
use crate::node::Input;
use crate::shared::read;

impl Store {
    /// Reads keys (etcd's `Range`): linearizable unless `req.serializable`.
    pub async fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        if !req.serializable {
            self.wait_linearizable().await?;
        }
        self.range_local(req)
    }

    /// Waits until this member has applied everything committed before now
    /// (ReadIndex): a read after this sees every write acknowledged before it.
    pub async fn wait_linearizable(&self) -> Result<()> {
        let status = self.raft_status();
        if status.single_voter {
            return Ok(());
        }
        if status.is_learner {
            return Err(StoreError::NotSupportedForLearner);
        }
        let (respond, answer) = oneshot::channel();
        self.send(Input::Read(respond))?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Reads keys from this member's state machine as it is (a serializable read).
    fn range_local(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let mvcc = read(&self.inner.shared.mvcc)?;
        let mut resp = mvcc.range(req)?;
        self.fill_header(&mut resp.header, mvcc.current_revision());
        Ok(resp)
    }

    /// Writes one key (etcd's `Put`).
    pub async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        mvcc::validate_put(&req)?;
        propose_as!(self, log_entry::Request::Put(req), Put)
    }

    /// Deletes the keys in a range (etcd's `DeleteRange`).
    pub async fn delete_range(&self, req: DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        if req.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        propose_as!(self, log_entry::Request::DeleteRange(req), DeleteRange)
    }

    /// Runs a transaction (etcd's `Txn`).
    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        mvcc::validate_txn(&req, self.inner.shared.config.max_txn_ops)?;
        propose_as!(self, log_entry::Request::Txn(req), Txn)
    }

    /// Drops history below `req.revision` (etcd's `Compact`).
    pub async fn compact(&self, req: CompactionRequest) -> Result<CompactionResponse> {
        propose_as!(self, log_entry::Request::Compaction(req), Compaction)
    }
}
