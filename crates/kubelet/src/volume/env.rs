//! A container's environment, resolved as the kubelet does before creating
//! it: `envFrom` first (ConfigMaps and Secrets, with their prefix), then
//! `env` in order — literal values with `$(VAR)` references to earlier
//! variables expanded, and `valueFrom` from a ConfigMap key, a Secret key or
//! the downward API (metadata.name, metadata.namespace, metadata.uid,
//! spec.nodeName, spec.serviceAccountName, status.podIP, status.hostIP).
//! A later variable of the same name replaces an earlier one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

/// The ConfigMaps and Secrets a pod refers to, fetched beforehand.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// ConfigMaps of the pod's namespace, by name.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets of the pod's namespace, by name.
    pub secrets: BTreeMap<String, Secret>,
    /// The pod's IP, once its sandbox has one.
    pub pod_ip: Option<String>,
    /// The node's IP.
    pub host_ip: Option<String>,
}

/// Why a container's environment cannot be built: the reason is
/// `CreateContainerConfigError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A ConfigMap that is referred to and not optional does not exist.
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    /// A Secret that is referred to and not optional does not exist.
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    /// A key is missing from a ConfigMap or Secret.
    #[error("couldn't find key {key} in {kind} {name}")]
    KeyNotFound {
        /// "ConfigMap" or "Secret".
        kind: &'static str,
        /// Its name.
        name: String,
        /// The key.
        key: String,
    },
    /// A fieldRef names a field the downward API does not offer.
    #[error("unsupported fieldPath {0:?}")]
    UnsupportedField(String),
}

/// The names of the ConfigMaps and Secrets the pod's env and volumes use.
pub fn referenced(pod: &Pod) -> (Vec<String>, Vec<String>) {
    let (mut maps, mut secrets) = (Vec::new(), Vec::new());
    let spec = pod.spec.as_ref();
    let containers = spec.into_iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    });
    for container in containers {
        for from in container.env_from.iter().flatten() {
            maps.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for var in container.env.iter().flatten() {
            let Some(from) = &var.value_from else {
                continue;
            };
            maps.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
        }
    }
    for volume in spec.into_iter().flat_map(|s| s.volumes.iter().flatten()) {
        maps.extend(volume.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(volume.secret.as_ref().and_then(|s| s.secret_name.clone()));
    }
    for list in [&mut maps, &mut secrets] {
        list.sort();
        list.dedup();
    }
    (maps, secrets)
}

/// The container's environment, in order.
pub fn resolve(
    pod: &Pod,
    container: &Container,
    sources: &Sources,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match sources.config_maps.get(&r.name) {
                Some(map) => {
                    for (k, v) in map.data.iter().flatten() {
                        set(&mut env, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        }
        if let Some(r) = &from.secret_ref {
            match sources.secrets.get(&r.name) {
                Some(secret) => {
                    for (k, v) in secret.data.iter().flatten() {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => Some(expand(var.value.as_deref().unwrap_or_default(), &env)),
            Some(from) => value_from(pod, from, sources)?,
        };
        if let Some(value) = value {
            set(&mut env, var.name.clone(), value);
        }
    }
    Ok(env)
}

fn value_from(
    pod: &Pod,
    from: &k8s_openapi::api::core::v1::EnvVarSource,
    sources: &Sources,
) -> Result<Option<String>, EnvError> {
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional == Some(true);
        return match sources.config_maps.get(&r.name) {
            Some(map) => match map.data.as_ref().and_then(|d| d.get(&r.key)) {
                Some(v) => Ok(Some(v.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::KeyNotFound {
                    kind: "ConfigMap",
                    name: r.name.clone(),
                    key: r.key.clone(),
                }),
            },
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMapNotFound(r.name.clone())),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional == Some(true);
        return match sources.secrets.get(&r.name) {
            Some(secret) => match secret.data.as_ref().and_then(|d| d.get(&r.key)) {
                Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
                None if optional => Ok(None),
                None => Err(EnvError::KeyNotFound {
                    kind: "Secret",
                    name: r.name.clone(),
                    key: r.key.clone(),
                }),
            },
            None if optional => Ok(None),
            None => Err(EnvError::SecretNotFound(r.name.clone())),
        };
    }
    if let Some(field) = &from.field_ref {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let value = match field.field_path.as_str() {
            "metadata.name" => meta.name.clone(),
            "metadata.namespace" => meta.namespace.clone(),
            "metadata.uid" => meta.uid.clone(),
            "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
            "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
            "status.podIP" => sources.pod_ip.clone(),
            "status.hostIP" => sources.host_ip.clone(),
            other => return Err(EnvError::UnsupportedField(other.to_string())),
        };
        return Ok(Some(value.unwrap_or_default()));
    }
    Ok(None)
}

/// Expands `$(NAME)` with the variables defined so far; `$$` is a literal
/// `$`; an unknown reference stays as written (Kubernetes' rules).
fn expand(value: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let (Some(body), Some(end)) = (after.strip_prefix('('), after.find(')')) {
            let name = &body[..end - 1];
            match env.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[at..at + end + 2]),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "app",
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "MESSAGE", "value": "$(GREETING) world, $$(GREETING) $(NOPE)"},
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                ],
            }]},
        }))
        .unwrap()
    }

    fn sources() -> Sources {
        let map: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
        )
        .unwrap();
        let secret: Secret = serde_json::from_value(
            json!({"metadata": {"name": "creds"}, "data": {"password": "czNjcjN0"}}),
        )
        .unwrap();
        Sources {
            config_maps: [("settings".to_string(), map)].into(),
            secrets: [("creds".to_string(), secret)].into(),
            pod_ip: Some("10.0.0.9".into()),
            host_ip: None,
        }
    }

    #[test]
    fn env_comes_from_literals_config_maps_secrets_and_the_downward_api() {
        let pod = pod();
        let env = resolve(&pod, &pod.spec.as_ref().unwrap().containers[0], &sources()).unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            env,
            [
                ("CFG_mode", "fast"),
                ("GREETING", "hello"),
                ("MESSAGE", "hello world, $(GREETING) $(NOPE)"),
                ("MODE", "fast"),
                ("PASSWORD", "s3cr3t"),
                ("POD", "web"),
                ("NS", "shop"),
                ("NODE", "n1"),
                ("IP", "10.0.0.9"),
            ]
        );
        assert_eq!(
            referenced(&pod),
            (vec!["settings".to_string()], vec!["creds".to_string()])
        );
    }

    #[test]
    fn a_missing_config_map_is_an_error_unless_optional() {
        let pod = pod();
        let mut sources = sources();
        sources.config_maps.clear();
        let error = resolve(&pod, &pod.spec.as_ref().unwrap().containers[0], &sources).unwrap_err();
        assert_eq!(error, EnvError::ConfigMapNotFound("settings".into()));
    }
}
