//! The served resources and where each is kept in the store.
//!
//! A Kubernetes *resource* is a collection served at a REST path, named by its
//! group, version and plural name (its GVR, such as `apps/v1/deployments`); the
//! objects in it are of one *kind* (`Deployment`). Some resources live in a
//! namespace, others are cluster-scoped (Node, Namespace, PriorityClass).
//! See <https://kubernetes.io/docs/reference/using-api/api-concepts/>.
//!
//! # Store keys
//! Objects are JSON values under the key layout the Kubernetes API server uses
//! in etcd, so `etcdctl get --prefix /registry/pods/` shows what it would:
//! - namespaced: `/registry/<resource>/<namespace>/<name>`
//! - cluster-scoped: `/registry/<resource>/<name>`
//!
//! Kubernetes' historical quirks are kept: Services live under
//! `/registry/services/specs/`, Nodes under `/registry/minions/`, and
//! Deployments, ReplicaSets and the rest under their plural names. Service IP
//! and node-port allocations live under `/registry/ranges/` (see the API
//! server's allocator).
//!
//! # Caveats
//! One version per group; no CustomResourceDefinitions, no aggregated APIs.

/// One served resource: its names, scope, subresources and store prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The version served, such as "v1".
    pub version: &'static str,
    /// The plural, lower-case name used in paths ("pods").
    pub resource: &'static str,
    /// The singular name ("pod").
    pub singular: &'static str,
    /// The kind of its objects ("Pod").
    pub kind: &'static str,
    /// Whether its objects live in a namespace.
    pub namespaced: bool,
    /// Abbreviations `kubectl` accepts ("po").
    pub short_names: &'static [&'static str],
    /// Subresources served, such as "status".
    pub subresources: &'static [&'static str],
    /// The categories it belongs to: "all" for the kinds `kubectl get all`
    /// shows, as Kubernetes lists them in discovery.
    pub categories: &'static [&'static str],
    /// The first path segment of its store keys after `/registry/` ("pods",
    /// "services/specs", "minions").
    pub store_prefix: &'static str,
}

/// The verbs every served resource supports, as discovery lists them.
pub const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

macro_rules! resource {
    ($group:expr, $version:expr, $resource:expr, $singular:expr, $kind:expr, $namespaced:expr,
     [$($short:expr),*], [$($sub:expr),*], $prefix:expr) => {
        resource!($group, $version, $resource, $singular, $kind, $namespaced,
            [$($short),*], [$($sub),*], $prefix, [])
    };
    ($group:expr, $version:expr, $resource:expr, $singular:expr, $kind:expr, $namespaced:expr,
     [$($short:expr),*], [$($sub:expr),*], $prefix:expr, [$($category:expr),*]) => {
        Resource {
            group: $group,
            version: $version,
            resource: $resource,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: &[$($short),*],
            subresources: &[$($sub),*],
            categories: &[$($category),*],
            store_prefix: $prefix,
        }
    };
}

/// Every resource skiff serves, in discovery order.
pub static RESOURCES: &[Resource] = &[
    resource!(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        ["ns"],
        ["status", "finalize"],
        "namespaces"
    ),
    resource!(
        "",
        "v1",
        "nodes",
        "node",
        "Node",
        false,
        ["no"],
        ["status"],
        "minions"
    ),
    resource!(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        ["po"],
        ["status", "binding", "log", "exec"],
        "pods",
        ["all"]
    ),
    resource!(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        ["svc"],
        ["status"],
        "services/specs",
        ["all"]
    ),
    resource!(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        ["ep"],
        [],
        "services/endpoints"
    ),
    resource!(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        ["cm"],
        [],
        "configmaps"
    ),
    resource!(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        [],
        [],
        "secrets"
    ),
    resource!(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        ["sa"],
        [],
        "serviceaccounts"
    ),
    resource!(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        ["ev"],
        [],
        "events"
    ),
    resource!(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        [],
        [],
        "leases"
    ),
    resource!(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        true,
        [],
        ["status"],
        "jobs",
        ["all"]
    ),
    resource!(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        true,
        ["cj"],
        ["status"],
        "cronjobs",
        ["all"]
    ),
    resource!(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        ["rs"],
        ["status", "scale"],
        "replicasets",
        ["all"]
    ),
    resource!(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        ["deploy"],
        ["status", "scale"],
        "deployments",
        ["all"]
    ),
    resource!(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        [],
        [],
        "endpointslices"
    ),
    resource!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        ["pdb"],
        ["status"],
        "poddisruptionbudgets"
    ),
    resource!(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "priorityclass",
        "PriorityClass",
        false,
        ["pc"],
        [],
        "priorityclasses"
    ),
];

impl Resource {
    /// `group/version`, or just the version for the core group: the value of
    /// `apiVersion` in its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `resource.group` ("deployments.apps", or "pods" for the core group), as
    /// Kubernetes names a resource in error messages.
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// The kind of this resource's lists ("PodList").
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether `name` is one of its subresources.
    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }

    /// The store prefix of every object of this resource, ending in `/`:
    /// `/registry/pods/`.
    pub fn prefix(&self) -> String {
        format!("/registry/{}/", self.store_prefix)
    }

    /// The store prefix of this resource's objects in `namespace` (all of them
    /// when the namespace is empty or the resource is cluster-scoped).
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("/registry/{}/{}/", self.store_prefix, namespace)
        } else {
            self.prefix()
        }
    }

    /// The store key of one object; `namespace` is ignored for cluster-scoped resources.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("/registry/{}/{}/{}", self.store_prefix, namespace, name)
        } else {
            format!("/registry/{}/{}", self.store_prefix, name)
        }
    }

    /// Whether a CLI user's `name` (plural, singular, kind or short name, any
    /// case, optionally `.group`-qualified) names this resource.
    pub(crate) fn answers_to(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let (name, group) = match name.split_once('.') {
            Some((name, group)) => (name.to_string(), Some(group.to_string())),
            None => (name, None),
        };
        if let Some(group) = group {
            if group != self.group {
                return false;
            }
        }
        name == self.resource
            || name == self.singular
            || name == self.kind.to_ascii_lowercase()
            || self.short_names.contains(&name.as_str())
    }
}

/// The resource served at `group/version/resource`.
pub fn by_gvr(group: &str, version: &str, resource: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// The resource whose objects have this `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The resource a CLI user means by `name`: plural ("pods"), singular ("pod"),
/// kind ("Pod"), short name ("po"), or any of them qualified with the group
/// ("deployments.apps", "deploy.apps").
pub fn lookup(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.answers_to(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_a_cli_user_types_finds_its_resource() {
        let cases = [
            ("po", "pods"),
            ("pod", "pods"),
            ("Pods", "pods"),
            ("Pod", "pods"),
            ("svc", "services"),
            ("ns", "namespaces"),
            ("no", "nodes"),
            ("ep", "endpoints"),
            ("cm", "configmaps"),
            ("sa", "serviceaccounts"),
            ("ev", "events"),
            ("rs", "replicasets"),
            ("deploy", "deployments"),
            ("deployments.apps", "deployments"),
            ("cj", "cronjobs"),
            ("pc", "priorityclasses"),
            ("lease", "leases"),
            ("endpointslice", "endpointslices"),
            ("job.batch", "jobs"),
            ("pdb", "poddisruptionbudgets"),
            ("poddisruptionbudgets.policy", "poddisruptionbudgets"),
        ];
        for (typed, plural) in cases {
            let found = lookup(typed).unwrap_or_else(|| panic!("{typed} finds nothing"));
            assert_eq!(found.resource, plural, "{typed}");
        }
        assert!(lookup("deployments.batch").is_none());
        assert!(lookup("widgets").is_none());
    }

    #[test]
    fn keys_follow_kubernetes_layout() {
        let pods = by_gvr("", "v1", "pods").unwrap();
        assert_eq!(pods.key("default", "web"), "/registry/pods/default/web");
        assert_eq!(pods.namespace_prefix("default"), "/registry/pods/default/");
        assert_eq!(pods.namespace_prefix(""), "/registry/pods/");
        let nodes = by_gvr("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key("ignored", "n1"), "/registry/minions/n1");
        let services = lookup("svc").unwrap();
        assert_eq!(
            services.key("default", "api"),
            "/registry/services/specs/default/api"
        );
        let deploy = by_gvr("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.api_version(), "apps/v1");
        assert_eq!(deploy.qualified_name(), "deployments.apps");
        assert_eq!(deploy.list_kind(), "DeploymentList");
    }

    #[test]
    fn no_store_prefix_contains_another() {
        // A list of one resource must never see another's keys.
        for a in RESOURCES {
            for b in RESOURCES {
                if a.resource != b.resource {
                    assert!(
                        !a.prefix().starts_with(&b.prefix()),
                        "{} lies under {}",
                        a.prefix(),
                        b.prefix()
                    );
                }
            }
        }
    }

    #[test]
    fn kinds_resolve_with_their_api_version() {
        assert_eq!(by_kind("v1", "Pod").unwrap().resource, "pods");
        assert_eq!(by_kind("batch/v1", "CronJob").unwrap().resource, "cronjobs");
        assert!(by_kind("apps/v1", "Pod").is_none());
        assert!(by_gvr("", "v1", "pods").unwrap().has_subresource("binding"));
    }

    #[test]
    fn kubectl_get_all_covers_the_workload_kinds() {
        let all: Vec<&str> = RESOURCES
            .iter()
            .filter(|r| r.categories.contains(&"all"))
            .map(|r| r.resource)
            .collect();
        assert_eq!(
            all,
            [
                "pods",
                "services",
                "jobs",
                "cronjobs",
                "replicasets",
                "deployments"
            ]
        );
    }
}
