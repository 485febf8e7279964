//! Tables: the columns `kubectl get` shows for each kind, built on the
//! server as a `meta.k8s.io/v1` Table, as the Kubernetes API server's
//! printers build them.
//!
//! # Caveats
//! Every kind gets the default columns for now (NAME, Created At), as the
//! Kubernetes API server prints kinds it has no printer for.

use serde_json::{json, Value};

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

/// The Table of `objects`, all of `kind`, at `now` (Unix seconds, for ages).
pub fn table(kind: &str, objects: &[Value], include: IncludeObject, now: i64) -> Value {
    let _ = (kind, now);
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let meta = &object["metadata"];
            json!({
                "cells": [meta["name"].clone(), meta["creationTimestamp"].clone()],
                "object": row_object(object, include),
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0},
        ],
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
