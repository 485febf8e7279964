//! Each kind's table, checked cell by cell for representative objects.

use serde_json::{json, Value};

use super::*;

mod network;
mod pod;
mod workloads;

/// 2024-05-01T10:00:00Z, when every test object was created.
const CREATED: i64 = 1_714_557_600;

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T10:00:00Z"})
}

/// The row of `object` with only the default (priority 0) columns.
fn default_cells(kind: &str, object: &Value, now: i64) -> Vec<Value> {
    columns(kind)
        .iter()
        .zip(cells(kind, object, now))
        .filter(|(column, _)| column.priority == 0)
        .map(|(_, cell)| cell)
        .collect()
}

/// The row of `object` with the columns only `-o wide` adds.
fn wide_cells(kind: &str, object: &Value, now: i64) -> Vec<Value> {
    columns(kind)
        .iter()
        .zip(cells(kind, object, now))
        .filter(|(column, _)| column.priority == 1)
        .map(|(_, cell)| cell)
        .collect()
}

fn names(kind: &str, priority: i32) -> Vec<&'static str> {
    columns(kind)
        .iter()
        .filter(|c| c.priority == priority)
        .map(|c| c.name)
        .collect()
}

#[test]
fn every_printer_fills_one_cell_per_column() {
    let empty = json!({"metadata": meta("x")});
    for resource in crate::resources::RESOURCES {
        let kind = resource.kind;
        assert_eq!(
            cells(kind, &empty, CREATED).len(),
            columns(kind).len(),
            "{kind}"
        );
        assert!(
            printer(kind).is_some(),
            "{kind} is served but has no printer"
        );
    }
}

#[test]
fn a_table_is_a_meta_v1_table_with_its_objects_as_asked() {
    let pod = json!({"metadata": meta("web"), "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Pending"}});
    let table = table(
        "Pod",
        std::slice::from_ref(&pod),
        IncludeObject::Metadata,
        CREATED + 5,
    );
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        table["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name",
               "description": NAME.description, "priority": 0})
    );
    assert_eq!(table["columnDefinitions"][5]["name"], "IP");
    assert_eq!(table["columnDefinitions"][5]["priority"], 1);
    let row = &table["rows"][0];
    assert_eq!(
        row["cells"],
        json!(["web", "0/1", "Pending", "0", "5s", "<none>", "<none>", "<none>", "<none>"])
    );
    assert_eq!(
        row["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
               "metadata": meta("web")})
    );
    let whole = table_of(&pod, IncludeObject::Object);
    assert_eq!(whole["rows"][0]["object"], pod);
    let none = table_of(&pod, IncludeObject::None);
    assert_eq!(none["rows"][0]["object"], Value::Null);
}

fn table_of(object: &Value, include: IncludeObject) -> Value {
    table("Pod", std::slice::from_ref(object), include, CREATED)
}

#[test]
fn kinds_without_a_printer_get_name_and_created_at() {
    let widget = json!({"metadata": meta("w")});
    let table = table("Widget", &[widget], IncludeObject::None, CREATED);
    let columns: Vec<&Value> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(columns, ["Name", "Created At"]);
    assert_eq!(table["columnDefinitions"][1]["type"], "date");
    assert_eq!(
        table["rows"][0]["cells"],
        json!(["w", "2024-05-01T10:00:00Z"])
    );
}

#[test]
fn include_object_parses_kubernetes_values() {
    assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse("Object"), Some(IncludeObject::Object));
    assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
    assert_eq!(IncludeObject::parse("object"), None);
}

#[test]
fn nodes_show_readiness_roles_and_version_and_wide_shows_addresses() {
    let mut metadata = meta("n1");
    metadata["labels"] = json!({"node-role.kubernetes.io/control-plane": "",
                                "kubernetes.io/role": "worker"});
    let node = json!({"metadata": metadata, "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.7"},
                                 {"type": "Hostname", "address": "n1"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12",
                                "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0"}}});
    assert_eq!(
        names("Node", 0),
        ["Name", "Status", "Roles", "Age", "Version"]
    );
    assert_eq!(
        default_cells("Node", &node, CREATED + 2 * 86_400 + 4 * 3600),
        json!([
            "n1",
            "Ready,SchedulingDisabled",
            "control-plane,worker",
            "2d4h",
            "v1.33.0"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(
        Value::from(wide_cells("Node", &node, CREATED)),
        json!([
            "10.0.0.7",
            "<none>",
            "Debian GNU/Linux 12",
            "6.1.0",
            "containerd://1.7.0"
        ])
    );
    let lost = json!({"metadata": meta("n2"),
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(
        cells("Node", &lost, CREATED)[1..3],
        [json!("NotReady"), json!("<none>")]
    );
    assert_eq!(cells("Node", &lost, CREATED)[7], "<unknown>");
    let new = json!({"metadata": meta("n3")});
    assert_eq!(cells("Node", &new, CREATED)[1], "Unknown");
}

#[test]
fn config_objects_count_their_data() {
    let cm = json!({"metadata": meta("cfg"), "data": {"a": "1"}, "binaryData": {"b": "Ag=="}});
    assert_eq!(
        Value::from(cells("ConfigMap", &cm, CREATED)),
        json!(["cfg", 2, "0s"])
    );
    let secret = json!({"metadata": meta("s"), "type": "Opaque", "data": {"k": "dg=="}});
    assert_eq!(
        Value::from(cells("Secret", &secret, CREATED)),
        json!(["s", "Opaque", 1, "0s"])
    );
    let sa = json!({"metadata": meta("default")});
    assert_eq!(
        Value::from(cells("ServiceAccount", &sa, CREATED + 90)),
        json!(["default", 0, "90s"])
    );
    let ns = json!({"metadata": meta("prod"), "status": {"phase": "Terminating"}});
    assert_eq!(
        Value::from(cells("Namespace", &ns, CREATED)),
        json!(["prod", "Terminating", "0s"])
    );
    let lease =
        json!({"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "node-1_ab"}});
    assert_eq!(
        Value::from(cells("Lease", &lease, CREATED)),
        json!(["kube-scheduler", "node-1_ab", "0s"])
    );
    let pc = json!({"metadata": meta("high"), "value": 1000, "globalDefault": true,
                    "preemptionPolicy": "Never"});
    assert_eq!(
        Value::from(cells("PriorityClass", &pc, CREATED)),
        json!(["high", 1000, true, "0s", "Never"])
    );
}

#[test]
fn events_name_their_object_and_source_and_count_their_series() {
    let event = json!({"metadata": meta("web.1"), "type": "Normal", "reason": "Scheduled",
        "message": "Successfully assigned default/web to node-1\n",
        "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": "2024-05-01T10:00:20Z",
        "count": 3, "source": {"component": "default-scheduler"},
        "reportingInstance": "node-1",
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"}});
    assert_eq!(
        names("Event", 0),
        ["Last Seen", "Type", "Reason", "Object", "Message"]
    );
    assert_eq!(
        Value::from(cells("Event", &event, CREATED + 30)),
        json!([
            "10s",
            "Normal",
            "Scheduled",
            "pod/web",
            "spec.containers{c}",
            "default-scheduler, node-1",
            "Successfully assigned default/web to node-1",
            "30s",
            3,
            "web.1"
        ])
    );
    let series = json!({"metadata": meta("n.1"), "eventTime": "2024-05-01T10:00:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2024-05-01T10:00:25.000000Z"},
        "reportingComponent": "kubelet", "involvedObject": {"kind": "Node"}});
    let row = cells("Event", &series, CREATED + 30);
    assert_eq!(row[0], "5s");
    assert_eq!(row[3], "node");
    assert_eq!(row[5], "kubelet");
    assert_eq!(row[7..9], [json!("30s"), json!(7)]);
}
