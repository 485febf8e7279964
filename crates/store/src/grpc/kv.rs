//! `etcdserverpb.KV`.

use skiff_proto::etcdserverpb::kv_server::Kv;
use skiff_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use tonic::{Request, Response, Status};

use super::status;
use crate::store::Store;

pub(crate) struct KvService {
    store: Store,
}

impl KvService {
    pub(crate) fn new(store: Store) -> Self {
        KvService { store }
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let req = request.into_inner();
        self.store
            .range(&req)
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.store
            .put(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        self.store
            .delete_range(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.store
            .txn(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        self.store
            .compact(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}
