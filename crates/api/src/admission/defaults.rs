//! Defaulting, as Kubernetes' `SetDefaults_*` functions, the registry
//! strategies' `PrepareForCreate` and the `DefaultTolerationSeconds` admission
//! plugin fill in an object before it is validated and stored.
//!
//! Defaults work on the JSON itself, so fields skiff does not know survive
//! untouched. A field counts as unset when it is absent, `null`, or (for text)
//! empty, as Go's zero values do.

use serde_json::{json, Map, Value};

/// How long a pod stays bound to a node that became not-ready or unreachable
/// before it is evicted, as the `DefaultTolerationSeconds` plugin sets it.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Fills in the defaults of an object of `kind`.
pub(crate) fn default(kind: &str, object: &mut Value) {
    let Value::Object(object) = object else {
        return;
    };
    match kind {
        "Pod" => default_pod(object),
        "Service" => default_service(child(object, "spec")),
        "Endpoints" => {
            for subset in items(object, "subsets") {
                for port in items(subset, "ports") {
                    set(port, "protocol", json!("TCP"));
                }
            }
        }
        "EndpointSlice" => {
            for port in items(object, "ports") {
                set(port, "protocol", json!("TCP"));
            }
        }
        "Job" => default_job(object),
        "CronJob" => {
            let spec = child(object, "spec");
            set(spec, "concurrencyPolicy", json!("Allow"));
            set(spec, "suspend", json!(false));
            set(spec, "successfulJobsHistoryLimit", json!(3));
            set(spec, "failedJobsHistoryLimit", json!(1));
            let job_spec = child(child(spec, "jobTemplate"), "spec");
            default_pod_spec(child(child(job_spec, "template"), "spec"), false);
        }
        "Deployment" => {
            let spec = child(object, "spec");
            set(spec, "replicas", json!(1));
            let strategy = child(spec, "strategy");
            set(strategy, "type", json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate")) {
                let rolling = child(strategy, "rollingUpdate");
                set(rolling, "maxUnavailable", json!("25%"));
                set(rolling, "maxSurge", json!("25%"));
            }
            set(spec, "revisionHistoryLimit", json!(10));
            set(spec, "progressDeadlineSeconds", json!(600));
            default_pod_spec(child(child(spec, "template"), "spec"), true);
        }
        "ReplicaSet" => {
            let spec = child(object, "spec");
            set(spec, "replicas", json!(1));
            default_pod_spec(child(child(spec, "template"), "spec"), true);
        }
        "Namespace" => {
            let name = at(object, &["metadata", "name"])
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if !name.is_empty() {
                // Every namespace carries its own name as a label, so selectors can pick namespaces by name.
                child(child(object, "metadata"), "labels")
                    .insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            set(child(object, "spec"), "finalizers", json!(["kubernetes"]));
            set(child(object, "status"), "phase", json!("Active"));
        }
        "Secret" => default_secret(object),
        "PriorityClass" => set(object, "preemptionPolicy", json!("PreemptLowerPriority")),
        "Node" => {
            let status = child(object, "status");
            if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
                set(status, "allocatable", capacity);
            }
        }
        _ => {}
    }
}

/// The object at `key`, made an empty object first if it is absent or not one.
fn child<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = object.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

/// The objects in the list at `key` (none when there is no list).
fn items<'a>(
    object: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    object
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// The value at a path of member names.
fn at<'a>(object: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(object.get(*first)?, |value, key| value.get(*key))
}

/// Whether `key` is unset: absent, null or the empty string.
fn unset(object: &Map<String, Value>, key: &str) -> bool {
    match object.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Sets `key` to `value` when it is unset.
fn set(object: &mut Map<String, Value>, key: &str, value: Value) {
    if unset(object, key) {
        object.insert(key.to_string(), value);
    }
}

fn default_pod(pod: &mut Map<String, Value>) {
    let spec = child(pod, "spec");
    default_pod_spec(spec, true);
    set(spec, "enableServiceLinks", json!(true));
    for list in ["initContainers", "containers"] {
        for container in items(spec, list) {
            default_requests_to_limits(container);
        }
    }
    add_default_tolerations(spec);
    // The ServiceAccount admission plugin: every pod runs as some account.
    // Old clients send the deprecated `serviceAccount`; it names the same account.
    let legacy = spec
        .get("serviceAccount")
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        .cloned();
    set(
        spec,
        "serviceAccountName",
        legacy.unwrap_or_else(|| json!("default")),
    );
    let account = spec.get("serviceAccountName").cloned().unwrap_or_default();
    set(spec, "serviceAccount", account);
    let qos_class = qos_class(spec);
    // A new pod is Pending until the kubelet reports on it (the pod registry's PrepareForCreate).
    let status = child(pod, "status");
    set(status, "phase", json!("Pending"));
    set(status, "qosClass", json!(qos_class));
}

/// The pod's quality of service class, from its containers' cpu and memory:
/// Guaranteed when every container's requests equal its limits for both,
/// BestEffort when no container asks for either, Burstable otherwise.
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec.get(*list).and_then(Value::as_array))
        .flatten()
        .collect();
    let amount = |container: &Value, kind: &str, resource: &str| {
        let text = container
            .pointer(&format!("/resources/{kind}/{resource}"))?
            .as_str()?;
        super::quantity::parse_nanos(text).filter(|n| *n != 0)
    };
    let mut any = false;
    let mut guaranteed = true;
    for container in containers {
        for resource in ["cpu", "memory"] {
            let (request, limit) = (
                amount(container, "requests", resource),
                amount(container, "limits", resource),
            );
            any |= request.is_some() || limit.is_some();
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Defaults of a pod spec, for pods and for templates in workloads. Jobs keep
/// their template's restartPolicy as given, since it must be OnFailure or Never.
fn default_pod_spec(spec: &mut Map<String, Value>, restart_policy: bool) {
    if restart_policy {
        set(spec, "restartPolicy", json!("Always"));
    }
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "schedulerName", json!("default-scheduler"));
    set(spec, "securityContext", json!({}));
    let host_network = spec.get("hostNetwork") == Some(&json!(true));
    for list in ["initContainers", "containers"] {
        for container in items(spec, list) {
            default_container(container, host_network);
        }
    }
}

fn default_container(container: &mut Map<String, Value>, host_network: bool) {
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let policy = if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    set(container, "imagePullPolicy", json!(policy));
    set(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    set(container, "terminationMessagePolicy", json!("File"));
    for port in items(container, "ports") {
        set(port, "protocol", json!("TCP"));
        // On the host's network a container port is a host port.
        if host_network && port.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
            if let Some(container_port) = port.get("containerPort").cloned() {
                port.insert("hostPort".into(), container_port);
            }
        }
    }
}

/// The tag of an image reference, `latest` when it has neither tag nor digest.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A ':' before the last '/' is a registry port, not a tag.
    let last_component = name.rsplit('/').next().unwrap_or(name);
    match last_component.split_once(':') {
        Some((_, tag)) => Some(tag.to_string()),
        None if digest.is_none() => Some("latest".to_string()),
        None => None,
    }
}

/// A container that sets a limit but no request gets the limit as its request.
fn default_requests_to_limits(container: &mut Map<String, Value>) {
    let Some(Value::Object(resources)) = container.get_mut("resources") else {
        return;
    };
    let Some(Value::Object(limits)) = resources.get("limits").cloned() else {
        return;
    };
    let requests = child(resources, "requests");
    for (name, quantity) in limits {
        requests.entry(name).or_insert(quantity);
    }
}

/// The `DefaultTolerationSeconds` admission plugin: tolerate the not-ready and
/// unreachable taints for five minutes unless the pod already tolerates them.
fn add_default_tolerations(spec: &mut Map<String, Value>) {
    let tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerates = |taint: &str| {
        tolerations.iter().any(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let mut added = Vec::new();
    for taint in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerates(taint) {
            added.push(json!({
                "key": taint,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
    if !added.is_empty() {
        let mut all = tolerations;
        all.extend(added);
        spec.insert("tolerations".into(), Value::Array(all));
    }
}

fn default_service(spec: &mut Map<String, Value>) {
    set(spec, "type", json!("ClusterIP"));
    set(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let client_ip = child(child(spec, "sessionAffinityConfig"), "clientIP");
            set(client_ip, "timeoutSeconds", json!(10800));
        }
        _ => {}
    }
    for port in items(spec, "ports") {
        set(port, "protocol", json!("TCP"));
        let target_unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset {
            if let Some(number) = port.get("port").cloned() {
                port.insert("targetPort".into(), number);
            }
        }
    }
    let service_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible = matches!(service_type.as_str(), "NodePort" | "LoadBalancer")
        || (service_type == "ClusterIP" && has_external_ips);
    if externally_accessible {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(
        service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer"
    ) {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn default_job(job: &mut Map<String, Value>) {
    let uid = at(job, &["metadata", "uid"])
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = at(job, &["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let spec = child(job, "spec");
    if unset(spec, "completions") && unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    let backoff = if unset(spec, "backoffLimitPerIndex") {
        json!(6)
    } else {
        json!(i32::MAX)
    };
    set(spec, "backoffLimit", backoff);
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let replacement = if unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set(spec, "podReplacementPolicy", json!(replacement));
    let manual = spec.get("manualSelector") == Some(&json!(true));
    let template = child(spec, "template");
    default_pod_spec(child(template, "spec"), false);
    // Unless the user manages the selector, the Job selects its pods by its own
    // uid, and labels them with its name, as the job registry does on create.
    if !manual && !uid.is_empty() {
        let labels = child(child(template, "metadata"), "labels");
        for key in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
            labels.insert(key.into(), json!(uid));
        }
        for key in ["batch.kubernetes.io/job-name", "job-name"] {
            labels.insert(key.into(), json!(name));
        }
        let selector = child(spec, "selector");
        let empty = |key: &str| match selector.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if empty("matchLabels") && empty("matchExpressions") {
            selector.insert(
                "matchLabels".into(),
                json!({"batch.kubernetes.io/controller-uid": uid}),
            );
        }
    }
    // A Job without labels takes its template's.
    let template_labels = at(job, &["spec", "template", "metadata", "labels"]).cloned();
    let has_labels = at(job, &["metadata", "labels"])
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    if let (Some(labels), false) = (template_labels, has_labels) {
        child(job, "metadata").insert("labels".into(), labels);
    }
}

fn default_secret(secret: &mut Map<String, Value>) {
    set(secret, "type", json!("Opaque"));
    // stringData is write-only: it is merged into data (base64) and not stored.
    if let Some(Value::Object(string_data)) = secret.remove("stringData") {
        let data = child(secret, "data");
        for (key, value) in string_data {
            if let Value::String(text) = value {
                data.insert(key, json!(base64_encode(text.as_bytes())));
            }
        }
    }
}

/// Standard base64 with padding, the encoding of a Secret's `data` values.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(kind: &str, mut object: Value) -> Value {
        default(kind, &mut object);
        object
    }

    #[test]
    fn pods_get_kubernetes_defaults() {
        let pod = defaulted(
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [
                {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "nginx:1.27"},
                {"name": "c", "image": "nginx:latest", "imagePullPolicy": "Never"}
            ]}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(
            spec["containers"][0]["imagePullPolicy"], "Always",
            "no tag means latest"
        );
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            spec["containers"][2]["imagePullPolicy"], "Never",
            "set values are kept"
        );
        assert_eq!(
            spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(spec["containers"][0]["terminationMessagePolicy"], "File");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert!(spec["containers"][0]["ports"][0].get("hostPort").is_none());
    }

    #[test]
    fn pods_run_as_the_default_account_and_start_pending() {
        let pod = defaulted(
            "Pod",
            json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}}),
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["serviceAccount"], "default");
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        let own = defaulted(
            "Pod",
            json!({"spec": {"serviceAccountName": "builder", "containers": []}, "status": {"phase": "Running"}}),
        );
        assert_eq!(own["spec"]["serviceAccount"], "builder");
        let legacy = defaulted(
            "Pod",
            json!({"spec": {"serviceAccount": "old", "containers": []}}),
        );
        assert_eq!(legacy["spec"]["serviceAccountName"], "old");
        assert_eq!(
            own["status"]["phase"], "Running",
            "a reported phase is kept"
        );
    }

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let class = |resources: Value| {
            let pod = defaulted(
                "Pod",
                json!({"spec": {"containers": [{"name": "a", "image": "x:1", "resources": resources}]}}),
            );
            pod["status"]["qosClass"].as_str().unwrap().to_string()
        };
        assert_eq!(class(json!({})), "BestEffort");
        assert_eq!(
            class(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            "Guaranteed",
            "requests default to limits"
        );
        assert_eq!(
            class(
                json!({"requests": {"cpu": "1000m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1024Mi"}})
            ),
            "Guaranteed"
        );
        assert_eq!(
            class(json!({"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "1Gi"}})),
            "Burstable"
        );
        assert_eq!(
            class(json!({"limits": {"cpu": "1"}})),
            "Burstable",
            "memory has no limit"
        );
    }

    #[test]
    fn image_tags_ignore_registry_ports_and_digests() {
        assert_eq!(image_tag("nginx").as_deref(), Some("latest"));
        assert_eq!(image_tag("localhost:5000/nginx").as_deref(), Some("latest"));
        assert_eq!(
            image_tag("localhost:5000/nginx:1.2").as_deref(),
            Some("1.2")
        );
        assert_eq!(image_tag("nginx@sha256:abc"), None);
        assert_eq!(
            image_tag("nginx:latest@sha256:abc").as_deref(),
            Some("latest")
        );
    }

    #[test]
    fn pods_tolerate_not_ready_and_unreachable_for_five_minutes() {
        let pod = defaulted("Pod", json!({"spec": {"containers": []}}));
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
        let own = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10});
        let pod = defaulted(
            "Pod",
            json!({"spec": {"containers": [], "tolerations": [own.clone()]}}),
        );
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["spec"]["tolerations"][0], own);
        assert_eq!(
            pod["spec"]["tolerations"][1]["key"],
            "node.kubernetes.io/not-ready"
        );
        let all = json!({"operator": "Exists"});
        let pod = defaulted(
            "Pod",
            json!({"spec": {"containers": [], "tolerations": [all.clone()]}}),
        );
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([all]),
            "an empty key and effect tolerates everything"
        );
    }

    #[test]
    fn host_network_pods_use_container_ports_as_host_ports() {
        let pod = defaulted(
            "Pod",
            json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x:1", "ports": [{"containerPort": 53}]}]}}),
        );
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["hostPort"], 53);
    }

    #[test]
    fn limits_without_requests_become_requests() {
        let pod = defaulted(
            "Pod",
            json!({"spec": {"containers": [{"name": "a", "image": "x:1",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}]}}),
        );
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
    }

    #[test]
    fn services_default_type_affinity_protocol_and_target_port() {
        let svc = defaulted(
            "Service",
            json!({"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "UDP"}]}}),
        );
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert!(
            spec.get("clusterIP").is_none(),
            "allocation is the API server's"
        );
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(
            spec["ports"][1],
            json!({"port": 443, "protocol": "UDP", "targetPort": "https"})
        );
        let svc = defaulted(
            "Service",
            json!({"spec": {"type": "NodePort", "sessionAffinity": "ClientIP"}}),
        );
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(
            svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
    }

    #[test]
    fn jobs_default_counts_and_generate_their_selector() {
        let job = defaulted(
            "Job",
            json!({"metadata": {"name": "pi", "uid": "u-1"},
            "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5"}]}}}}),
        );
        let spec = &job["spec"];
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert!(
            spec["template"]["spec"].get("restartPolicy").is_none(),
            "a Job's template keeps its restartPolicy"
        );
        assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            spec["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "pi"
        );
        assert_eq!(
            spec["template"]["metadata"]["labels"]["controller-uid"],
            "u-1"
        );
        assert_eq!(
            job["metadata"]["labels"]["job-name"], "pi",
            "a Job without labels takes its template's"
        );
        let parallel = defaulted("Job", json!({"spec": {"parallelism": 3}}));
        assert!(
            parallel["spec"].get("completions").is_none(),
            "completions stays unset when parallelism is set"
        );
        let manual = defaulted(
            "Job",
            json!({"metadata": {"uid": "u"}, "spec": {"manualSelector": true}}),
        );
        assert!(manual["spec"].get("selector").is_none());
    }

    #[test]
    fn cron_jobs_default_policy_and_history() {
        let cj = defaulted(
            "CronJob",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}}}),
        );
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        let pod_spec = &spec["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod_spec["containers"][0]["imagePullPolicy"], "Always");
        assert!(pod_spec.get("restartPolicy").is_none());
    }

    #[test]
    fn deployments_and_replica_sets() {
        let d = defaulted(
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}}),
        );
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        assert!(
            spec["template"]["spec"].get("tolerations").is_none(),
            "tolerations are added to pods, not templates"
        );
        let recreate = defaulted(
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
        let rs = defaulted("ReplicaSet", json!({"spec": {"replicas": 0}}));
        assert_eq!(rs["spec"]["replicas"], 0, "zero is a value, not unset");
        assert_eq!(defaulted("ReplicaSet", json!({}))["spec"]["replicas"], 1);
    }

    #[test]
    fn namespaces_secrets_slices_and_priority_classes() {
        let ns = defaulted("Namespace", json!({"metadata": {"name": "team-a"}}));
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        let secret = defaulted(
            "Secret",
            json!({"stringData": {"user": "admin", "pw": "hunter2!"}, "data": {"x": "eQ=="}}),
        );
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(
            secret["data"],
            json!({"x": "eQ==", "user": "YWRtaW4=", "pw": "aHVudGVyMiE="})
        );
        assert!(secret.get("stringData").is_none());
        let slice = defaulted("EndpointSlice", json!({"ports": [{"port": 80}]}));
        assert_eq!(slice["ports"][0]["protocol"], "TCP");
        let ep = defaulted("Endpoints", json!({"subsets": [{"ports": [{"port": 80}]}]}));
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        let pc = defaulted("PriorityClass", json!({"value": 10}));
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        let node = defaulted("Node", json!({"status": {"capacity": {"cpu": "4"}}}));
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));
    }

    #[test]
    fn base64_pads_like_the_standard_encoding() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
