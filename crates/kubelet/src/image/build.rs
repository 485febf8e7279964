//! Building a tiny OCI image layout tarball from a handful of files, so tests
//! (and machines with no registry) have an image to run: typically
//! Debian's static busybox with a symlink per applet ([`busybox_rootfs`]).
//!
//! The output is deterministic (every timestamp is zero, owners are root),
//! so the same files always make the same digests.

use std::collections::BTreeMap;

use super::digest::sha256_digest;
use super::oci::{
    Descriptor, ImageConfiguration, Index, Manifest, Platform, RootFs, RunConfig,
    ANNOTATION_REF_NAME, MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_LAYER,
    MEDIA_TYPE_MANIFEST,
};
use super::reference::normalize;
use super::ImageError;

/// The busybox applets [`busybox_rootfs`] links into `/bin`.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "cat", "ls", "wget", "nc", "httpd", "true", "false", "ip", "ps", "kill",
    "hostname", "env", "mkdir", "rm", "head", "dd", "grep", "printf", "test", "yes",
];

/// One entry of an image's root filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootfsEntry {
    /// A directory.
    Directory {
        /// Path inside the image, without a leading `/`.
        path: String,
    },
    /// A regular file.
    File {
        /// Path inside the image, without a leading `/`.
        path: String,
        /// Permission bits (`0o755` for a program).
        mode: u32,
        /// Its contents.
        contents: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Path inside the image, without a leading `/`.
        path: String,
        /// What it points to.
        target: String,
    },
}

/// What [`build_oci_tarball`] makes an image from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageBuild {
    /// The image's name; it is normalised (`busybox` → `docker.io/library/busybox:latest`).
    pub name: String,
    /// The single layer's files, in order (directories before their contents).
    pub rootfs: Vec<RootfsEntry>,
    /// The image's entrypoint.
    pub entrypoint: Vec<String>,
    /// The image's default arguments.
    pub cmd: Vec<String>,
    /// The image's environment, `NAME=value`.
    pub env: Vec<String>,
}

/// A root filesystem of Debian's static busybox (`/bin/busybox`, read by the
/// caller) with a symlink per applet in [`BUSYBOX_APPLETS`], and `/tmp`.
pub fn busybox_rootfs(busybox: Vec<u8>) -> Vec<RootfsEntry> {
    let mut entries = vec![
        RootfsEntry::Directory { path: "bin".into() },
        RootfsEntry::File {
            path: "bin/busybox".into(),
            mode: 0o755,
            contents: busybox,
        },
    ];
    for applet in BUSYBOX_APPLETS {
        entries.push(RootfsEntry::Symlink {
            path: format!("bin/{applet}"),
            target: "busybox".into(),
        });
    }
    for dir in ["tmp", "etc", "proc", "sys", "dev", "www"] {
        entries.push(RootfsEntry::Directory { path: dir.into() });
    }
    entries
}

/// The image `busybox` (`docker.io/library/busybox:latest`) of Debian's
/// static busybox, `sh` by default: what the containerd suite and
/// `skiff bench pods` run where no registry is reachable.
pub fn busybox_tarball(busybox: Vec<u8>) -> Result<Vec<u8>, ImageError> {
    build_oci_tarball(&ImageBuild {
        name: "busybox".into(),
        rootfs: busybox_rootfs(busybox),
        cmd: vec!["sh".into()],
        env: vec!["PATH=/bin".into()],
        ..ImageBuild::default()
    })
}

/// An OCI image layout tarball holding one image of one uncompressed layer.
pub fn build_oci_tarball(build: &ImageBuild) -> Result<Vec<u8>, ImageError> {
    let layer = layer_tar(&build.rootfs)?;
    let layer_digest = sha256_digest(&layer);
    let platform = Platform::current();
    let config = ImageConfiguration {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        config: Some(RunConfig {
            env: Some(build.env.clone()),
            entrypoint: (!build.entrypoint.is_empty()).then(|| build.entrypoint.clone()),
            cmd: (!build.cmd.is_empty()).then(|| build.cmd.clone()),
            working_dir: None,
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer_digest.clone()],
        },
    };
    let config = to_json(&config)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.into()),
        config: descriptor(MEDIA_TYPE_CONFIG, &config),
        layers: vec![descriptor(MEDIA_TYPE_LAYER, &layer)],
    };
    let manifest = to_json(&manifest)?;
    let mut manifest_descriptor = descriptor(MEDIA_TYPE_MANIFEST, &manifest);
    manifest_descriptor.annotations =
        BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), normalize(&build.name))]);
    manifest_descriptor.platform = Some(platform);
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.into()),
        manifests: vec![manifest_descriptor],
    };

    let mut archive = tar::Builder::new(Vec::new());
    append_file(
        &mut archive,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    append_file(&mut archive, "index.json", 0o644, &to_json(&index)?)?;
    for blob in [&layer, &config, &manifest] {
        let hex = sha256_digest(blob)
            .trim_start_matches("sha256:")
            .to_string();
        append_file(&mut archive, &format!("blobs/sha256/{hex}"), 0o644, blob)?;
    }
    Ok(archive.into_inner()?)
}

/// The layer: a plain tar of the root filesystem's entries.
fn layer_tar(rootfs: &[RootfsEntry]) -> Result<Vec<u8>, ImageError> {
    let mut layer = tar::Builder::new(Vec::new());
    for entry in rootfs {
        match entry {
            RootfsEntry::Directory { path } => {
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                layer.append_data(&mut header, path, std::io::empty())?;
            }
            RootfsEntry::File {
                path,
                mode,
                contents,
            } => append_file(&mut layer, path, *mode, contents)?,
            RootfsEntry::Symlink { path, target } => {
                let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                layer.append_link(&mut header, path, target)?;
            }
        }
    }
    Ok(layer.into_inner()?)
}

fn append_file(
    archive: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    contents: &[u8],
) -> Result<(), ImageError> {
    let mut header = header(tar::EntryType::Regular, mode, contents.len() as u64);
    archive.append_data(&mut header, path, contents)?;
    Ok(())
}

/// A tar header owned by root with a zero timestamp.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn descriptor(media_type: &str, blob: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: sha256_digest(blob),
        size: blob.len() as i64,
        ..Descriptor::default()
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(value).map_err(|source| ImageError::Json {
        what: "generated document".to_string(),
        source,
    })
}
