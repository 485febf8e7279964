//! Pod volumes and container environments.
//!
//! Volumes are set up under the pod's directory before its containers
//! start, and each container's `volumeMounts` become [`Mount`]s of those
//! node paths:
//! - `emptyDir`: an empty directory, `<pod dir>/volumes/empty-dir/<name>`,
//!   removed with the pod.
//! - `hostPath`: the node's path itself (created for `DirectoryOrCreate`).
//! - `configMap`, `secret`: one file per key (or per listed item), written
//!   under `<pod dir>/volumes/{configmap,secret}/<name>` at each sync, so
//!   a changed ConfigMap reaches the files.
//!
//! # Layout
//! - [`env`]: environment variables from literals, ConfigMaps, Secrets and
//!   the downward API.
//!
//! # Caveats
//! No projected, downwardAPI, persistentVolumeClaim or CSI volumes; no
//! `subPath`; file modes are left at the node's defaults; emptyDir
//! `medium: Memory` is an ordinary directory.

pub mod env;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod};

use crate::runtime::Mount;
use env::Sources;

/// Why a volume cannot be set up (reason `CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A ConfigMap or Secret the volume needs is missing.
    #[error("{kind} {name:?} not found")]
    SourceNotFound {
        /// "configmap" or "secret".
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The volume's files could not be written.
    #[error("volume {volume:?}: {source}")]
    Io {
        /// The volume's name.
        volume: String,
        /// What failed.
        source: std::io::Error,
    },
    /// A container mounts a volume the pod does not declare.
    #[error("container {container:?} mounts unknown volume {volume:?}")]
    UnknownVolume {
        /// The container.
        container: String,
        /// The volume name.
        volume: String,
    },
}

/// Sets up every volume of the pod under `pod_dir`; returns the node path of
/// each, by volume name.
pub async fn prepare(
    pod: &Pod,
    pod_dir: &Path,
    sources: &Sources,
) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let mut paths = BTreeMap::new();
    let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    for volume in volumes {
        let io = |source| VolumeError::Io {
            volume: volume.name.clone(),
            source,
        };
        let path = if volume.empty_dir.is_some() {
            let path = pod_dir.join("volumes/empty-dir").join(&volume.name);
            tokio::fs::create_dir_all(&path).await.map_err(io)?;
            path
        } else if let Some(host) = &volume.host_path {
            let path = PathBuf::from(&host.path);
            if host.type_.as_deref() == Some("DirectoryOrCreate") {
                tokio::fs::create_dir_all(&path).await.map_err(io)?;
            }
            path
        } else if let Some(source) = &volume.config_map {
            let dir = pod_dir.join("volumes/configmap").join(&volume.name);
            let Some(map) = sources.config_maps.get(&source.name) else {
                if source.optional == Some(true) {
                    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
                    paths.insert(volume.name.clone(), dir);
                    continue;
                }
                return Err(VolumeError::SourceNotFound {
                    kind: "configmap",
                    name: source.name.clone(),
                });
            };
            let data = map
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()));
            write_files(&dir, data.collect(), source.items.as_deref())
                .await
                .map_err(io)?;
            dir
        } else if let Some(source) = &volume.secret {
            let name = source.secret_name.clone().unwrap_or_default();
            let dir = pod_dir.join("volumes/secret").join(&volume.name);
            let Some(secret) = sources.secrets.get(&name) else {
                if source.optional == Some(true) {
                    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
                    paths.insert(volume.name.clone(), dir);
                    continue;
                }
                return Err(VolumeError::SourceNotFound {
                    kind: "secret",
                    name,
                });
            };
            let data = secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()));
            write_files(&dir, data.collect(), source.items.as_deref())
                .await
                .map_err(io)?;
            dir
        } else {
            tracing::warn!(volume = %volume.name, "volume type not supported; skipped");
            continue;
        };
        paths.insert(volume.name.clone(), path);
    }
    Ok(paths)
}

/// Writes each key (or each listed item, under its path) as a file.
async fn write_files(
    dir: &Path,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let files: Vec<(String, &Vec<u8>)> = match items {
        Some(items) => items
            .iter()
            .filter_map(|i| data.get(&i.key).map(|v| (i.path.clone(), v)))
            .collect(),
        None => data.iter().map(|(k, v)| (k.clone(), v)).collect(),
    };
    for (path, bytes) in files {
        let path = dir.join(path.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&path, bytes).await?;
    }
    Ok(())
}

/// The container's mounts, from its volumeMounts and the prepared volumes.
pub fn mounts(
    container: &Container,
    volumes: &BTreeMap<String, PathBuf>,
) -> Result<Vec<Mount>, VolumeError> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let host_path = volumes
                .get(&m.name)
                .ok_or_else(|| VolumeError::UnknownVolume {
                    container: container.name.clone(),
                    volume: m.name.clone(),
                })?;
            Ok(Mount {
                host_path: host_path.clone(),
                container_path: PathBuf::from(&m.mount_path),
                read_only: m.read_only == Some(true),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[tokio::test]
    async fn config_map_and_empty_dir_volumes_are_written_under_the_pod_dir_and_mounted() {
        let dir = tempfile::tempdir().unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "settings"}},
                    {"name": "scratch", "emptyDir": {}},
                ],
                "containers": [{"name": "app", "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/app", "readOnly": true},
                    {"name": "scratch", "mountPath": "/tmp/scratch"},
                ]}],
            },
        }))
        .unwrap();
        let map: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
        )
        .unwrap();
        let sources = Sources {
            config_maps: [("settings".to_string(), map)].into(),
            ..Sources::default()
        };
        let volumes = prepare(&pod, dir.path(), &sources).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(volumes["cfg"].join("mode")).unwrap(),
            "fast"
        );
        assert!(volumes["scratch"].is_dir());
        let mounts = mounts(&pod.spec.as_ref().unwrap().containers[0], &volumes).unwrap();
        assert_eq!(mounts[0].container_path, PathBuf::from("/etc/app"));
        assert!(mounts[0].read_only);
        assert_eq!(mounts[1].host_path, volumes["scratch"]);
    }

    #[tokio::test]
    async fn a_missing_secret_stops_the_volume_setup() {
        let dir = tempfile::tempdir().unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"volumes": [{"name": "s", "secret": {"secretName": "creds"}}], "containers": []},
        }))
        .unwrap();
        let error = prepare(&pod, dir.path(), &Sources::default())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            VolumeError::SourceNotFound { kind: "secret", .. }
        ));
    }
}
