//! Tables: the columns `kubectl get` shows for each kind, built on the
//! server as a `meta.k8s.io/v1` Table, as the Kubernetes API server's
//! printers (`pkg/printers/internalversion`) build them.
//!
//! A Table names its columns once (`columnDefinitions`: name, type, format,
//! description and priority) and carries one row of cells per object. Cells
//! are already rendered — ages as "3m20s", lists joined with commas — except
//! counts, which stay numbers. Priority 0 columns are what `kubectl get`
//! prints; priority 1 columns are added by `-o wide`. The server always
//! fills every column: choosing them is the client's job. Each row also
//! carries its object, whole or as PartialObjectMetadata, as the request's
//! `includeObject` asks, so a client can add NAMESPACE or label columns.
//!
//! Kinds without a printer get the API server's default table: Name and
//! Created At.
//!
//! See <https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables>.
//!
//! # Layout
//! - [`age`]: durations ("3m20s") and RFC 3339 timestamps.
//! - [`object`]: reading an object's fields for a cell.
//! - `pod`, `node`, `network` (Service, Endpoints, EndpointSlice),
//!   `workloads` (Deployment, ReplicaSet, Job, CronJob,
//!   PodDisruptionBudget), `cluster` (Namespace, ConfigMap, Secret,
//!   ServiceAccount, Event, Lease, PriorityClass): each kind's columns and
//!   cells.
//!
//! # Where to start
//! [`table`], then a kind's printer in `pod.rs`.
//!
//! # Caveats
//! No `noHeaders` option: every Table names its columns. Row `conditions`
//! (kubectl greys out completed pods with them) are not set.

use serde_json::{json, Value};

pub mod age;
mod cluster;
mod network;
mod node;
pub mod object;
mod pod;
mod workloads;

pub use node::roles as node_roles;
pub use pod::status as pod_status;

/// What each row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// The object's metadata, as a PartialObjectMetadata (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// The value of the `includeObject` query parameter (`None`, `Metadata`
    /// or `Object`); `None` when the text is none of them.
    pub fn parse(text: &str) -> Option<IncludeObject> {
        match text {
            "None" => Some(IncludeObject::None),
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }

    /// How the `includeObject` query parameter spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            IncludeObject::None => "None",
            IncludeObject::Metadata => "Metadata",
            IncludeObject::Object => "Object",
        }
    }
}

/// One column of a Table (`metav1.TableColumnDefinition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column's name, as kubectl upper-cases it for the header ("Ready").
    pub name: &'static str,
    /// An OpenAPI type: `string`, `integer`, `number`, `boolean` or `date`.
    pub r#type: &'static str,
    /// An OpenAPI format, such as `name` for the object's name column.
    pub format: &'static str,
    /// What the column shows (mostly the field's own documentation).
    pub description: &'static str,
    /// 0 for the columns `kubectl get` shows, 1 for those only `-o wide` adds.
    pub priority: i32,
}

impl Column {
    /// A default column of `r#type`.
    pub(crate) const fn new(
        name: &'static str,
        r#type: &'static str,
        description: &'static str,
    ) -> Column {
        Column {
            name,
            r#type,
            format: "",
            description,
            priority: 0,
        }
    }

    /// The same column, shown only with `-o wide`.
    pub(crate) const fn wide(self) -> Column {
        Column {
            priority: 1,
            ..self
        }
    }

    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.r#type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Every table's first column: the object's name.
pub(crate) const NAME: Column = Column {
    name: "Name",
    r#type: "string",
    format: "name",
    description: "Name must be unique within a namespace. Is required when creating resources, \
                  although some resources may allow a client to request the generation of an \
                  appropriate name automatically. Cannot be updated.",
    priority: 0,
};

/// The object's age, from `metadata.creationTimestamp`.
pub(crate) const AGE: Column = Column::new(
    "Age",
    "string",
    "CreationTimestamp is a timestamp representing the server time when this object was \
     created. It is represented in RFC3339 form and is in UTC.",
);

/// The default table's second column: `metadata.creationTimestamp` itself.
const CREATED_AT: Column = Column::new(
    "Created At",
    "date",
    "CreationTimestamp is a timestamp representing the server time when this object was \
     created. It is represented in RFC3339 form and is in UTC.",
);

/// The default table's columns, for kinds without a printer.
const DEFAULT_COLUMNS: &[Column] = &[NAME, CREATED_AT];

/// A kind's printer: its columns and the cells of one object at a time
/// (`now` in Unix seconds, for ages).
pub(crate) struct Printer {
    pub(crate) columns: &'static [Column],
    pub(crate) cells: fn(&Value, i64) -> Vec<Value>,
}

/// The printer of `kind`, if Kubernetes has one for it.
fn printer(kind: &str) -> Option<Printer> {
    pod::printer(kind)
        .or_else(|| node::printer(kind))
        .or_else(|| network::printer(kind))
        .or_else(|| workloads::printer(kind))
        .or_else(|| cluster::printer(kind))
}

/// The column definitions of `kind`'s table.
pub fn columns(kind: &str) -> &'static [Column] {
    printer(kind).map_or(DEFAULT_COLUMNS, |p| p.columns)
}

/// The cells of `object`'s row in `kind`'s table at `now` (Unix seconds),
/// one per column of [`columns`].
pub fn cells(kind: &str, object: &Value, now: i64) -> Vec<Value> {
    match printer(kind) {
        Some(printer) => (printer.cells)(object, now),
        None => vec![
            object["metadata"]["name"].clone(),
            object["metadata"]["creationTimestamp"].clone(),
        ],
    }
}

/// The Table of `objects`, all of `kind`, at `now` (Unix seconds, for ages).
pub fn table(kind: &str, objects: &[Value], include: IncludeObject, now: i64) -> Value {
    let columns: Vec<Value> = columns(kind).iter().map(|c| c.to_json()).collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            json!({
                "cells": cells(kind, object, now),
                "object": row_object(object, include),
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn row_object(object: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => object.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object["metadata"].clone(),
        }),
    }
}

/// The Name cell.
pub(crate) fn name(object: &Value) -> Value {
    Value::String(object::text(object, &["metadata", "name"]))
}

/// The Age cell at `now`.
pub(crate) fn created(object: &Value, now: i64) -> Value {
    Value::String(age::age(
        object::at(object, &["metadata", "creationTimestamp"]),
        now,
    ))
}

#[cfg(test)]
mod tests;
