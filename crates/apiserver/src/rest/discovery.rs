//! Discovery: how a client learns what the server serves, before it asks
//! for any object, and the health endpoints.
//!
//! - `/version`: the Kubernetes version skiff speaks (`kubectl version`).
//! - `/api` (APIVersions: `v1`) and `/apis` (APIGroupList), `/apis/<group>`
//!   (APIGroup): the group versions served.
//! - `/api/v1`, `/apis/<group>/<version>`: an APIResourceList, each resource
//!   with its verbs, short names, categories (`kubectl get all` expands the
//!   `all` category) and its subresources as entries of their own (`pods/status`).
//! - The aggregated document (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`)
//!   that kubectl 1.30+ asks `/api` and `/apis` for first, in one request
//!   each instead of one per group version. Its Content-Type must say what it
//!   is: client-go reads it to tell the aggregated form from the legacy one.
//! - `/healthz`, `/livez`, `/readyz` (and `/<endpoint>/<check>`): `ok`, or
//!   each check with `?verbose`.
//!
//! See <https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api>.
//!
//! # Where to start
//! [`serve`], one `match` on the path.
//!
//! # Caveats
//! One version per group, always `Current` (no aggregated API servers);
//! no `storageVersionHash`. pods/exec is not listed until REST serves it.

use serde_json::{json, Value};
use skiff_api::resources::{Resource, RESOURCES};
use skiff_proto::etcdserverpb::RangeRequest;

use super::negotiation::{self, media_ranges};
use super::response::{self, not_found};
use super::RestBody;
use crate::registry::Registry;

/// The Kubernetes version whose API skiff serves.
pub(crate) const KUBERNETES_VERSION: (&str, &str) = ("1", "33");

/// The verbs of every resource; subresources have their own.
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The aggregated discovery media type kubectl asks for first.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Answers a path outside the resource tree, if it names a discovery or health document.
pub(crate) async fn serve(
    registry: &Registry,
    path: &str,
    query: &super::query::Query,
    accept: Option<&str>,
) -> Option<http::Response<RestBody>> {
    let pretty = query.pretty();
    let json = |value: Value| response::object(200, &value, negotiation::Output::Json, pretty, &[]);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["version"] => Some(json(version())),
        ["api"] if wants_aggregated(accept) => Some(aggregated(&[""], pretty)),
        ["api"] => Some(json(
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        )),
        ["apis"] if wants_aggregated(accept) => Some(aggregated(&groups(), pretty)),
        ["apis"] => Some(json(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups().iter().map(|g| api_group(g)).collect::<Vec<_>>(),
        }))),
        ["apis", group] if groups().contains(group) => Some(json(api_group(group))),
        [endpoint @ ("healthz" | "livez" | "readyz"), check @ ..] => Some(
            health(
                registry,
                endpoint,
                check.first().copied(),
                query.has("verbose"),
            )
            .await,
        ),
        _ => None,
    }
}

/// The APIResourceList of one group version; `None` when it is not served.
pub(crate) fn group_version(group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Resource> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in served {
        let mut entry = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for (sub, verbs, kind) in subresources(r) {
            let mut entry = json!({
                "name": format!("{}/{sub}", r.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind.2,
                "verbs": verbs,
            });
            if (kind.0, kind.1) != (r.group, r.version) {
                entry["group"] = json!(kind.0);
                entry["version"] = json!(kind.1);
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// A subresource REST serves: its name, verbs and (group, version, kind).
type Subresource = (
    &'static str,
    &'static [&'static str],
    (&'static str, &'static str, &'static str),
);

/// The subresources of `resource` that REST serves.
fn subresources(resource: &Resource) -> Vec<Subresource> {
    let own = (resource.group, resource.version, resource.kind);
    resource
        .subresources
        .iter()
        .filter_map(|sub| {
            let (verbs, kind): (&'static [&'static str], _) = match *sub {
                "status" => (&["get", "patch", "update"], own),
                "finalize" => (&["update"], own),
                "binding" => (&["create"], ("", "v1", "Binding")),
                "scale" => (&["get", "patch", "update"], ("autoscaling", "v1", "Scale")),
                "log" => (&["get"], ("", "v1", "Pod")),
                _ => return None,
            };
            Some((*sub, verbs, kind))
        })
        .collect()
}

/// Whether an Accept header asks for the aggregated discovery document first.
fn wants_aggregated(accept: Option<&str>) -> bool {
    for range in media_ranges(accept.unwrap_or("")) {
        match range.param("as") {
            Some("APIGroupDiscoveryList")
                if range.param("g") == Some("apidiscovery.k8s.io")
                    && range.param("v") == Some("v2") =>
            {
                return true
            }
            None if range.is_json() => return false,
            _ => {}
        }
    }
    false
}

/// The groups under `/apis`, in discovery order.
fn groups() -> Vec<&'static str> {
    let mut groups = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}

fn api_group(group: &str) -> Value {
    let version = RESOURCES
        .iter()
        .find(|r| r.group == group)
        .map_or("v1", |r| r.version);
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [gv.clone()],
        "preferredVersion": gv,
    })
}

/// The APIGroupDiscoveryList of `groups` ("" is the core group).
fn aggregated(groups: &[&str], pretty: bool) -> http::Response<RestBody> {
    let items: Vec<Value> = groups
        .iter()
        .map(|group| {
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == *group)
                .map(aggregated_resource)
                .collect();
            let version = RESOURCES
                .iter()
                .find(|r| r.group == *group)
                .map_or("v1", |r| r.version);
            json!({
                "metadata": {"name": group},
                "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
            })
        })
        .collect();
    let list = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    });
    let mut answer = response::object(200, &list, negotiation::Output::Json, pretty, &[]);
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(AGGREGATED),
    );
    answer
}

fn aggregated_resource(r: &Resource) -> Value {
    let kind = |(group, version, kind): (&str, &str, &str)| json!({"group": group, "version": version, "kind": kind});
    let mut entry = json!({
        "resource": r.resource,
        "responseKind": kind((r.group, r.version, r.kind)),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": VERBS,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    let subresources: Vec<Value> = subresources(r)
        .into_iter()
        .map(|(sub, verbs, k)| json!({"subresource": sub, "responseKind": kind(k), "verbs": verbs}))
        .collect();
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

/// `/version`, as `kubectl version` reads it.
fn version() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-skiff"),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{arch}", std::env::consts::OS),
    })
}

/// `/healthz`, `/livez`, `/readyz`: `ping` and `etcd` (the store answers a read).
async fn health(
    registry: &Registry,
    endpoint: &str,
    only: Option<&str>,
    verbose: bool,
) -> http::Response<RestBody> {
    let store = registry
        .storage()
        .range(RangeRequest {
            key: b"/registry/health".to_vec(),
            keys_only: true,
            ..Default::default()
        })
        .await
        .is_ok();
    let checks = [("ping", true), ("etcd", store)];
    let checks: Vec<_> = checks
        .iter()
        .filter(|(name, _)| only.is_none_or(|o| o == *name))
        .collect();
    if checks.is_empty() {
        return response::error(&not_found());
    }
    let healthy = checks.iter().all(|(_, ok)| *ok);
    let mut text = String::new();
    if verbose || !healthy {
        for (name, ok) in &checks {
            text.push_str(&match ok {
                true => format!("[+]{name} ok\n"),
                false => format!("[-]{name} failed: reason withheld\n"),
            });
        }
        let verdict = if healthy { "passed" } else { "failed" };
        text.push_str(&format!("{endpoint} check {verdict}\n"));
    } else {
        text.push_str("ok");
    }
    response::text(if healthy { 200 } else { 500 }, text)
}
