//! `etcdserverpb.Maintenance`.

use std::pin::Pin;

use futures::Stream;
use skiff_proto::etcdserverpb::maintenance_server::Maintenance;
use skiff_proto::etcdserverpb::{
    alarm_request::AlarmAction, AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse,
    HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use tonic::{Request, Response, Status};

use super::status;
use crate::store::Store;

/// The etcd version skiff-store answers as: the 3.5 API, with a watch
/// stream's progress responses ordered after the events they cover, as etcd
/// orders them from 3.5.13 on (clients such as Kubernetes' API server read the
/// version to decide whether they may rely on that).
pub(crate) const ETCD_API_VERSION: &str = "3.5.13";

pub(crate) struct MaintenanceService {
    store: Store,
}

impl MaintenanceService {
    pub(crate) fn new(store: Store) -> Self {
        MaintenanceService { store }
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    /// No alarms are raised by skiff-store; GET lists none, and the others are accepted.
    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        let req = request.into_inner();
        if AlarmAction::try_from(req.action).is_err() {
            return Err(Status::invalid_argument(format!(
                "unknown alarm action {}",
                req.action
            )));
        }
        let revision = self.store.current_revision().map_err(status)?;
        Ok(Response::new(AlarmResponse {
            header: Some(self.store.header(revision)),
            alarms: Vec::new(),
        }))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let revision = self.store.current_revision().map_err(status)?;
        let raft = self.store.raft_status();
        let size = self.store.size_on_disk() as i64;
        let header = self.store.header(revision);
        let errors = if raft.leader == 0 {
            vec!["etcdserver: no leader".to_string()]
        } else {
            Vec::new()
        };
        Ok(Response::new(StatusResponse {
            version: ETCD_API_VERSION.into(),
            db_size: size,
            leader: raft.leader,
            raft_index: raft.commit_index,
            raft_term: raft.term,
            raft_applied_index: raft.applied_index,
            errors,
            db_size_in_use: size,
            is_learner: raft.is_learner,
            header: Some(header),
        }))
    }

    /// sled reclaims space by itself as it writes; there is nothing to defragment.
    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        let revision = self.store.current_revision().map_err(status)?;
        Ok(Response::new(DefragmentResponse {
            header: Some(self.store.header(revision)),
        }))
    }

    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        let (hash, _, revision) = self.store.hash_kv(0).map_err(status)?;
        Ok(Response::new(HashResponse {
            header: Some(self.store.header(revision)),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        let (hash, compact_revision, revision) = self
            .store
            .hash_kv(request.into_inner().revision)
            .map_err(status)?;
        let current = self.store.current_revision().map_err(status)?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.store.header(current)),
            hash,
            compact_revision,
            hash_revision: revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(Status::unimplemented(
            "skiff-store does not export etcd (bbolt) snapshots",
        ))
    }

    async fn move_leader(
        &self,
        _: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(Status::unimplemented(
            "MoveLeader needs a replicated store; this member runs alone",
        ))
    }
}
