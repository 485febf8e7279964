//! Where a pod's kubelet is and which container a request means: pure
//! functions over the Pod and Node, with Kubernetes' own error texts.

use k8s_openapi::api::core::v1::{Node, Pod};
use skiff_api::status::ApiError;

/// The kubelet's port when the Node does not say (Kubernetes' 10250).
pub(crate) const DEFAULT_KUBELET_PORT: i32 = 10250;

/// The node the pod is bound to; BadRequest when it is not bound yet.
pub(crate) fn node_name(pod: &Pod) -> Result<&str, ApiError> {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.node_name.as_deref())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "pod {} does not have a host assigned",
                pod_name(pod)
            ))
        })
}

/// The container a request names, defaulted as Kubernetes does: an empty
/// name means the pod's only container, and is an error naming the choices
/// when there are several.
pub(crate) fn container_for(pod: &Pod, requested: &str) -> Result<String, ApiError> {
    let names = |init: bool| -> Vec<String> {
        let spec = pod.spec.as_ref();
        let containers = match init {
            false => spec.map(|s| s.containers.as_slice()),
            true => spec.and_then(|s| s.init_containers.as_deref()),
        };
        containers
            .unwrap_or_default()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    let (containers, init_containers) = (names(false), names(true));
    let name = pod_name(pod);
    if requested.is_empty() {
        return match containers.as_slice() {
            [only] => Ok(only.clone()),
            _ => {
                let mut message = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                );
                if !init_containers.is_empty() {
                    message += &format!(
                        " or one of the init containers: [{}]",
                        init_containers.join(" ")
                    );
                }
                Err(ApiError::bad_request(message))
            }
        };
    }
    match containers
        .iter()
        .chain(&init_containers)
        .any(|c| c == requested)
    {
        true => Ok(requested.to_string()),
        false => Err(ApiError::bad_request(format!(
            "container {requested} is not valid for pod {name}"
        ))),
    }
}

/// `host:port` of the node's kubelet: its InternalIP, else its Hostname
/// (as the API server's default `--kubelet-preferred-address-types` order
/// prefers InternalIP), at `daemonEndpoints.kubeletEndpoint.port` or 10250.
pub(crate) fn kubelet_authority(node: &Node) -> Result<String, ApiError> {
    let status = node.status.as_ref();
    let addresses = status
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or_default();
    let of_type = |kind: &str| {
        addresses
            .iter()
            .find(|a| a.type_ == kind && !a.address.is_empty())
            .map(|a| a.address.clone())
    };
    let host = of_type("InternalIP")
        .or_else(|| of_type("Hostname"))
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|a| format!("{}={}", a.type_, a.address))
                .collect();
            ApiError::internal(format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            ))
        })?;
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map(|e| e.port)
        .filter(|&port| port > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    })
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skiff_api::status::Reason;

    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": spec})).expect("a Pod")
    }

    fn node(status: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1"}, "status": status}))
            .expect("a Node")
    }

    fn message(result: Result<impl std::fmt::Debug, ApiError>) -> (Reason, String) {
        let error = result.expect_err("an error");
        (error.reason, error.message)
    }

    #[test]
    fn a_pod_without_a_node_has_no_host_assigned() {
        let unbound = pod(json!({"containers": [{"name": "a"}]}));
        assert_eq!(
            message(node_name(&unbound)),
            (
                Reason::BadRequest,
                "pod web does not have a host assigned".into()
            )
        );
        let bound = pod(json!({"nodeName": "n1", "containers": [{"name": "a"}]}));
        assert_eq!(node_name(&bound).ok(), Some("n1"));
    }

    #[test]
    fn the_only_container_is_the_default() {
        let one = pod(json!({"containers": [{"name": "a"}]}));
        assert_eq!(container_for(&one, "").ok().as_deref(), Some("a"));
    }

    #[test]
    fn several_containers_need_a_name_and_the_error_names_the_choices() {
        let two = pod(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
        assert_eq!(
            message(container_for(&two, "")),
            (
                Reason::BadRequest,
                "a container name must be specified for pod web, choose one of: [a b]".into()
            )
        );
        assert_eq!(container_for(&two, "b").ok().as_deref(), Some("b"));
        let with_init = pod(json!({"containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "setup"}]}));
        assert!(message(container_for(&with_init, ""))
            .1
            .ends_with("or one of the init containers: [setup]"));
        assert_eq!(
            container_for(&with_init, "setup").ok().as_deref(),
            Some("setup")
        );
    }

    #[test]
    fn a_container_the_pod_lacks_is_not_valid() {
        let one = pod(json!({"containers": [{"name": "a"}]}));
        assert_eq!(
            message(container_for(&one, "c")),
            (
                Reason::BadRequest,
                "container c is not valid for pod web".into()
            )
        );
    }

    #[test]
    fn the_kubelet_is_reached_at_the_internal_ip_and_its_declared_port() {
        let n = node(json!({
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.7"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}},
        }));
        assert_eq!(
            kubelet_authority(&n).ok().as_deref(),
            Some("10.0.0.7:11250")
        );
    }

    #[test]
    fn the_hostname_and_port_10250_are_the_fallbacks() {
        let n = node(json!({"addresses": [{"type": "Hostname", "address": "n1"}]}));
        assert_eq!(kubelet_authority(&n).ok().as_deref(), Some("n1:10250"));
        let v6 = node(json!({"addresses": [{"type": "InternalIP", "address": "fd00::1"}]}));
        assert_eq!(
            kubelet_authority(&v6).ok().as_deref(),
            Some("[fd00::1]:10250")
        );
    }

    #[test]
    fn a_node_without_addresses_cannot_be_reached() {
        let n = node(json!({"addresses": [{"type": "ExternalIP", "address": "1.2.3.4"}]}));
        assert_eq!(
            message(kubelet_authority(&n)),
            (
                Reason::InternalError,
                "Internal error occurred: no preferred addresses found; known addresses: [ExternalIP=1.2.3.4]".into()
            )
        );
    }
}
