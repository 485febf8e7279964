//! Defaulting followed by validation, kind by kind, as the API server runs them.

use serde_json::{json, Value};

use super::{default, validate, validate_status_update, FieldError, FieldErrorKind};

/// Defaults `object` as `kind`, then validates it (against `old` when given).
fn check(kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
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

fn errors(kind: &str, object: &Value) -> Vec<String> {
    check(kind, object, None)
}

/// `object` with the value at a JSON pointer replaced (`null` removes it).
fn with(object: &Value, pointer: &str, value: Value) -> Value {
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

fn assert_valid(kind: &str, object: &Value) {
    let errs = errors(kind, object);
    assert!(errs.is_empty(), "{kind} should be valid, got {errs:#?}");
}

fn assert_error(kind: &str, object: &Value, expected: &str) {
    let errs = errors(kind, object);
    assert!(
        errs.iter().any(|e| e == expected),
        "expected {expected:?} among {errs:#?}"
    );
}

fn assert_error_starting(kind: &str, object: &Value, prefix: &str) {
    let errs = errors(kind, object);
    assert!(
        errs.iter().any(|e| e.starts_with(prefix)),
        "expected one starting {prefix:?} among {errs:#?}"
    );
}

fn pod() -> Value {
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

fn service() -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
}

#[test]
fn services() {
    assert_valid("Service", &service());
    assert_error_starting("Service", &with(&service(), "/metadata/name", json!("1web")), "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character");
    assert_error(
        "Service",
        &with(&service(), "/spec/ports", json!([])),
        "spec.ports: Required value",
    );
    let headless = with(
        &with(&service(), "/spec/ports", json!([])),
        "/spec/clusterIP",
        json!("None"),
    );
    assert_valid("Service", &headless);
    assert_error(
        "Service",
        &with(&service(), "/spec/ports/0/port", json!(0)),
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    assert_error("Service", &with(&service(), "/spec/ports/0/protocol", json!("ICMP")), "spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
    assert_error(
        "Service",
        &with(&service(), "/spec/ports/0/targetPort", json!(70000)),
        "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_error(
        "Service",
        &with(&service(), "/spec/ports/0/nodePort", json!(30080)),
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    );
    let two = with(
        &service(),
        "/spec/ports",
        json!([{"port": 80}, {"port": 443, "name": "https"}]),
    );
    assert_error("Service", &two, "spec.ports[0].name: Required value");
    assert_error_starting(
        "Service",
        &with(&service(), "/spec/selector", json!({"app": "a b"})),
        "spec.selector: Invalid value: \"a b\"",
    );
    assert_error("Service", &with(&service(), "/spec/type", json!("Magic")), "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
    assert_error("Service", &with(&service(), "/spec/clusterIP", json!("10.0.0.300")), "spec.clusterIP: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    assert_error("Service", &with(&service(), "/spec/sessionAffinity", json!("Sticky")), "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"");
    assert_error("Service", &with(&service(), "/spec/externalTrafficPolicy", json!("Local")), "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services");
    let external = json!({"metadata": {"name": "db", "namespace": "default"}, "spec": {"type": "ExternalName"}});
    assert_error("Service", &external, "spec.externalName: Required value");
    assert_valid(
        "Service",
        &with(&external, "/spec/externalName", json!("db.example.com.")),
    );
}

#[test]
fn service_cluster_ip_is_immutable_once_set() {
    let old = with(&service(), "/spec/clusterIP", json!("10.96.0.10"));
    assert!(check(
        "Service",
        &with(&old, "/spec/ports/0/port", json!(81)),
        Some(&old)
    )
    .is_empty());
    assert_eq!(
        check(
            "Service",
            &with(&old, "/spec/clusterIP", json!("10.96.0.11")),
            Some(&old)
        ),
        vec!["spec.clusterIP: Invalid value: \"10.96.0.11\": field is immutable"]
    );
    assert!(
        check("Service", &old, Some(&service())).is_empty(),
        "an unset cluster IP may be filled in"
    );
}

fn endpoints() -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.1.0.5", "nodeName": "node-a"}], "ports": [{"port": 8080}]}]})
}

#[test]
fn endpoints_and_slices() {
    assert_valid("Endpoints", &endpoints());
    assert_error("Endpoints", &with(&endpoints(), "/subsets/0/addresses/0/ip", json!("x")), "subsets[0].addresses[0].ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    assert_error("Endpoints", &with(&endpoints(), "/subsets/0/addresses/0/ip", json!("127.0.0.1")), "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)");
    assert_error(
        "Endpoints",
        &with(&endpoints(), "/subsets/0/addresses", json!([])),
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
    );
    let slice = json!({"metadata": {"name": "web-abc", "namespace": "default"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": true}}], "ports": [{"name": "http", "port": 8080}]});
    assert_valid("EndpointSlice", &slice);
    assert_error(
        "EndpointSlice",
        &with(&slice, "/addressType", json!("IPv5")),
        "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
    );
    assert_error(
        "EndpointSlice",
        &with(&slice, "/endpoints/0/addresses/0", json!("fe80::1")),
        "endpoints[0].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
    );
    assert_error(
        "EndpointSlice",
        &with(&slice, "/endpoints/0/addresses", json!([])),
        "endpoints[0].addresses: Required value: must contain at least 1 address",
    );
    assert_error(
        "EndpointSlice",
        &with(&slice, "/ports/0/port", json!(0)),
        "ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    let v6 = with(
        &with(&slice, "/addressType", json!("IPv6")),
        "/endpoints/0/addresses/0",
        json!("fd00::5"),
    );
    assert_eq!(
        check("EndpointSlice", &v6, Some(&slice)),
        vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
    );
}

fn job() -> Value {
    json!({"metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5"}]}}}})
}

#[test]
fn jobs() {
    assert_valid("Job", &job());
    assert_error(
        "Job",
        &with(&job(), "/spec/template/spec/restartPolicy", Value::Null),
        "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
    );
    assert_error(
        "Job",
        &with(&job(), "/spec/template/spec/restartPolicy", json!("Always")),
        "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
    );
    assert_error(
        "Job",
        &with(&job(), "/spec/backoffLimit", json!(-1)),
        "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_error(
        "Job",
        &with(&job(), "/spec/parallelism", json!(-2)),
        "spec.parallelism: Invalid value: -2: must be greater than or equal to 0",
    );
    assert_error(
        "Job",
        &with(&job(), "/metadata/uid", Value::Null),
        "metadata.uid: Required value",
    );
    assert_error("Job", &with(&job(), "/spec/completionMode", json!("Sometimes")), "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"");
    let stolen = with(
        &job(),
        "/spec/selector",
        json!({"matchLabels": {"app": "other"}}),
    );
    assert_error_starting("Job", &stolen, "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"other\"}}: `selector` not auto-generated");
    let manual = json!({"metadata": {"name": "m", "namespace": "default"}, "spec": {"manualSelector": true,
        "selector": {"matchLabels": {"app": "m"}},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}});
    assert_error("Job", &manual, "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`");
    assert_valid(
        "Job",
        &with(&manual, "/spec/template/metadata/labels/app", json!("m")),
    );
}

#[test]
fn job_selector_and_template_are_immutable() {
    let old = job();
    assert!(check(
        "Job",
        &with(&old, "/metadata/labels", json!({"a": "b"})),
        Some(&old)
    )
    .is_empty());
    let errs = check(
        "Job",
        &with(
            &old,
            "/spec/template/spec/containers/0/image",
            json!("perl:6"),
        ),
        Some(&old),
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("spec.template: Invalid value: {")
            && errs[0].ends_with(": field is immutable"),
        "{}",
        errs[0]
    );
}

fn cron_job() -> Value {
    json!({"metadata": {"name": "backup", "namespace": "default"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "b", "image": "busybox"}]}}}}}})
}

#[test]
fn cron_jobs() {
    assert_valid("CronJob", &cron_job());
    assert_valid(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("@daily")),
    );
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("")),
        "spec.schedule: Required value",
    );
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("* * *")),
        "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
    );
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/schedule", json!("61 * * * *")),
        "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
    );
    assert_error("CronJob", &with(&cron_job(), "/spec/schedule", json!("TZ=UTC * * * * *")), "spec.schedule: Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    assert_error("CronJob", &with(&cron_job(), "/spec/concurrencyPolicy", json!("Sometimes")), "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"");
    assert_error(
        "CronJob",
        &with(&cron_job(), "/spec/failedJobsHistoryLimit", json!(-1)),
        "spec.failedJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
    );
    assert_error("CronJob", &with(&cron_job(), "/spec/jobTemplate/spec/template/spec/restartPolicy", Value::Null), "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"");
    let long = "a".repeat(53);
    assert_error(
        "CronJob",
        &with(&cron_job(), "/metadata/name", json!(long)),
        &format!("metadata.name: Invalid value: \"{long}\": must be no more than 52 characters"),
    );
}

fn deployment() -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
}

#[test]
fn deployments_and_replica_sets() {
    for kind in ["Deployment", "ReplicaSet"] {
        assert_valid(kind, &deployment());
        assert_error(kind, &with(&deployment(), "/spec/template/metadata/labels/app", json!("db")), "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"db\"}: `selector` does not match template `labels`");
        assert_error(
            kind,
            &with(&deployment(), "/spec/selector", Value::Null),
            "spec.selector: Required value",
        );
        assert_error(
            kind,
            &with(&deployment(), "/spec/selector", json!({})),
            "spec.selector: Invalid value: {}: empty selector is invalid for deployment",
        );
        assert_error(
            kind,
            &with(&deployment(), "/spec/replicas", json!(-1)),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        );
        assert_error(kind, &with(&deployment(), "/spec/template/spec/restartPolicy", json!("Never")), "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"");
        assert_error(kind, &with(&deployment(), "/spec/template/spec/activeDeadlineSeconds", json!(10)), "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported");
        let bad_op = with(
            &deployment(),
            "/spec/selector",
            json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
        );
        assert_error(kind, &bad_op, "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'");
        let old = deployment();
        let moved = with(&old, "/spec/selector/matchLabels/app", json!("web2"));
        let moved = with(&moved, "/spec/template/metadata/labels/app", json!("web2"));
        assert_eq!(check(kind, &moved, Some(&old)), vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web2\"}}: field is immutable"]);
        assert!(check(kind, &with(&old, "/spec/replicas", json!(5)), Some(&old)).is_empty());
    }
}

#[test]
fn deployment_strategy_and_deadlines() {
    let d = deployment();
    let zero = with(
        &d,
        "/spec/strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}),
    );
    assert_error("Deployment", &zero, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0");
    let over = with(
        &d,
        "/spec/strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}}),
    );
    assert_error("Deployment", &over, "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%");
    let recreate = with(
        &d,
        "/spec/strategy",
        json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
    );
    assert_error("Deployment", &recreate, "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'");
    let odd = with(&d, "/spec/strategy", json!({"type": "BlueGreen"}));
    assert_error("Deployment", &odd, "spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\"");
    let slow = with(
        &with(&d, "/spec/minReadySeconds", json!(30)),
        "/spec/progressDeadlineSeconds",
        json!(10),
    );
    assert_error(
        "Deployment",
        &slow,
        "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds",
    );
}

#[test]
fn namespaces_and_nodes() {
    let ns = json!({"metadata": {"name": "team-a"}});
    assert_valid("Namespace", &ns);
    assert_error(
        "Namespace",
        &with(&ns, "/metadata/name", json!("team.a")),
        "metadata.name: Invalid value: \"team.a\": must not contain dots",
    );
    assert_error(
        "Namespace",
        &with(&ns, "/metadata/namespace", json!("x")),
        "metadata.namespace: Forbidden: not allowed on this type",
    );
    let node = json!({"metadata": {"name": "node-a"}, "spec": {"podCIDRs": ["10.244.1.0/24"],
        "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}});
    assert_valid("Node", &node);
    assert_error("Node", &with(&node, "/spec/taints/0/effect", json!("Evict")), "spec.taints[0].effect: Unsupported value: \"Evict\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
    assert_error(
        "Node",
        &with(&node, "/spec/taints/0/effect", Value::Null),
        "spec.taints[0].effect: Required value",
    );
    let mut twice = node.clone();
    twice["spec"]["taints"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "value": "x"}));
    assert_error_starting("Node", &twice, "spec.taints[1]: Duplicate value: {");
    assert_error("Node", &with(&node, "/spec/podCIDRs/0", json!("10.244.1.0")), "spec.podCIDRs[0]: Invalid value: \"10.244.1.0\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
    assert_eq!(
        check("Node", &with(&node, "/spec/podCIDRs/0", json!("10.244.2.0/24")), Some(&node)),
        vec!["spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"]
    );
    assert!(check(
        "Node",
        &with(&node, "/spec/unschedulable", json!(true)),
        Some(&node)
    )
    .is_empty());
}

#[test]
fn config_maps_and_secrets() {
    let cm = json!({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"app.properties": "a=b"}});
    assert_valid("ConfigMap", &cm);
    assert_error_starting("ConfigMap", &with(&cm, "/data/bad key", json!("x")), "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'");
    let both = with(&cm, "/binaryData", json!({"app.properties": "eA=="}));
    assert_error("ConfigMap", &both, "data[app.properties]: Invalid value: \"app.properties\": duplicate of key present in binaryData");
    let frozen = with(&cm, "/immutable", json!(true));
    assert_eq!(
        check(
            "ConfigMap",
            &with(&frozen, "/data/app.properties", json!("a=c")),
            Some(&frozen)
        ),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
    assert_eq!(
        check("ConfigMap", &cm, Some(&frozen)),
        vec!["immutable: Forbidden: field is immutable when `immutable` is set"]
    );
    assert!(check(
        "ConfigMap",
        &with(&cm, "/data/app.properties", json!("a=c")),
        Some(&cm)
    )
    .is_empty());

    let secret = json!({"metadata": {"name": "creds", "namespace": "default"}, "stringData": {"password": "hunter2"}});
    assert_valid("Secret", &secret);
    let tls = with(&secret, "/type", json!("kubernetes.io/tls"));
    assert_error("Secret", &tls, "data[tls.crt]: Required value");
    let token = with(
        &secret,
        "/type",
        json!("kubernetes.io/service-account-token"),
    );
    assert_error(
        "Secret",
        &token,
        "metadata.annotations[kubernetes.io/service-account.name]: Required value",
    );
    let docker = with(
        &with(&secret, "/type", json!("kubernetes.io/dockerconfigjson")),
        "/stringData",
        json!({".dockerconfigjson": "{not json"}),
    );
    assert_error("Secret", &docker, "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": must be valid JSON");
    assert_eq!(
        check(
            "Secret",
            &with(&tls, "/stringData", json!({"tls.crt": "c", "tls.key": "k"})),
            Some(&secret)
        ),
        vec!["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
    );
    let bad_base64 =
        json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"k": "%%%"}});
    assert!(validate("Secret", &bad_base64, None)[0]
        .to_string()
        .contains("could not be decoded"));
}

#[test]
fn service_accounts_events_and_leases() {
    assert_valid(
        "ServiceAccount",
        &json!({"metadata": {"name": "default", "namespace": "default"}}),
    );
    assert_error_starting(
        "ServiceAccount",
        &json!({"metadata": {"name": "Default", "namespace": "default"}}),
        "metadata.name: Invalid value: \"Default\"",
    );
    let event = json!({"metadata": {"name": "web.17a", "namespace": "prod"}, "involvedObject": {"kind": "Pod", "name": "web", "namespace": "prod"}, "reason": "Scheduled"});
    assert_valid("Event", &event);
    assert_error(
        "Event",
        &with(&event, "/involvedObject/namespace", json!("dev")),
        "involvedObject.namespace: Invalid value: \"dev\": does not match event.namespace",
    );
    let node_event = json!({"metadata": {"name": "n.1", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "node-a"}});
    assert_valid("Event", &node_event);
    let lease = json!({"metadata": {"name": "node-a", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40}});
    assert_valid("Lease", &lease);
    assert_error(
        "Lease",
        &with(&lease, "/spec/leaseDurationSeconds", json!(0)),
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
    );
    assert_error(
        "Lease",
        &with(&lease, "/spec/leaseTransitions", json!(-1)),
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    );
}

#[test]
fn priority_classes() {
    let pc = json!({"metadata": {"name": "high"}, "value": 1000});
    assert_valid("PriorityClass", &pc);
    assert_error(
        "PriorityClass",
        &with(&pc, "/value", json!(1_000_000_001)),
        "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
    );
    assert_valid(
        "PriorityClass",
        &json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000}),
    );
    assert_error("PriorityClass", &json!({"metadata": {"name": "system-mine"}, "value": 5}), "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class");
    assert_error("PriorityClass", &with(&pc, "/preemptionPolicy", json!("Sometimes")), "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"Never\", \"PreemptLowerPriority\"");
    assert_eq!(
        check(
            "PriorityClass",
            &with(&pc, "/value", json!(2000)),
            Some(&pc)
        ),
        vec!["value: Forbidden: may not be changed in an update."]
    );
}

#[test]
fn unknown_kinds_get_the_metadata_rules() {
    assert!(validate(
        "Widget",
        &json!({"metadata": {"name": "w", "namespace": "default"}}),
        None
    )
    .is_empty());
    assert_eq!(
        validate(
            "Widget",
            &json!({"metadata": {"namespace": "default"}}),
            None
        )[0]
        .to_string(),
        "metadata.name: Required value: name or generateName is required"
    );
}
