//! [`Client`]: one gRPC channel to the API server's `skiff.api.v1.Api` service.
//!
//! The client is cheap to clone (clones share the channel) and is untyped: it
//! sends JSON bytes addressed by a `ResourceRef`. [`crate::Api`] is the view
//! callers want. It accepts messages up to 64 MiB, as lists of many objects
//! are big; failed calls become [`Error`]s carrying the Kubernetes Status.

use futures::stream::BoxStream;
use futures::StreamExt;
use skiff_proto::api::api_client::ApiClient;
use skiff_proto::api::{
    CreateRequest, DeleteRequest, DiscoveryRequest, ExecResponse, GetRequest, ListRequest,
    LogChunk, LogRequest, PatchRequest, UpdateRequest, WatchEvent, WatchRequest,
};
use tonic::transport::Channel;

use crate::error::{from_grpc, Error};

/// The largest message accepted from the server: lists of many objects are big.
const MAX_DECODING_BYTES: usize = 64 * 1024 * 1024;

/// A connection to the API server. Clone it freely.
#[derive(Clone, Debug)]
pub struct Client {
    inner: ApiClient<Channel>,
}

impl Client {
    /// A client over an existing channel, such as the API server's in-process
    /// one (`skiff_apiserver::grpc::in_process_channel`).
    pub fn new(channel: Channel) -> Client {
        Client {
            inner: ApiClient::new(channel).max_decoding_message_size(MAX_DECODING_BYTES),
        }
    }

    /// Connects to the API server at `url`, such as `http://127.0.0.1:6443`.
    pub async fn connect(url: impl Into<String>) -> Result<Client, Error> {
        let url = url.into();
        let endpoint = tonic::transport::Endpoint::from_shared(url.clone()).map_err(|e| {
            Error::InvalidConfig(format!("{url:?} is not a valid API server URL: {e}"))
        })?;
        Ok(Client::new(endpoint.connect().await?))
    }

    /// The resources the server serves, as the wire carries them; see
    /// [`Client::discover`].
    pub(crate) async fn discovery(&self) -> Result<Vec<skiff_proto::api::ApiResource>, Error> {
        let reply = self
            .inner
            .clone()
            .discovery(DiscoveryRequest {})
            .await
            .map_err(from_grpc)?;
        Ok(reply.into_inner().resources)
    }

    pub(crate) async fn create(&self, req: CreateRequest) -> Result<Vec<u8>, Error> {
        let reply = self.inner.clone().create(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().object)
    }

    pub(crate) async fn get(&self, req: GetRequest) -> Result<Vec<u8>, Error> {
        let reply = self.inner.clone().get(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().object)
    }

    pub(crate) async fn list(&self, req: ListRequest) -> Result<Vec<u8>, Error> {
        let reply = self.inner.clone().list(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().list)
    }

    pub(crate) async fn update(&self, req: UpdateRequest) -> Result<Vec<u8>, Error> {
        let reply = self.inner.clone().update(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().object)
    }

    pub(crate) async fn patch(&self, req: PatchRequest) -> Result<Vec<u8>, Error> {
        let reply = self.inner.clone().patch(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().object)
    }

    pub(crate) async fn delete(&self, req: DeleteRequest) -> Result<Vec<u8>, Error> {
        let reply = self.inner.clone().delete(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().object)
    }

    pub(crate) async fn watch(
        &self,
        req: WatchRequest,
    ) -> Result<BoxStream<'static, Result<WatchEvent, Error>>, Error> {
        let reply = self.inner.clone().watch(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().map(|e| e.map_err(from_grpc)).boxed())
    }

    pub(crate) async fn logs(
        &self,
        req: LogRequest,
    ) -> Result<BoxStream<'static, Result<LogChunk, Error>>, Error> {
        let reply = self.inner.clone().logs(req).await.map_err(from_grpc)?;
        Ok(reply.into_inner().map(|c| c.map_err(from_grpc)).boxed())
    }

    /// The `Exec` call as a future of its own (it runs in a spawned task
    /// beside the caller, who writes stdin).
    pub(crate) fn exec(
        &self,
        requests: crate::pod::ExecRequests,
    ) -> impl std::future::Future<
        Output = Result<BoxStream<'static, Result<ExecResponse, Error>>, Error>,
    > + Send
           + 'static {
        let mut inner = self.inner.clone();
        async move {
            let reply = inner
                .exec(tonic::Request::new(requests))
                .await
                .map_err(from_grpc)?;
            Ok(reply.into_inner().map(|r| r.map_err(from_grpc)).boxed())
        }
    }
}
