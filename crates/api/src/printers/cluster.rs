//! The cluster's other kinds: Namespaces, ConfigMaps, Secrets,
//! ServiceAccounts, Events, Leases and PriorityClasses, as Kubernetes'
//! printers for them.
//!
//! An Event's LAST SEEN is its series' last observation, else its
//! lastTimestamp, else when it was first seen; OBJECT is `kind/name` of
//! the object it is about.

use serde_json::Value;

use super::age::age;
use super::object::{at, int, len, or_none, text};
use super::{created, name, Column, Printer, AGE, NAME};

const NAMESPACE: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the namespace"),
    AGE,
];

const CONFIG_MAP: &[Column] = &[
    NAME,
    Column::new("Data", "string", "Data contains the configuration data."),
    AGE,
];

const SECRET: &[Column] = &[
    NAME,
    Column::new(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    Column::new("Data", "string", "Data contains the secret data."),
    AGE,
];

const SERVICE_ACCOUNT: &[Column] = &[
    NAME,
    Column::new("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
    AGE,
];

const EVENT: &[Column] = &[
    Column::new("Last Seen", "string", "The last time the event was observed."),
    Column::new("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    Column::new("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    Column::new("Object", "string", "The object that this event is about."),
    Column::new("Subobject", "string", "The field of the object that this event is about.").wide(),
    Column::new("Source", "string", "The component reporting this event.").wide(),
    Column::new("Message", "string", "A human-readable description of the status of this operation."),
    Column::new("First Seen", "string", "The time at which the event was first recorded.").wide(),
    Column::new("Count", "string", "The number of times this event has occurred.").wide(),
    Column { priority: 1, ..NAME },
];

const LEASE: &[Column] = &[
    NAME,
    Column::new(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE,
];

const PRIORITY_CLASS: &[Column] = &[
    NAME,
    Column::new("Value", "integer", "value represents the integer value of this priority class."),
    Column::new("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class."),
    AGE,
    Column::new("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority."),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (_, fn(&Value, i64) -> Vec<Value>) = match kind {
        "Namespace" => (NAMESPACE, |o, now| {
            vec![
                name(o),
                text(o, &["status", "phase"]).into(),
                created(o, now),
            ]
        }),
        "ConfigMap" => (CONFIG_MAP, |o, now| {
            let data = len(o, &["data"]) + len(o, &["binaryData"]);
            vec![name(o), (data as i64).into(), created(o, now)]
        }),
        "Secret" => (SECRET, |o, now| {
            let data = len(o, &["data"]) as i64;
            vec![
                name(o),
                text(o, &["type"]).into(),
                data.into(),
                created(o, now),
            ]
        }),
        "ServiceAccount" => (SERVICE_ACCOUNT, |o, now| {
            let secrets = len(o, &["secrets"]) as i64;
            vec![name(o), secrets.into(), created(o, now)]
        }),
        "Event" => (EVENT, event),
        "Lease" => (LEASE, |o, now| {
            let holder = text(o, &["spec", "holderIdentity"]);
            vec![name(o), holder.into(), created(o, now)]
        }),
        "PriorityClass" => (PRIORITY_CLASS, priority_class),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

fn event(event: &Value, now: i64) -> Vec<Value> {
    let field = |name: &str| at(event, &[name]).filter(|v| v.is_string());
    let first_seen = age(field("firstTimestamp").or(field("eventTime")), now);
    let mut last_seen = match field("lastTimestamp") {
        Some(time) => age(Some(time), now),
        None => first_seen.clone(),
    };
    let mut count = int(event, &["count"]);
    if let Some(series) = event.get("series").filter(|s| s.is_object()) {
        last_seen = age(at(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = text(event, &["involvedObject", "kind"]).to_ascii_lowercase();
    let object = match text(event, &["involvedObject", "name"]) {
        name if name.is_empty() => kind,
        name => format!("{kind}/{name}"),
    };
    let either = |a: &[&str], b: &[&str]| match text(event, a) {
        value if value.is_empty() => text(event, b),
        value => value,
    };
    let component = either(&["source", "component"], &["reportingComponent"]);
    let source = match either(&["source", "host"], &["reportingInstance"]) {
        host if host.is_empty() => component,
        host => format!("{component}, {host}"),
    };
    vec![
        last_seen.into(),
        text(event, &["type"]).into(),
        text(event, &["reason"]).into(),
        object.into(),
        text(event, &["involvedObject", "fieldPath"]).into(),
        source.into(),
        text(event, &["message"]).trim().to_string().into(),
        first_seen.into(),
        count.into(),
        name(event),
    ]
}

fn priority_class(object: &Value, now: i64) -> Vec<Value> {
    let global_default = at(object, &["globalDefault"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    vec![
        name(object),
        int(object, &["value"]).into(),
        global_default.into(),
        created(object, now),
        or_none(text(object, &["preemptionPolicy"])).into(),
    ]
}
