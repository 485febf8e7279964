//! `etcdserverpb.Lease`.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use skiff_proto::etcdserverpb::lease_server::Lease;
use skiff_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use tonic::{Request, Response, Status, Streaming};

use super::status;
use crate::error::StoreError;
use crate::store::Store;

pub(crate) struct LeaseService {
    store: Store,
}

impl LeaseService {
    pub(crate) fn new(store: Store) -> Self {
        LeaseService { store }
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        self.store
            .lease_grant(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        self.store
            .lease_revoke(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    /// Each request renews one lease; an unknown lease is answered with TTL 0, as
    /// etcd does, which clients read as "expired or revoked".
    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let store = self.store.clone();
        let responses = request.into_inner().then(move |req| {
            let store = store.clone();
            async move {
                let req = req?;
                let ttl = match store.lease_keep_alive(req.id).await {
                    Ok(ttl) => ttl,
                    Err(StoreError::LeaseNotFound) => 0,
                    Err(err) => return Err(status(err)),
                };
                let revision = store.current_revision().map_err(status)?;
                Ok(LeaseKeepAliveResponse {
                    header: Some(store.header(revision)),
                    id: req.id,
                    ttl,
                })
            }
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.store
            .lease_time_to_live(&request.into_inner())
            .map(Response::new)
            .map_err(status)
    }

    async fn lease_leases(
        &self,
        _: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.store.lease_leases().map(Response::new).map_err(status)
    }
}
