//! `etcdserverpb.Cluster`: the member list and membership changes, which go
//! through raft as configuration changes.

use skiff_proto::etcdserverpb::cluster_server::Cluster;
use skiff_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse, ResponseHeader,
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

    fn header(&self) -> Result<ResponseHeader, Status> {
        let revision = self.store.current_revision().map_err(status)?;
        Ok(self.store.header(revision))
    }

    /// The members in etcd's form. This member's client URLs come from its
    /// own flags until its announcement is applied.
    fn members(&self, members: Vec<crate::Member>) -> Vec<Member> {
        let me = self.store.identity().member_id;
        members
            .into_iter()
            .map(|m| {
                let client_urls = if m.id == me && m.client_urls.is_empty() {
                    self.advertised.client_urls.clone()
                } else {
                    m.client_urls
                };
                Member {
                    id: m.id,
                    name: m.name,
                    peer_ur_ls: m.peer_urls,
                    client_ur_ls: client_urls,
                    is_learner: m.is_learner,
                }
            })
            .collect()
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let req = request.into_inner();
        for url in &req.peer_ur_ls {
            crate::url::parse(url)
                .map_err(|e| Status::invalid_argument(format!("etcdserver: {e}")))?;
        }
        let (member, members) = self
            .store
            .member_add(req.peer_ur_ls, req.is_learner)
            .await
            .map_err(status)?;
        Ok(Response::new(MemberAddResponse {
            header: Some(self.header()?),
            member: self.members(vec![member]).pop(),
            members: self.members(members),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let members = self
            .store
            .member_remove(request.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(MemberRemoveResponse {
            header: Some(self.header()?),
            members: self.members(members),
        }))
    }

    async fn member_update(
        &self,
        _: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(Status::unimplemented(
            "changing a member's peer URLs is not supported; remove the member and add it again",
        ))
    }

    async fn member_list(
        &self,
        request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        // etcd serves the list linearizably unless asked otherwise.
        if request.into_inner().linearizable {
            self.store.wait_linearizable().await.map_err(status)?;
        }
        let members = self.store.member_list().map_err(status)?;
        Ok(Response::new(MemberListResponse {
            header: Some(self.header()?),
            members: self.members(members),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let members = self
            .store
            .member_promote(request.into_inner().id)
            .await
            .map_err(status)?;
        Ok(Response::new(MemberPromoteResponse {
            header: Some(self.header()?),
            members: self.members(members),
        }))
    }
}
