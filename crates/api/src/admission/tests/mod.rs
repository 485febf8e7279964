//! Defaulting followed by validation, kind by kind, as the API server runs them:
//! pods here, the other kinds in the files beside this one.

mod cluster;
mod network;
mod workloads;

use serde_json::{json, Value};

use super::{default, validate, validate_status_update, FieldError, FieldErrorKind};

/// Defaults `object` as `kind`, then validates it (against `old` when given).
pub(super) fn check(kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
    let mut object = object.clone();
    default(kind, &mut object);
    let old = old.map(|o| {
        let mut o = o.clone();
        default(kind, &mut o);
        o
    });
    validate(kind, &object, old.as_ref())
        .iter()
        .map(FieldError::to_string)
        .collect()
}

pub(super) fn errors(kind: &str, object: &Value) -> Vec<String> {
    check(kind, object, None)
}

/// `object` with the value at a JSON pointer replaced (`null` removes it).
pub(super) fn with(object: &Value, pointer: &str, value: Value) -> Value {
    let mut object = object.clone();
    let (parent, last) = pointer.rsplit_once('/').expect("a pointer");
    let parent = object
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in the object"));
    match parent {
        Value::Object(map) if value.is_null() => {
            map.remove(last);
        }
        Value::Object(map) => {
            map.insert(last.to_string(), value);
        }
        Value::Array(items) => items[last.parse::<usize>().unwrap()] = value,
        other => panic!("cannot set {last} in {other}"),
    }
    object
}

pub(super) fn assert_valid(kind: &str, object: &Value) {
    let errs = errors(kind, object);
    assert!(errs.is_empty(), "{kind} should be valid, got {errs:#?}");
}

pub(super) fn assert_error(kind: &str, object: &Value, expected: &str) {
    let errs = errors(kind, object);
    assert!(
        errs.iter().any(|e| e == expected),
        "expected {expected:?} among {errs:#?}"
    );
}

pub(super) fn assert_error_starting(kind: &str, object: &Value, prefix: &str) {
    let errs = errors(kind, object);
    assert!(
        errs.iter().any(|e| e.starts_with(prefix)),
        "expected one starting {prefix:?} among {errs:#?}"
    );
}

pub(super) fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80, "name": "http"}]}]}})
}

#[test]
fn field_errors_print_as_kubernetes_prints_them() {
    let e = FieldError::invalid(
        "spec.replicas",
        &json!(-1),
        "must be greater than or equal to 0",
    );
    assert_eq!(
        e.to_string(),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let e = FieldError::not_supported(
        "spec.restartPolicy",
        &json!("Sometimes"),
        &["Always", "OnFailure", "Never"],
    );
    assert_eq!(e.to_string(), "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"");
    assert_eq!(
        FieldError::required("spec.containers", "").to_string(),
        "spec.containers: Required value"
    );
    assert_eq!(
        FieldError::duplicate("x", &json!("a")).to_string(),
        "x: Duplicate value: \"a\""
    );
    assert_eq!(
        FieldError::not_found("x", &json!("a")).kind.cause_reason(),
        "FieldValueNotFound"
    );
    assert_eq!(FieldErrorKind::Forbidden.as_str(), "Forbidden");
}

#[test]
fn undecodable_objects_are_reported_before_any_rule() {
    let bad = with(&pod(), "/spec/containers", json!("nginx"));
    let errs = validate("Pod", &bad, None);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .to_string()
            .starts_with("Invalid value: the Pod could not be decoded: invalid type"),
        "{}",
        errs[0]
    );
}

#[test]
fn pod_valid_and_name_rules() {
    assert_valid("Pod", &pod());
    assert_error(
        "Pod",
        &with(&pod(), "/metadata/name", json!("Web")),
        r#"metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
    );
    assert_error(
        "Pod",
        &with(&pod(), "/metadata/namespace", Value::Null),
        "metadata.namespace: Required value",
    );
}

#[test]
fn pod_containers_are_required_named_unique_and_have_images() {
    assert_error(
        "Pod",
        &with(&pod(), "/spec/containers", json!([])),
        "spec.containers: Required value",
    );
    assert_error(
        "Pod",
        &with(&pod(), "/spec/containers/0/image", Value::Null),
        "spec.containers[0].image: Required value",
    );
    assert_error("Pod", &with(&pod(), "/spec/containers/0/image", json!(" nginx")), "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace");
    assert_error(
        "Pod",
        &with(&pod(), "/spec/containers/0/name", Value::Null),
        "spec.containers[0].name: Required value",
    );
    assert_error_starting(
        "Pod",
        &with(&pod(), "/spec/containers/0/name", json!("App")),
        "spec.containers[0].name: Invalid value: \"App\": a lowercase RFC 1123 label",
    );
    let mut two = pod();
    two["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "app", "image": "busybox"}));
    assert_error(
        "Pod",
        &two,
        "spec.containers[1].name: Duplicate value: \"app\"",
    );
    let mut init = pod();
    init["spec"]["initContainers"] = json!([{"name": "app", "image": "busybox"}]);
    assert_error(
        "Pod",
        &init,
        "spec.containers[0].name: Duplicate value: \"app\"",
    );
}

#[test]
fn pod_ports_protocols_and_policies() {
    assert_error("Pod", &with(&pod(), "/spec/containers/0/ports/0/containerPort", json!(70000)), "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive");
    assert_error(
        "Pod",
        &with(&pod(), "/spec/containers/0/ports/0/containerPort", json!(0)),
        "spec.containers[0].ports[0].containerPort: Required value",
    );
    assert_error("Pod", &with(&pod(), "/spec/containers/0/ports/0/hostPort", json!(-1)), "spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive");
    assert_error("Pod", &with(&pod(), "/spec/containers/0/ports/0/protocol", json!("HTTP")), "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
    assert_error("Pod", &with(&pod(), "/spec/containers/0/ports/0/name", json!("8080")), "spec.containers[0].ports[0].name: Invalid value: \"8080\": must contain at least one letter (a-z)");
    assert_error("Pod", &with(&pod(), "/spec/restartPolicy", json!("Sometimes")), "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"");
    assert_error("Pod", &with(&pod(), "/spec/dnsPolicy", json!("Google")), "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"");
    assert_error("Pod", &with(&pod(), "/spec/containers/0/imagePullPolicy", json!("Sometimes")), "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"");
    assert_error(
        "Pod",
        &with(&pod(), "/spec/activeDeadlineSeconds", json!(0)),
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
    );
    assert_error_starting(
        "Pod",
        &with(&pod(), "/spec/nodeSelector", json!({"disk": "fast ssd"})),
        "spec.nodeSelector: Invalid value: \"fast ssd\"",
    );
}

#[test]
fn pod_requests_may_not_exceed_limits() {
    let ok = with(
        &pod(),
        "/spec/containers/0/resources",
        json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1024Mi"}}),
    );
    assert_valid("Pod", &ok);
    let over = with(
        &pod(),
        "/spec/containers/0/resources",
        json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}),
    );
    assert_error("Pod", &over, "spec.containers[0].resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 1500m");
    let bad = with(
        &pod(),
        "/spec/containers/0/resources",
        json!({"requests": {"memory": "lots"}}),
    );
    assert_error_starting("Pod", &bad, "spec.containers[0].resources.requests[memory]: Invalid value: \"lots\": quantities must match the regular expression");
    let negative = with(
        &pod(),
        "/spec/containers/0/resources",
        json!({"limits": {"cpu": "-1"}}),
    );
    assert_error("Pod", &negative, "spec.containers[0].resources.limits[cpu]: Invalid value: \"-1\": must be greater than or equal to 0");
}

#[test]
fn pod_volume_mounts_name_a_volume() {
    let mut p = with(
        &pod(),
        "/spec/containers/0/volumeMounts",
        json!([{"name": "data", "mountPath": "/data"}]),
    );
    assert_error(
        "Pod",
        &p,
        "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
    );
    p["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    assert_valid("Pod", &p);
    p["spec"]["volumes"] =
        json!([{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]);
    assert_error("Pod", &p, "spec.volumes[1].name: Duplicate value: \"data\"");
}

#[test]
fn pod_tolerations() {
    let t = |toleration: Value| with(&pod(), "/spec/tolerations", json!([toleration]));
    assert_valid(
        "Pod",
        &t(
            json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
        ),
    );
    assert_error("Pod", &t(json!({"operator": "Equal", "value": "x"})), "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"");
    assert_error("Pod", &t(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5})), "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set");
    assert_error("Pod", &t(json!({"key": "k", "operator": "Like"})), "spec.tolerations[0].operator: Unsupported value: \"Like\": supported values: \"Equal\", \"Exists\"");
    assert_error("Pod", &t(json!({"key": "k", "effect": "Evict"})), "spec.tolerations[0].effect: Unsupported value: \"Evict\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
    assert_error_starting(
        "Pod",
        &t(json!({"key": "k", "operator": "Exists", "value": "v"})),
        "spec.tolerations[0].operator: Invalid value: {",
    );
}

#[test]
fn pod_updates_may_change_only_images_deadlines_and_add_tolerations() {
    let old = pod();
    assert!(check(
        "Pod",
        &with(&old, "/spec/containers/0/image", json!("nginx:1.28")),
        Some(&old)
    )
    .is_empty());
    let labels = with(&old, "/metadata/labels", json!({"tier": "fe"}));
    assert!(
        check("Pod", &labels, Some(&old)).is_empty(),
        "metadata may change"
    );
    let port = with(
        &old,
        "/spec/containers/0/ports/0/containerPort",
        json!(8080),
    );
    let errs = check("Pod", &port, Some(&old));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"), "{}", errs[0]);
    assert!(errs[0].ends_with("changed: spec.containers"), "{}", errs[0]);
    let node = with(&old, "/spec/nodeName", json!("node-a"));
    assert!(check("Pod", &node, Some(&old))[0].contains("changed: spec.nodeName"));

    let gpu = json!({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"});
    let tolerant = with(&old, "/spec/tolerations", json!([gpu]));
    assert!(
        check("Pod", &tolerant, Some(&old)).is_empty(),
        "adding a toleration is allowed"
    );
    let errs = check("Pod", &old, Some(&tolerant));
    assert!(
        errs[0].starts_with("spec: Forbidden") && errs[0].ends_with("changed: spec.tolerations"),
        "removing one is not: {errs:?}"
    );

    let deadline = with(&old, "/spec/activeDeadlineSeconds", json!(100));
    assert!(
        check("Pod", &deadline, Some(&old)).is_empty(),
        "a deadline may be set"
    );
    let later = with(&old, "/spec/activeDeadlineSeconds", json!(200));
    assert_eq!(check("Pod", &later, Some(&deadline)), vec!["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"]);
    assert_eq!(check("Pod", &old, Some(&deadline)), vec!["spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"]);

    let renamed = with(&old, "/metadata/name", json!("web2"));
    assert_eq!(
        check("Pod", &renamed, Some(&old)),
        vec!["metadata.name: Invalid value: \"web2\": field is immutable"]
    );
}

#[test]
fn status_updates_check_only_metadata() {
    let mut old = pod();
    default("Pod", &mut old);
    let mut new = with(&old, "/spec/nodeName", json!("node-a"));
    new["status"] = json!({"phase": "Running"});
    assert!(validate_status_update("Pod", &new, &old).is_empty());
    let renamed = with(&new, "/metadata/namespace", json!("other"));
    assert_eq!(
        validate_status_update("Pod", &renamed, &old)[0].to_string(),
        "metadata.namespace: Invalid value: \"other\": field is immutable"
    );
}
