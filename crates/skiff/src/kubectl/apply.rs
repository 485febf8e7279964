//! `skiff apply -f`: create each object of the manifests, or bring an existing
//! one in line with its manifest.
//!
//! This is kubectl's client-side apply: the manifest is kept on the object in
//! the `kubectl.kubernetes.io/last-applied-configuration` annotation; the next
//! apply merges the new manifest into the live object, removes the fields the
//! last manifest had and this one drops, and writes the result with the live
//! resourceVersion (so a concurrent change is a Conflict, not lost). When the
//! merge changes nothing, nothing is written and the object is `unchanged`.
//!
//! With `--server-side` the manifest goes to the server as is, as a
//! server-side apply (`PATCH_TYPE_APPLY`) by the field manager `kubectl`: the
//! server merges it, removes what this manager applied before and no longer
//! does, and answers a conflict when another manager owns a field with
//! another value (`--force-conflicts` takes such fields over).
//!
//! # Caveats
//! Lists merge by the `name` of their items when every item has one
//! (containers, env, volumes), lists of as many unnamed objects merge by
//! position, and other lists are replaced; Kubernetes' strategic merge knows
//! the real merge key of each list.

use serde_json::{Map, Value};
use skiff_client::{Patch, PatchParams, PostParams, Served};

use super::manifest::{self, Document};
use super::{print, resolve, Error, Session};
use crate::cli::ApplyArgs;

/// The annotation holding the manifest last applied, as kubectl names it.
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Runs `skiff apply`.
pub(crate) async fn run(args: ApplyArgs) -> Result<(), Error> {
    let documents = manifest::read_all(&args.files);
    if documents.is_empty() {
        return Err(Error::Usage("no objects passed to apply".into()));
    }
    let mut session = Session::connect(args.server.server.as_deref()).await?;
    let mut failed = false;
    for document in &documents {
        match apply_one(&mut session, document, &args).await {
            Ok(line) => print(&format!("{line}\n")),
            Err(err) => {
                eprintln!("{err}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Error::Reported)
    } else {
        Ok(())
    }
}

/// A manifest object resolved against the server: its resource, namespace and name.
pub(crate) struct Target {
    /// The served resource of its kind.
    pub resource: Served,
    /// Its namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The object, with its namespace filled in.
    pub object: Value,
}

/// Checks a manifest object and finds where it goes; errors name the document.
pub(crate) fn target(
    session: &Session,
    document: &Document,
    namespace_flag: Option<&str>,
) -> Result<Target, Error> {
    let location = document.location();
    let mut object = document
        .object
        .clone()
        .map_err(|e| Error::Usage(format!("{location}: {e}")))?;
    let field = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    for (value, name) in [(&api_version, "apiVersion"), (&kind, "kind")] {
        if value.is_empty() {
            return Err(Error::Usage(format!(
                "error validating {location}: {name} not set"
            )));
        }
    }
    let name = skiff_api::printers::object::text(&object, &["metadata", "name"]);
    if name.is_empty() {
        return Err(Error::Usage(format!(
            "error validating {location}: metadata.name not set"
        )));
    }
    let resource = resolve::by_kind(&session.discovery, &api_version, &kind)
        .cloned()
        .ok_or_else(|| {
            Error::Usage(format!(
                "resource mapping not found for name: {name:?} from {location}: no matches for kind {kind:?} in version {api_version:?}"
            ))
        })?;
    let given = skiff_api::printers::object::text(&object, &["metadata", "namespace"]);
    let namespace = if !resource.namespaced() {
        String::new()
    } else {
        match (given.as_str(), namespace_flag.filter(|n| !n.is_empty())) {
            ("", flag) => flag.unwrap_or("default").to_string(),
            (given, Some(flag)) if given != flag => {
                return Err(Error::Usage(format!(
                    "{location}: the namespace from the provided object {given:?} does not match the namespace {flag:?}. You must pass '--namespace={given}' to perform this operation."
                )))
            }
            (given, _) => given.to_string(),
        }
    };
    if resource.namespaced() {
        object["metadata"]["namespace"] = Value::String(namespace.clone());
    }
    Ok(Target {
        resource,
        namespace,
        name,
        object,
    })
}

/// The field manager client-side apply writes as, as kubectl's.
const CLIENT_SIDE_MANAGER: &str = "kubectl-client-side-apply";
/// The field manager of `--server-side`, as kubectl's.
const SERVER_SIDE_MANAGER: &str = "kubectl";

/// Applies one document; the line to print (`pod/web created`) or the error.
async fn apply_one(
    session: &mut Session,
    document: &Document,
    args: &ApplyArgs,
) -> Result<String, Error> {
    let Target {
        resource,
        namespace,
        name,
        object,
    } = target(session, document, args.namespace.as_deref())?;
    let shown = resolve::object_name(&resource, &name);
    let location = document.location();
    let desired = with_last_applied(&object);
    let server = session.server.clone();
    let server_error = |err, verb: &str| match Error::from_client(err, &server) {
        Error::Server(err) => Error::Server(skiff_api::status::ApiError {
            message: format!("error when {verb} {location}: {}", err.message),
            ..err
        }),
        other => other,
    };
    let api = session.api(&resource, &namespace);
    if args.server_side {
        let manager = args.field_manager.as_deref().unwrap_or(SERVER_SIDE_MANAGER);
        let mut params = PatchParams::apply(manager);
        params.force = args.force_conflicts;
        api.patch_bytes(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| server_error(e, "applying"))?;
        return Ok(format!("{shown} serverside-applied"));
    }
    let post = PostParams {
        field_manager: Some(
            args.field_manager
                .clone()
                .unwrap_or_else(|| CLIENT_SIDE_MANAGER.to_string()),
        ),
        ..PostParams::default()
    };
    let live = match api.get_raw(&name).await {
        Ok(live) => live,
        Err(err) if err.is_not_found() => {
            api.create_raw(&post, &desired)
                .await
                .map_err(|e| server_error(e, "creating"))?;
            return Ok(format!("{shown} created"));
        }
        Err(err) => return Err(server_error(err, "retrieving current configuration of")),
    };
    let last = skiff_api::printers::object::text(&live, &["metadata", "annotations", LAST_APPLIED]);
    let last: Option<Value> = serde_json::from_str(&last).ok();
    let merged = merge(&live, &desired, last.as_ref());
    if merged == live {
        return Ok(format!("{shown} unchanged"));
    }
    api.replace_raw(&name, &post, &merged)
        .await
        .map_err(|e| server_error(e, "updating"))?;
    Ok(format!("{shown} configured"))
}

/// The manifest with itself (minus this annotation) in the last-applied annotation.
pub(crate) fn with_last_applied(object: &Value) -> Value {
    let mut applied = object.clone();
    if let Some(Value::Object(annotations)) = applied
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            if let Some(Value::Object(meta)) = applied.get_mut("metadata") {
                meta.remove("annotations");
            }
        }
    }
    let text = serde_json::to_string(&applied).expect("a Value always encodes");
    let mut desired = object.clone();
    let meta = desired
        .as_object_mut()
        .expect("manifests are objects")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(annotations) = annotations {
            annotations.insert(LAST_APPLIED.into(), Value::String(format!("{text}\n")));
        }
    }
    desired
}

/// The live object with `desired` merged in: objects merge key by key, fields
/// `last` (the previous manifest) had and `desired` lacks are removed, lists of
/// named items merge item by item, and anything else takes the desired value.
pub(crate) fn merge(live: &Value, desired: &Value, last: Option<&Value>) -> Value {
    match (live, desired) {
        (Value::Object(live_map), Value::Object(desired_map)) => {
            let last_map = last.and_then(Value::as_object);
            let mut out = live_map.clone();
            for key in last_map.into_iter().flat_map(|l| l.keys()) {
                if !desired_map.contains_key(key) {
                    out.remove(key);
                }
            }
            for (key, value) in desired_map {
                if value.is_null() {
                    out.remove(key);
                    continue;
                }
                let merged = match live_map.get(key) {
                    Some(live_value) => merge(live_value, value, last_map.and_then(|l| l.get(key))),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(live_items), Value::Array(desired_items))
            if !desired_items.is_empty()
                && desired_items.iter().all(|i| item_name(i).is_some()) =>
        {
            let find = |items: &'_ [Value], name: &str| -> Option<Value> {
                items.iter().find(|i| item_name(i) == Some(name)).cloned()
            };
            let last_items = last.and_then(Value::as_array).map(Vec::as_slice);
            let merged = desired_items
                .iter()
                .map(|item| {
                    let name = item_name(item).expect("checked above");
                    match find(live_items, name) {
                        Some(live_item) => {
                            let last_item = last_items.and_then(|l| find(l, name));
                            merge(&live_item, item, last_item.as_ref())
                        }
                        None => item.clone(),
                    }
                })
                .collect();
            Value::Array(merged)
        }
        (Value::Array(live_items), Value::Array(desired_items))
            if live_items.len() == desired_items.len()
                && desired_items.iter().all(Value::is_object) =>
        {
            // Unnamed items (such as ports without names) merge by position, so
            // the fields the server defaulted in them are kept.
            let last_items = last.and_then(Value::as_array);
            let merged = live_items
                .iter()
                .zip(desired_items)
                .enumerate()
                .map(|(i, (live_item, item))| {
                    merge(live_item, item, last_items.and_then(|l| l.get(i)))
                })
                .collect();
            Value::Array(merged)
        }
        _ => desired.clone(),
    }
}

fn item_name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn live_pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7",
                         "labels": {"app": "web", "old": "x"}},
            "spec": {"nodeName": "node-1",
                     "containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"}]},
            "status": {"phase": "Running"}})
    }

    #[test]
    fn merging_the_same_manifest_changes_nothing_despite_server_defaults() {
        let manifest = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "old": "x"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
        let live = live_pod();
        assert_eq!(merge(&live, &manifest, Some(&manifest)), live);
    }

    #[test]
    fn merging_keeps_server_fields_and_drops_what_the_last_manifest_had() {
        let last = json!({"metadata": {"labels": {"app": "web", "old": "x"}},
                          "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}});
        let desired = json!({"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
        let merged = merge(&live_pod(), &desired, Some(&last));
        assert_eq!(merged["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(merged["metadata"]["resourceVersion"], "7");
        assert_eq!(merged["spec"]["nodeName"], "node-1");
        assert_eq!(
            merged["spec"]["containers"],
            json!([{"name": "c", "image": "nginx:2", "imagePullPolicy": "IfNotPresent"}])
        );
        assert_eq!(merged["status"]["phase"], "Running");
    }

    #[test]
    fn lists_without_names_merge_by_position_or_are_replaced() {
        let live = json!({"args": ["a", "b"]});
        let merged = merge(&live, &json!({"args": ["c"]}), None);
        assert_eq!(merged, json!({"args": ["c"]}));
        let live = json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]});
        let manifest = json!({"ports": [{"port": 80}]});
        assert_eq!(merge(&live, &manifest, Some(&manifest)), live);
        let changed = merge(&live, &json!({"ports": [{"port": 81}]}), Some(&manifest));
        assert_eq!(changed["ports"][0]["port"], 81);
        let two = merge(
            &live,
            &json!({"ports": [{"port": 80}, {"port": 443}]}),
            None,
        );
        assert_eq!(two, json!({"ports": [{"port": 80}, {"port": 443}]}));
    }

    #[test]
    fn the_last_applied_annotation_holds_the_manifest_without_itself() {
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "annotations": {LAST_APPLIED: "stale"}}});
        let desired = with_last_applied(&manifest);
        let stored = desired["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap();
        let stored: Value = serde_json::from_str(stored).unwrap();
        assert_eq!(
            stored,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}})
        );
        assert_eq!(with_last_applied(&desired), desired);
    }
}
