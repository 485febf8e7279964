//! `etcdserverpb.Cluster`.

use skiff_proto::etcdserverpb::cluster_server::Cluster;
use skiff_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use tonic::{Request, Response, Status};

use super::{status, Advertised};
use crate::store::Store;

pub(crate) struct ClusterService {
    store: Store,
    advertised: Advertised,
}

impl ClusterService {
    pub(crate) fn new(store: Store, advertised: Advertised) -> Self {
        ClusterService { store, advertised }
    }
}

fn single_member() -> Status {
    Status::unimplemented("membership changes need a replicated store; this member runs alone")
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(single_member())
    }

    async fn member_remove(
        &self,
        _: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(single_member())
    }

    async fn member_update(
        &self,
        _: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(single_member())
    }

    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let revision = self.store.current_revision().map_err(status)?;
        let header = self.store.header(revision);
        let member = Member {
            id: header.member_id,
            name: self.store.config().name.clone(),
            peer_ur_ls: self.advertised.peer_urls.clone(),
            client_ur_ls: self.advertised.client_urls.clone(),
            is_learner: false,
        };
        Ok(Response::new(MemberListResponse {
            header: Some(header),
            members: vec![member],
        }))
    }

    async fn member_promote(
        &self,
        _: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(single_member())
    }
}
