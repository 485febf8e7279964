//! Reading an OCI image layout tarball
//! (<https://github.com/opencontainers/image-spec/blob/main/image-layout.md>):
//! `oci-layout`, `index.json` and `blobs/sha256/<hex>`, as `docker save`
//! (recent versions), `ctr image export`, `skopeo copy oci-archive:` and
//! [`super::build_oci_tarball`] write it.
//!
//! This is a pure function over the tarball's bytes: it finds the image's
//! name, picks the manifest for this machine's platform and checks every blob
//! against its digest, so the containerd side only copies and unpacks.

use std::collections::BTreeMap;
use std::io::Read;

use super::digest::sha256_digest;
use super::oci::{
    Descriptor, ImageConfiguration, Index, Manifest, Platform, ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_INDEX,
};
use super::reference::normalize;
use super::ImageError;

/// How deep indexes may nest before the layout is rejected.
const MAX_INDEX_DEPTH: usize = 4;

/// One image read from a layout tarball, with every blob it needs.
#[derive(Clone, Debug)]
pub struct ImageLayout {
    /// The image's full name (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The descriptor of the manifest chosen for this platform; the image
    /// record in containerd points at it.
    pub manifest_descriptor: Descriptor,
    /// The manifest itself.
    pub manifest: Manifest,
    /// The image configuration the manifest names.
    pub config: ImageConfiguration,
    blobs: BTreeMap<String, Vec<u8>>,
}

impl ImageLayout {
    /// Reads a layout tarball and picks the manifest for `platform`.
    pub fn read(tarball: &[u8], platform: &Platform) -> Result<ImageLayout, ImageError> {
        let files = read_files(tarball)?;
        let Some(index) = files.get("index.json") else {
            return Err(if files.contains_key("manifest.json") {
                ImageError::NotALayout(
                    "a docker-archive (manifest.json without index.json) is not supported; \
                     save it as an OCI image layout"
                        .to_string(),
                )
            } else {
                ImageError::NotALayout("no index.json".to_string())
            });
        };
        let index: Index = parse("index.json", index)?;
        let blobs = blobs(files)?;
        let entry = index
            .manifests
            .first()
            .ok_or_else(|| ImageError::NotALayout("index.json lists no manifest".to_string()))?;
        let name = image_name(entry)?;
        let manifest_descriptor = pick_manifest(entry, &blobs, platform, 0)?;
        let manifest: Manifest = parse("manifest", blob(&blobs, &manifest_descriptor.digest)?)?;
        let config: ImageConfiguration = parse("config", blob(&blobs, &manifest.config.digest)?)?;
        for layer in &manifest.layers {
            blob(&blobs, &layer.digest)?;
        }
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Invalid(format!(
                "the config lists {} diff IDs for {} layers",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        Ok(ImageLayout {
            name,
            manifest_descriptor,
            manifest,
            config,
            blobs,
        })
    }

    /// A blob of the layout by digest.
    pub fn blob(&self, digest: &str) -> Result<&[u8], ImageError> {
        blob(&self.blobs, digest)
    }

    /// The descriptors of every blob the image needs: its layers, its
    /// config, then its manifest (the order they are written in, so that
    /// nothing in the content store points at a blob not yet there).
    pub fn descriptors(&self) -> Vec<&Descriptor> {
        let mut all: Vec<&Descriptor> = self.manifest.layers.iter().collect();
        all.push(&self.manifest.config);
        all.push(&self.manifest_descriptor);
        all
    }
}

/// Every regular file in the tarball by its path (without a leading `./`).
fn read_files(tarball: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, ImageError> {
    if tarball.starts_with(&[0x1f, 0x8b]) {
        return Err(ImageError::NotALayout(
            "a gzip-compressed file; decompress it to a tar archive first".to_string(),
        ));
    }
    let not_tar = |e: std::io::Error| ImageError::NotALayout(format!("not a tar archive: {e}"));
    let mut archive = tar::Archive::new(tarball);
    let mut files = BTreeMap::new();
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(not_tar)?;
        let path = path.to_string_lossy().trim_start_matches("./").to_string();
        let mut contents = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut contents).map_err(not_tar)?;
        files.insert(path, contents);
    }
    Ok(files)
}

/// The blobs by digest, each checked against its name.
fn blobs(files: BTreeMap<String, Vec<u8>>) -> Result<BTreeMap<String, Vec<u8>>, ImageError> {
    let mut blobs = BTreeMap::new();
    for (path, contents) in files {
        let Some(hex) = path.strip_prefix("blobs/sha256/") else {
            continue;
        };
        let digest = format!("sha256:{hex}");
        let actual = sha256_digest(&contents);
        if actual != digest {
            return Err(ImageError::DigestMismatch { path, actual });
        }
        blobs.insert(digest, contents);
    }
    Ok(blobs)
}

fn blob<'a>(blobs: &'a BTreeMap<String, Vec<u8>>, digest: &str) -> Result<&'a [u8], ImageError> {
    blobs
        .get(digest)
        .map(Vec::as_slice)
        .ok_or_else(|| ImageError::MissingBlob(digest.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
        what: what.to_string(),
        source,
    })
}

/// The image's name from the index entry's annotations: containerd's full
/// name when present, else the OCI ref name, normalised.
fn image_name(entry: &Descriptor) -> Result<String, ImageError> {
    entry
        .annotations
        .get(ANNOTATION_CONTAINERD_NAME)
        .or_else(|| entry.annotations.get(ANNOTATION_REF_NAME))
        .map(|name| normalize(name))
        .ok_or_else(|| {
            ImageError::NotALayout(format!(
                "index.json names no image (annotation {ANNOTATION_REF_NAME})"
            ))
        })
}

/// Follows nested indexes down to the manifest for `platform`.
fn pick_manifest(
    entry: &Descriptor,
    blobs: &BTreeMap<String, Vec<u8>>,
    platform: &Platform,
    depth: usize,
) -> Result<Descriptor, ImageError> {
    if entry.media_type != MEDIA_TYPE_INDEX && entry.media_type != MEDIA_TYPE_DOCKER_LIST {
        return Ok(entry.clone());
    }
    if depth >= MAX_INDEX_DEPTH {
        return Err(ImageError::Invalid(
            "image indexes nest too deep".to_string(),
        ));
    }
    let index: Index = parse("nested index", blob(blobs, &entry.digest)?)?;
    let chosen = index
        .manifests
        .iter()
        .find(|m| m.platform.as_ref().is_none_or(|p| p == platform))
        .ok_or_else(|| {
            ImageError::NoPlatform(format!("{}/{}", platform.os, platform.architecture))
        })?;
    pick_manifest(chosen, blobs, platform, depth + 1)
}
