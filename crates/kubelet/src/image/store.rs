//! The containerd side of images: importing a layout tarball (content store
//! writes, the image record, unpacking into snapshots) and resolving an image
//! name to what a container needs (its run config and its top snapshot).
//!
//! An import runs under a lease, so containerd's garbage collector cannot
//! remove blobs and snapshots before the image record (and the `gc.ref`
//! labels on the manifest and config) hold on to them.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, GetImageRequest, Image, Info, InfoRequest,
    ReadContentRequest, UpdateImageRequest, UpdateRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor as ContainerdDescriptor;
use tonic::Code;

use super::digest::chain_ids;
use super::layout::ImageLayout;
use super::oci::{
    Descriptor, ImageConfiguration, Index, Manifest, Platform, RunConfig, MEDIA_TYPE_DOCKER_LIST,
    MEDIA_TYPE_INDEX,
};
use super::reference::normalize;
use super::ImageError;
use crate::containerd::Connection;

/// The snapshotter images are unpacked into and containers run from.
pub const SNAPSHOTTER: &str = "overlayfs";
/// Size of each chunk written to the content store.
const WRITE_CHUNK: usize = 1 << 20;
/// How many times a blob locked by another writer is waited for.
const WRITE_ATTEMPTS: u32 = 60;

/// An image ready to run: its name, run config and unpacked root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The full name.
    pub name: String,
    /// Entrypoint, command, environment and working directory.
    pub run: RunConfig,
    /// The chain ID of the top layer: the snapshot a container's root is prepared from.
    pub chain_id: String,
}

/// Images in one containerd namespace.
#[derive(Clone, Debug)]
pub struct ImageStore {
    connection: Connection,
}

impl ImageStore {
    /// The image store over a containerd connection.
    pub fn new(connection: Connection) -> ImageStore {
        ImageStore { connection }
    }

    /// Imports an OCI image layout tarball: writes its blobs, unpacks its
    /// layers and creates (or updates) the image record. Returns the image's name.
    #[tracing::instrument(skip_all)]
    pub async fn import(&self, tarball: &[u8]) -> Result<String, ImageError> {
        let layout = ImageLayout::read(tarball, &Platform::current())?;
        let lease = self.create_lease(&layout.name).await?;
        let imported = self.import_leased(&layout, &lease).await;
        let released = self.delete_lease(&lease).await;
        imported.and(released)?;
        tracing::info!(image = %layout.name, "imported image");
        Ok(layout.name)
    }

    /// The image named `reference` (normalised), with its snapshot unpacked
    /// (now, if another client imported it without unpacking);
    /// [`ImageError::NotPresent`] when containerd has no such image.
    pub async fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        let name = normalize(reference);
        let request = self
            .connection
            .request(GetImageRequest { name: name.clone() });
        let image = match self.connection.images().get(request).await {
            Ok(response) => response.into_inner().image,
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => return Err(ImageError::containerd("get image", status)),
        };
        let target = image
            .and_then(|image| image.target)
            .ok_or_else(|| ImageError::NotPresent(name.clone()))?;
        let (manifest, config) = self.read_manifest(&target).await?;
        let chain_id = chain_ids(&config.rootfs.diff_ids)
            .pop()
            .ok_or_else(|| ImageError::Invalid(format!("image {name} has no layers")))?;
        if manifest.layers.len() != config.rootfs.diff_ids.len() {
            return Err(ImageError::Invalid(format!(
                "image {name} has {} layers and {} diff IDs",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        if !self.snapshot_exists(&chain_id).await? {
            // Imported by another client without unpacking (`ctr images
            // import --no-unpack`): unpack it from the content store now.
            self.unpack_stored(&name, &manifest, &config).await?;
        }
        Ok(ResolvedImage {
            name,
            run: config.config.unwrap_or_default(),
            chain_id,
        })
    }

    async fn import_leased(&self, layout: &ImageLayout, lease: &str) -> Result<(), ImageError> {
        let chain = chain_ids(&layout.config.rootfs.diff_ids);
        for descriptor in layout.descriptors() {
            let labels = gc_labels(layout, descriptor, &chain);
            let blob = layout.blob(&descriptor.digest)?;
            self.write_blob(descriptor, blob, labels, lease).await?;
        }
        self.unpack(&layout.manifest.layers, &chain, lease).await?;
        self.put_image(&layout.name, &layout.manifest_descriptor)
            .await
    }

    /// Applies each layer onto the snapshot of those below it, lowest first.
    async fn unpack(
        &self,
        layers: &[Descriptor],
        chain: &[String],
        lease: &str,
    ) -> Result<(), ImageError> {
        let mut parent = String::new();
        for (layer, chain_id) in layers.iter().zip(chain) {
            self.unpack_layer(layer, &parent, chain_id, lease).await?;
            parent = chain_id.clone();
        }
        Ok(())
    }

    /// Unpacks an image whose blobs are already in the content store, and
    /// labels its config so the garbage collector keeps the snapshots.
    async fn unpack_stored(
        &self,
        name: &str,
        manifest: &Manifest,
        config: &ImageConfiguration,
    ) -> Result<(), ImageError> {
        let chain = chain_ids(&config.rootfs.diff_ids);
        let lease = self.create_lease(name).await?;
        let unpacked = async {
            self.unpack(&manifest.layers, &chain, &lease).await?;
            let top = chain.last().cloned().unwrap_or_default();
            self.label_blob(&manifest.config.digest, &gc_snapshot_label(), top)
                .await
        }
        .await;
        let released = self.delete_lease(&lease).await;
        unpacked.and(released)?;
        tracing::info!(image = %name, "unpacked image");
        Ok(())
    }

    /// Sets one label on a blob in the content store.
    async fn label_blob(&self, digest: &str, key: &str, value: String) -> Result<(), ImageError> {
        let update = UpdateRequest {
            info: Some(Info {
                digest: digest.to_string(),
                labels: HashMap::from([(key.to_string(), value)]),
                ..Info::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![format!("labels.{key}")],
            }),
        };
        self.connection
            .content()
            .update(self.connection.request(update))
            .await
            .map(|_| ())
            .map_err(|status| ImageError::containerd("label content", status))
    }

    /// Writes one blob through the Content service's Write stream, unless
    /// the store has it already. Another import writing the same blob holds
    /// its ref locked (`Unavailable`); this one waits for it, as
    /// containerd's own client does, and finds the blob there.
    async fn write_blob(
        &self,
        descriptor: &Descriptor,
        blob: &[u8],
        labels: HashMap<String, String>,
        lease: &str,
    ) -> Result<(), ImageError> {
        let mut delay = Duration::from_millis(10);
        for _ in 0..WRITE_ATTEMPTS {
            if self.has_blob(&descriptor.digest).await? {
                return Ok(());
            }
            let requests = write_requests(descriptor, blob, labels.clone());
            match self.try_write(requests, lease).await {
                Ok(()) => return Ok(()),
                Err(status) if status.code() == Code::AlreadyExists => return Ok(()),
                Err(status) if status.code() == Code::Unavailable => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(status) => return Err(ImageError::containerd("content write", status)),
            }
        }
        Err(ImageError::Containerd {
            what: "content write",
            message: format!("{} stays locked by another writer", descriptor.digest),
        })
    }

    async fn has_blob(&self, digest: &str) -> Result<bool, ImageError> {
        let info = InfoRequest {
            digest: digest.to_string(),
        };
        match self
            .connection
            .content()
            .info(self.connection.request(info))
            .await
        {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(ImageError::containerd("content info", status)),
        }
    }

    async fn try_write(
        &self,
        requests: Vec<WriteContentRequest>,
        lease: &str,
    ) -> Result<(), tonic::Status> {
        let request = self.connection.leased(tokio_stream::iter(requests), lease);
        let mut responses = self.connection.content().write(request).await?.into_inner();
        while responses.message().await?.is_some() {}
        Ok(())
    }

    /// Applies one layer onto a snapshot prepared from its parent and commits
    /// it under its chain ID, unless that snapshot exists already.
    async fn unpack_layer(
        &self,
        layer: &Descriptor,
        parent: &str,
        chain_id: &str,
        lease: &str,
    ) -> Result<(), ImageError> {
        if self.snapshot_exists(chain_id).await? {
            return Ok(());
        }
        let key = format!("extract-{lease}-{chain_id}");
        let prepare = PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: key.clone(),
            parent: parent.to_string(),
            labels: HashMap::new(),
        };
        let mounts = self
            .connection
            .snapshots()
            .prepare(self.connection.leased(prepare, lease))
            .await
            .map_err(|status| ImageError::containerd("prepare snapshot", status))?
            .into_inner()
            .mounts;
        let applied = self
            .apply_and_commit(layer, mounts, &key, chain_id, lease)
            .await;
        // Committed, the extraction key is gone; otherwise it is removed
        // (also when another unpack committed the same layer first).
        if !matches!(applied, Ok(true)) {
            let remove = RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_string(),
                key,
            };
            let _ = self
                .connection
                .snapshots()
                .remove(self.connection.request(remove))
                .await;
        }
        applied.map(|_| ())
    }

    /// Applies the layer and commits the snapshot under its chain ID;
    /// false when a snapshot of that name appeared meanwhile.
    async fn apply_and_commit(
        &self,
        layer: &Descriptor,
        mounts: Vec<containerd_client::types::Mount>,
        key: &str,
        chain_id: &str,
        lease: &str,
    ) -> Result<bool, ImageError> {
        let apply = ApplyRequest {
            diff: Some(to_containerd(layer)),
            mounts,
            ..ApplyRequest::default()
        };
        self.connection
            .diff()
            .apply(self.connection.leased(apply, lease))
            .await
            .map_err(|status| ImageError::containerd("apply layer", status))?;
        let commit = CommitSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            name: chain_id.to_string(),
            key: key.to_string(),
            ..CommitSnapshotRequest::default()
        };
        match self
            .connection
            .snapshots()
            .commit(self.connection.leased(commit, lease))
            .await
        {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::AlreadyExists => Ok(false),
            Err(status) => Err(ImageError::containerd("commit snapshot", status)),
        }
    }

    async fn snapshot_exists(&self, key: &str) -> Result<bool, ImageError> {
        let stat = StatSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: key.to_string(),
        };
        match self
            .connection
            .snapshots()
            .stat(self.connection.request(stat))
            .await
        {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(ImageError::containerd("stat snapshot", status)),
        }
    }

    /// Creates the image record, or points an existing one at the new manifest.
    async fn put_image(&self, name: &str, manifest: &Descriptor) -> Result<(), ImageError> {
        let image = Image {
            name: name.to_string(),
            target: Some(to_containerd(manifest)),
            ..Image::default()
        };
        let create = CreateImageRequest {
            image: Some(image.clone()),
            ..CreateImageRequest::default()
        };
        match self
            .connection
            .images()
            .create(self.connection.request(create))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::AlreadyExists => {
                let update = UpdateImageRequest {
                    image: Some(image),
                    ..UpdateImageRequest::default()
                };
                self.connection
                    .images()
                    .update(self.connection.request(update))
                    .await
                    .map(|_| ())
                    .map_err(|status| ImageError::containerd("update image", status))
            }
            Err(status) => Err(ImageError::containerd("create image", status)),
        }
    }

    /// Reads the manifest for this platform (following an index) and its config.
    async fn read_manifest(
        &self,
        target: &ContainerdDescriptor,
    ) -> Result<(Manifest, ImageConfiguration), ImageError> {
        let mut target = target.clone();
        for _ in 0..4 {
            let bytes = self.read_blob(&target.digest).await?;
            if target.media_type != MEDIA_TYPE_INDEX && target.media_type != MEDIA_TYPE_DOCKER_LIST
            {
                let manifest: Manifest = parse("manifest", &bytes)?;
                let config = self.read_blob(&manifest.config.digest).await?;
                return Ok((manifest, parse("config", &config)?));
            }
            let index: Index = parse("index", &bytes)?;
            let platform = Platform::current();
            let chosen = index
                .manifests
                .iter()
                .find(|m| m.platform.as_ref().is_none_or(|p| *p == platform))
                .ok_or_else(|| {
                    ImageError::NoPlatform(format!("linux/{}", platform.architecture))
                })?;
            target = to_containerd(chosen);
        }
        Err(ImageError::Invalid(
            "image indexes nest too deep".to_string(),
        ))
    }

    async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let read = ReadContentRequest {
            digest: digest.to_string(),
            ..ReadContentRequest::default()
        };
        let mut stream = self
            .connection
            .content()
            .read(self.connection.request(read))
            .await
            .map_err(|status| ImageError::containerd("read content", status))?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|status| ImageError::containerd("read content", status))?
        {
            bytes.extend_from_slice(&chunk.data);
        }
        Ok(bytes)
    }

    async fn create_lease(&self, image: &str) -> Result<String, ImageError> {
        self.connection
            .create_lease(&format!("import {image}"))
            .await
            .map_err(|status| ImageError::containerd("create lease", status))
    }

    async fn delete_lease(&self, id: &str) -> Result<(), ImageError> {
        self.connection
            .delete_lease(id)
            .await
            .map_err(|status| ImageError::containerd("delete lease", status))
    }
}

/// The labels that make containerd's garbage collector keep what a blob
/// refers to: a manifest its config and layers, a config its unpacked snapshot.
fn gc_labels(
    layout: &ImageLayout,
    descriptor: &Descriptor,
    chain: &[String],
) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    if descriptor.digest == layout.manifest_descriptor.digest {
        labels.insert(
            "containerd.io/gc.ref.content.config".to_string(),
            layout.manifest.config.digest.clone(),
        );
        for (i, layer) in layout.manifest.layers.iter().enumerate() {
            labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                layer.digest.clone(),
            );
        }
    } else if descriptor.digest == layout.manifest.config.digest {
        if let Some(top) = chain.last() {
            labels.insert(gc_snapshot_label(), top.clone());
        }
    }
    labels
}

/// The label on an image config that keeps its unpacked snapshot.
fn gc_snapshot_label() -> String {
    format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}")
}

/// The Write stream for one blob: WRITE requests of one chunk each, the last
/// one a COMMIT that checks size and digest and sets the labels.
fn write_requests(
    descriptor: &Descriptor,
    blob: &[u8],
    labels: HashMap<String, String>,
) -> Vec<WriteContentRequest> {
    let reference = format!("skiff-{}", descriptor.digest);
    let chunks: Vec<&[u8]> = if blob.is_empty() {
        vec![&[]]
    } else {
        blob.chunks(WRITE_CHUNK).collect()
    };
    let last = chunks.len() - 1;
    let mut offset = 0;
    let mut requests = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let commit = i == last;
        requests.push(WriteContentRequest {
            action: if commit {
                WriteAction::Commit
            } else {
                WriteAction::Write
            } as i32,
            r#ref: reference.clone(),
            total: descriptor.size,
            expected: descriptor.digest.clone(),
            offset,
            data: chunk.to_vec(),
            labels: if commit {
                labels.clone()
            } else {
                HashMap::new()
            },
        });
        offset += chunk.len() as i64;
    }
    requests
}

fn to_containerd(descriptor: &Descriptor) -> ContainerdDescriptor {
    ContainerdDescriptor {
        media_type: descriptor.media_type.clone(),
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        annotations: descriptor
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
        what: what.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(size: usize) -> Descriptor {
        Descriptor {
            media_type: "application/octet-stream".into(),
            digest: "sha256:abc".into(),
            size: size as i64,
            ..Descriptor::default()
        }
    }

    #[test]
    fn a_small_blob_is_one_commit_with_its_labels() {
        let labels = HashMap::from([("k".to_string(), "v".to_string())]);
        let requests = write_requests(&descriptor(3), b"abc", labels.clone());
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].action, WriteAction::Commit as i32);
        assert_eq!(requests[0].labels, labels);
        assert_eq!(requests[0].expected, "sha256:abc");
        assert_eq!(requests[0].total, 3);
    }

    #[test]
    fn a_large_blob_is_written_in_chunks_at_rising_offsets_then_committed() {
        let blob = vec![7u8; WRITE_CHUNK * 2 + 5];
        let requests = write_requests(&descriptor(blob.len()), &blob, HashMap::new());
        let offsets: Vec<i64> = requests.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, WRITE_CHUNK as i64, 2 * WRITE_CHUNK as i64]);
        assert_eq!(requests[0].action, WriteAction::Write as i32);
        assert_eq!(requests[2].action, WriteAction::Commit as i32);
        assert_eq!(requests[2].data.len(), 5);
    }

    #[test]
    fn an_empty_blob_is_still_committed() {
        let requests = write_requests(&descriptor(0), b"", HashMap::new());
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].action, WriteAction::Commit as i32);
    }
}
