//! [`Client`]: one gRPC channel to the API server's `skiff.api.v1.Api` service.
//!
//! The client is cheap to clone (clones share the channel) and is untyped: it
//! sends JSON bytes addressed by a `ResourceRef`. [`crate::Api`] is the view
//! callers want. [`ClientConfig`] bounds how long connecting may take and
//! how big a message may be (64 MiB by default, as lists of many objects are
//! big); failed calls become [`Error`]s carrying the Kubernetes Status.

use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use skiff_proto::api::api_client::ApiClient;
use skiff_proto::api::{
    CreateRequest, DeleteRequest, DiscoveryRequest, ExecResponse, GetRequest, ListRequest,
    LogChunk, LogRequest, PatchRequest, UpdateRequest, WatchEvent, WatchRequest,
};
use tonic::transport::Channel;

use crate::error::{from_grpc, Error};

/// How a [`Client`] connects: plain data, `Default` for the usual values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// How long [`Client::connect_with`] waits for the TCP connection before
    /// failing with [`Error::Connect`]; `None` waits as long as the OS does.
    pub connect_timeout: Option<Duration>,
    /// The largest message sent or accepted, in bytes: lists of many objects
    /// are big.
    pub max_message_bytes: usize,
}

impl Default for ClientConfig {
    /// A 5 s connect timeout and 64 MiB messages.
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Some(Duration::from_secs(5)),
            max_message_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A connection to the API server. Clone it freely.
#[derive(Clone, Debug)]
pub struct Client {
    inner: ApiClient<Channel>,
}

impl Client {
    /// A client over an existing channel, such as the API server's in-process
    /// one (`skiff_apiserver::grpc::in_process_channel`).
    /// Messages are bounded as [`ClientConfig::default`] says.
    pub fn new(channel: Channel) -> Client {
        Client::with_config(channel, &ClientConfig::default())
    }

    /// A client over an existing channel, with `config`'s message bound.
    pub fn with_config(channel: Channel, config: &ClientConfig) -> Client {
        let inner = ApiClient::new(channel)
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        Client { inner }
    }

    /// Connects to the API server at `url`, such as `http://127.0.0.1:6443`,
    /// with the default [`ClientConfig`].
    pub async fn connect(url: impl Into<String>) -> Result<Client, Error> {
        Client::connect_with(url, &ClientConfig::default()).await
    }

    /// Connects to the API server at `url` as `config` says. A `url` that is
    /// not one is [`Error::InvalidConfig`]; a server that does not answer in
    /// time is [`Error::Connect`].
    pub async fn connect_with(
        url: impl Into<String>,
        config: &ClientConfig,
    ) -> Result<Client, Error> {
        let url = url.into();
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone()).map_err(|e| {
            Error::InvalidConfig(format!("{url:?} is not a valid API server URL: {e}"))
        })?;
        if let Some(timeout) = config.connect_timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        Ok(Client::with_config(endpoint.connect().await?, config))
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
