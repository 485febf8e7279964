//! Field sets: which fields of an object a manager owns, and their FieldsV1
//! encoding.
//!
//! A field is named by its path, one element per step, written as in
//! FieldsV1: `f:<name>` for a field of an object, `k:{"name":"web"}` for the
//! item of a keyed list with those keys (sorted, as JSON), `v:<json>` for the
//! item of a set. FieldsV1 nests the paths as a JSON tree whose leaves are
//! `{}`; a path that is owned itself and has owned children carries a `"."`
//! child.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use skiff_api::patch::schema::{List, ListMerge, Type};

/// One field: its path elements (`f:spec`, `f:containers`, `k:{"name":"web"}`, …).
pub(crate) type Path = Vec<String>;

/// A set of fields.
pub(crate) type FieldSet = BTreeSet<Path>;

/// Metadata the server sets: never owned by a manager.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Which part of the object a write may own: the main resource owns all but
/// `status`; a status write owns only `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Main,
    Status,
}

impl Scope {
    /// The scope of a write to `subresource` ("" or "status").
    pub(crate) fn of(subresource: &str) -> Scope {
        if subresource == "status" {
            Scope::Status
        } else {
            Scope::Main
        }
    }

    fn owns_top_level(self, name: &str) -> bool {
        match self {
            Scope::Main => !matches!(name, "apiVersion" | "kind" | "status"),
            Scope::Status => name == "status",
        }
    }
}

/// The owned members of `object`: every leaf field with its value, and every
/// item of a keyed list or set (with `None`: an item is there or not).
pub(crate) fn members<'a>(
    object: &'a Value,
    ty: &Type,
    scope: Scope,
) -> BTreeMap<Path, Option<&'a Value>> {
    let mut out = BTreeMap::new();
    let Value::Object(fields) = object else {
        return out;
    };
    let mut path = Vec::new();
    for (name, value) in fields {
        if !scope.owns_top_level(name) {
            continue;
        }
        path.push(format!("f:{name}"));
        if name == "metadata" {
            if let Value::Object(meta) = value {
                let owned = meta
                    .iter()
                    .filter(|(field, _)| !SERVER_METADATA.contains(&field.as_str()));
                walk_fields(owned, ty.object(name), &mut path, &mut out);
            }
        } else {
            walk_value(value, name, ty, &mut path, &mut out);
        }
        path.pop();
    }
    out
}

fn walk_fields<'a>(
    fields: impl Iterator<Item = (&'a String, &'a Value)>,
    ty: &Type,
    path: &mut Path,
    out: &mut BTreeMap<Path, Option<&'a Value>>,
) {
    for (name, value) in fields {
        path.push(format!("f:{name}"));
        walk_value(value, name, ty, path, out);
        path.pop();
    }
}

/// Adds `value`, held in field `name` of an object of type `ty`, at `path`.
fn walk_value<'a>(
    value: &'a Value,
    name: &str,
    ty: &Type,
    path: &mut Path,
    out: &mut BTreeMap<Path, Option<&'a Value>>,
) {
    match value {
        Value::Null => {}
        Value::Object(fields) if !fields.is_empty() => {
            walk_fields(fields.iter(), ty.object(name), path, out)
        }
        Value::Array(items) if !items.is_empty() => match ty.list(name) {
            Some(list) if items.iter().all(|item| item_element(item, list).is_some()) => {
                for item in items {
                    let element = item_element(item, list).expect("checked above");
                    path.push(element);
                    out.insert(path.clone(), None);
                    if let Value::Object(fields) = item {
                        walk_fields(fields.iter(), list.items, path, out);
                    }
                    path.pop();
                }
            }
            // Atomic, or a keyed list with an item missing its key: owned whole.
            _ => {
                out.insert(path.clone(), Some(value));
            }
        },
        leaf => {
            out.insert(path.clone(), Some(leaf));
        }
    }
}

/// The path element of one item of `list`: `v:<json>` in a set, `k:{…}` in
/// a keyed list; `None` for an item without any of its keys.
fn item_element(item: &Value, list: &List) -> Option<String> {
    match list.merge {
        ListMerge::Set => Some(format!("v:{item}")),
        ListMerge::Map { keys, .. } => {
            let mut present: Vec<(&str, &Value)> = keys
                .iter()
                .filter_map(|key| item.get(*key).map(|value| (*key, value)))
                .collect();
            if present.is_empty() {
                return None;
            }
            present.sort_by_key(|(key, _)| *key);
            let inner: Vec<String> = present
                .iter()
                .map(|(key, value)| format!("{}:{value}", Value::String(key.to_string())))
                .collect();
            Some(format!("k:{{{}}}", inner.join(",")))
        }
    }
}

/// Encodes a set as FieldsV1.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn encode(node: &Node) -> Value {
        let mut object = Map::new();
        if node.member && !node.children.is_empty() {
            object.insert(".".into(), Value::Object(Map::new()));
        }
        for (element, child) in &node.children {
            object.insert(element.clone(), encode(child));
        }
        Value::Object(object)
    }
    let mut root = Node::default();
    for path in set {
        let node = path.iter().fold(&mut root, |node, element| {
            node.children.entry(element.clone()).or_default()
        });
        node.member = true;
    }
    encode(&root)
}

/// Decodes FieldsV1; anything that is not a tree of objects is ignored.
pub(crate) fn from_fields_v1(fields: &Value) -> FieldSet {
    fn decode(node: &Map<String, Value>, path: &mut Path, out: &mut FieldSet) {
        for (element, child) in node {
            if element == "." {
                out.insert(path.clone());
                continue;
            }
            path.push(element.clone());
            match child {
                Value::Object(children) if !children.is_empty() => decode(children, path, out),
                _ => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    if let Value::Object(root) = fields {
        decode(root, &mut Vec::new(), &mut out);
    }
    out
}

/// A path as Kubernetes prints it in conflicts: `.spec.containers[name="web"].image`.
pub(crate) fn display(path: &Path) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(keys) = element.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(keys).unwrap_or_default();
            let pairs: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", pairs.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        }
    }
    out
}

/// Removes the field at `path` from `object`; parents left empty go too.
/// Nothing happens when the path is not there.
pub(crate) fn remove(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(parent) = lookup_mut(object, parents) else {
        return;
    };
    match parent {
        Value::Object(fields) => {
            if let Some(name) = last.strip_prefix("f:") {
                fields.remove(name);
            }
        }
        Value::Array(items) => items.retain(|item| !matches_element(item, last)),
        _ => {}
    }
    let now_empty = match parent {
        Value::Object(fields) => fields.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    if now_empty && !parents.is_empty() {
        remove(object, parents);
    }
}

fn lookup_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut current = value;
    for element in path {
        current = match current {
            Value::Object(fields) => fields.get_mut(element.strip_prefix("f:")?)?,
            Value::Array(items) => items
                .iter_mut()
                .find(|item| matches_element(item, element))?,
            _ => return None,
        };
    }
    Some(current)
}

/// Whether a list item is the one a `k:` or `v:` element names.
fn matches_element(item: &Value, element: &str) -> bool {
    if let Some(keys) = element.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(keys) else {
            return false;
        };
        keys.iter().all(|(key, value)| item.get(key) == Some(value))
    } else if let Some(value) = element.strip_prefix("v:") {
        serde_json::from_str::<Value>(value).is_ok_and(|value| *item == value)
    } else {
        false
    }
}
