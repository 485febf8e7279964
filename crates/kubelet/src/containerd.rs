//! One connection to containerd's gRPC socket, shared by the image store
//! ([`crate::image`]) and the containerd runtime ([`crate::runtime::containerd`]), scoped to a containerd
//! namespace: every request carries the `containerd-namespace` header, and
//! requests made during an import carry a lease (`containerd-lease`) so that
//! containerd's garbage collector keeps what is half-written.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient, diff_client::DiffClient,
    images_client::ImagesClient, leases_client::LeasesClient, tasks_client::TasksClient,
    CreateRequest, DeleteRequest,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use sha2::{Digest, Sha256};

/// The gRPC metadata key containerd reads the namespace from.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The gRPC metadata key containerd reads a lease from.
const LEASE_HEADER: &str = "containerd-lease";

/// containerd could not be reached, or the namespace is not a valid header value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

/// A channel to containerd and the namespace every request is made in.
#[derive(Clone, Debug)]
pub struct Connection {
    channel: Channel,
    namespace: AsciiMetadataValue,
}

impl Connection {
    /// Connects to containerd's socket; requests will use `namespace`.
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Connection, ConnectError> {
        let namespace = AsciiMetadataValue::try_from(namespace)
            .map_err(|_| ConnectError(format!("invalid containerd namespace {namespace:?}")))?;
        let channel = containerd_client::connect(socket).await.map_err(|error| {
            ConnectError(format!(
                "cannot connect to containerd at {}: {error}",
                socket.display()
            ))
        })?;
        Ok(Connection { channel, namespace })
    }

    /// A request in this connection's namespace.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert(NAMESPACE_HEADER, self.namespace.clone());
        request
    }

    /// A request in this connection's namespace, under a lease.
    pub(crate) fn leased<T>(&self, message: T, lease: &str) -> tonic::Request<T> {
        let mut request = self.request(message);
        if let Ok(lease) = AsciiMetadataValue::try_from(lease) {
            request.metadata_mut().insert(LEASE_HEADER, lease);
        }
        request
    }

    /// Creates a lease that expires in an hour (so one a crash leaves
    /// behind does not pin what it holds for ever); returns its ID.
    /// Resources created under it survive garbage collection until it is
    /// deleted, by which time something else must refer to them.
    pub(crate) async fn create_lease(&self, purpose: &str) -> Result<String, tonic::Status> {
        let seed = format!("{purpose} {:?}", SystemTime::now());
        let digest = format!("{:x}", Sha256::digest(seed.as_bytes()));
        let id = format!("skiff-{}", &digest[..16]);
        let now = jiff::Timestamp::now();
        let expiry = now
            .checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap_or(now);
        let create = CreateRequest {
            id: id.clone(),
            labels: HashMap::from([("containerd.io/gc.expire".to_string(), expiry.to_string())]),
        };
        self.leases().create(self.request(create)).await?;
        Ok(id)
    }

    /// Deletes a lease; what it held is now kept only by references.
    pub(crate) async fn delete_lease(&self, id: &str) -> Result<(), tonic::Status> {
        let delete = DeleteRequest {
            id: id.to_string(),
            sync: false,
        };
        self.leases().delete(self.request(delete)).await.map(|_| ())
    }

    pub(crate) fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }

    pub(crate) fn content(&self) -> ContentClient<Channel> {
        // Blobs are written in chunks well under this; layers are read whole.
        ContentClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    pub(crate) fn diff(&self) -> DiffClient<Channel> {
        DiffClient::new(self.channel.clone())
    }

    pub(crate) fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }

    pub(crate) fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.channel.clone())
    }

    pub(crate) fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
    }

    pub(crate) fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }
}
