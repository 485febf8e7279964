//! Strategic merge patch: Kubernetes' own patch type, what `kubectl patch`
//! sends by default and what client-side `kubectl apply` computes.
//!
//! It is a JSON merge patch (objects merge, `null` removes a field) that knows
//! the kind's lists ([`super::schema`]): a list declared `patchStrategy: merge`
//! with a `patchMergeKey` merges item by item (a patch naming container `web`
//! changes that container and leaves the others), a list of scalars with
//! `patchStrategy: merge` (`finalizers`) gains items, and every other list is
//! replaced whole. Directives steer what the plain merge cannot say:
//!
//! - `"$patch": "replace"` in an object replaces it instead of merging; as
//!   an item of a list (`{"$patch": "replace"}`) the list is replaced by the
//!   other items.
//! - `"$patch": "delete"` in an item of a keyed list removes the item with
//!   that key; in an object, removes the object.
//! - `"$retainKeys": [..]` keeps only those fields of the object (a union
//!   type switching members, such as a volume's source or a Deployment's
//!   strategy).
//! - `"$deleteFromPrimitiveList/<field>": [..]` removes those scalars from
//!   a merged list of scalars.
//! - `"$setElementOrder/<field>": [..]` orders a merged list as given.
//!
//! See <https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md>.
//!
//! # Caveats
//! Items of a merged list keep the live order, new ones appended, unless
//! `$setElementOrder` orders them; items it does not name go last (Kubernetes
//! interleaves them by their live positions). The patch is not checked against
//! the kind's schema: unknown fields reach decoding, which reports them.

use serde_json::{Map, Value};

use super::schema::{self, List, ListMerge, Type};
use super::PatchError;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `target`, an object of `kind`.
/// On error `target` may be half patched: patch a copy.
pub fn strategic_merge_patch(
    kind: &str,
    target: &mut Value,
    patch: &Value,
) -> Result<(), PatchError> {
    merge_into(schema::for_kind(kind), target, patch)
}

/// Merges `patch` into `target` with the list strategies of `ty`: a strategic
/// merge patch, and how server-side apply merges an intent into the live object.
pub(crate) fn merge_into(ty: &Type, target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::at(
            "",
            "a strategic merge patch must be a JSON object",
        ));
    };
    let fields = as_object(target);
    if merge_object(fields, patch, ty, "")? == Merged::Deleted {
        fields.clear();
    }
    Ok(())
}

/// Whether a merged object stays or was deleted by `$patch: delete`.
#[derive(Debug, PartialEq, Eq)]
enum Merged {
    Kept,
    Deleted,
}

fn merge_object(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    ty: &Type,
    path: &str,
) -> Result<Merged, PatchError> {
    match patch.get(PATCH) {
        None => {}
        Some(Value::String(directive)) => match directive.as_str() {
            "merge" => {}
            "replace" => original.clear(),
            "delete" => return Ok(Merged::Deleted),
            other => return Err(PatchError::at(path, format!("unknown patch type: {other}"))),
        },
        Some(other) => return Err(PatchError::at(path, format!("unknown patch type: {other}"))),
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        retain_keys(original, patch, retain, path)?;
    }
    for (name, values) in patch {
        if let Some(field) = name.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            delete_from_primitive_list(original, field, values, &join(path, field))?;
        }
    }
    for (name, value) in patch {
        if !name.starts_with('$') {
            merge_field(original, name, value, ty, path)?;
        } else if !is_directive(name) {
            return Err(PatchError::at(path, format!("unknown directive {name}")));
        }
    }
    for (name, order) in patch {
        if let Some(field) = name.strip_prefix(SET_ELEMENT_ORDER) {
            set_element_order(original, field, order, ty.list(field), &join(path, field))?;
        }
    }
    Ok(Merged::Kept)
}

fn is_directive(name: &str) -> bool {
    name == PATCH
        || name == RETAIN_KEYS
        || name.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || name.starts_with(SET_ELEMENT_ORDER)
}

fn merge_field(
    original: &mut Map<String, Value>,
    name: &str,
    value: &Value,
    ty: &Type,
    path: &str,
) -> Result<(), PatchError> {
    let path = join(path, name);
    match value {
        Value::Null => {
            original.remove(name);
        }
        Value::Object(patch) => {
            let slot = original.entry(name).or_insert(Value::Null);
            if merge_object(as_object(slot), patch, ty.object(name), &path)? == Merged::Deleted {
                original.remove(name);
            }
        }
        Value::Array(items) => {
            let slot = original.entry(name).or_insert(Value::Null);
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(list) = slot else {
                unreachable!("made a list above")
            };
            merge_list(list, items, ty.list(name), &path)?;
        }
        scalar => {
            original.insert(name.to_string(), scalar.clone());
        }
    }
    Ok(())
}

fn merge_list(
    original: &mut Vec<Value>,
    patch: &[Value],
    list: Option<&List>,
    path: &str,
) -> Result<(), PatchError> {
    let replace = patch
        .iter()
        .any(|item| item.get(PATCH).and_then(Value::as_str) == Some("replace"));
    match list {
        // A list without a strategy, or one the patch asks to replace.
        None => {
            *original = patch
                .iter()
                .filter(|item| !is_list_directive(item))
                .cloned()
                .collect()
        }
        Some(_) if replace => {
            original.clear();
            let items = patch.iter().filter(|item| item.get(PATCH).is_none());
            for (index, item) in items.enumerate() {
                original.push(fresh(item, list, &format!("{path}[{index}]"))?);
            }
        }
        Some(List {
            merge: ListMerge::Set,
            ..
        }) => {
            for item in patch {
                if !original.contains(item) {
                    original.push(item.clone());
                }
            }
        }
        Some(List {
            merge: ListMerge::Map {
                patch_merge_key, ..
            },
            items,
        }) => {
            for (index, item) in patch.iter().enumerate() {
                let item_path = format!("{path}[{index}]");
                merge_item(original, item, patch_merge_key, items, &item_path)?;
            }
        }
    }
    Ok(())
}

/// `{"$patch": "replace"}` standing alone as an item of a list.
fn is_list_directive(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|fields| fields.len() == 1 && fields.contains_key(PATCH))
}

/// A patch item with its directives resolved, as the first of its key.
fn fresh(item: &Value, list: Option<&List>, path: &str) -> Result<Value, PatchError> {
    let Value::Object(fields) = item else {
        return Ok(item.clone());
    };
    let ty = list.map_or(&schema::OPAQUE, |list| list.items);
    let mut object = Map::new();
    merge_object(&mut object, fields, ty, path)?;
    Ok(Value::Object(object))
}

/// Merges one item of a keyed list into the live item with the same key, or
/// appends it.
fn merge_item(
    original: &mut Vec<Value>,
    item: &Value,
    key: &str,
    items: &Type,
    path: &str,
) -> Result<(), PatchError> {
    let Value::Object(fields) = item else {
        return Err(PatchError::at(
            path,
            format!("a list merged by \"{key}\" holds objects, not {item}"),
        ));
    };
    let Some(wanted) = fields.get(key) else {
        return Err(PatchError::at(
            path,
            format!("the item does not contain declared merge key: {key}"),
        ));
    };
    match original
        .iter()
        .position(|live| live.get(key) == Some(wanted))
    {
        Some(at) => {
            if merge_object(as_object(&mut original[at]), fields, items, path)? == Merged::Deleted {
                original.remove(at);
            }
        }
        None => {
            let mut object = Map::new();
            if merge_object(&mut object, fields, items, path)? == Merged::Kept {
                original.push(Value::Object(object));
            }
        }
    }
    Ok(())
}

/// `$retainKeys`: only the named fields stay; the patch may set no others.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let names: Vec<&str> = retain
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .filter(|names: &Vec<&str>| Some(names.len()) == retain.as_array().map(Vec::len))
        .ok_or_else(|| PatchError::at(path, "$retainKeys must be a list of field names"))?;
    if let Some(stray) = patch.iter().find(|(name, value)| {
        !name.starts_with('$') && !value.is_null() && !names.contains(&name.as_str())
    }) {
        return Err(PatchError::at(
            path,
            format!("field {} is not in $retainKeys {retain}", stray.0),
        ));
    }
    original.retain(|name, _| names.contains(&name.as_str()));
    Ok(())
}

fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    values: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let Value::Array(values) = values else {
        return Err(PatchError::at(
            path,
            "$deleteFromPrimitiveList takes a list",
        ));
    };
    if let Some(Value::Array(list)) = original.get_mut(field) {
        list.retain(|item| !values.contains(item));
    }
    Ok(())
}

/// `$setElementOrder`: the named items in the given order, then the rest.
fn set_element_order(
    original: &mut Map<String, Value>,
    field: &str,
    order: &Value,
    list: Option<&List>,
    path: &str,
) -> Result<(), PatchError> {
    let Value::Array(order) = order else {
        return Err(PatchError::at(path, "$setElementOrder takes a list"));
    };
    let (Some(list), Some(Value::Array(items))) = (list, original.get_mut(field)) else {
        return Ok(());
    };
    let same = |item: &Value, wanted: &Value| match list.merge {
        ListMerge::Set => item == wanted,
        ListMerge::Map {
            patch_merge_key, ..
        } => {
            item.get(patch_merge_key).is_some()
                && item.get(patch_merge_key) == wanted.get(patch_merge_key)
        }
    };
    let mut rest = std::mem::take(items);
    for wanted in order {
        if let Some(at) = rest.iter().position(|item| same(item, wanted)) {
            items.push(rest.remove(at));
        }
    }
    items.extend(rest);
    Ok(())
}

/// `value` as an object, made one (empty) if it is anything else.
fn as_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(fields) => fields,
        _ => unreachable!("made an object above"),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests;
