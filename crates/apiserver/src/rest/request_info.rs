//! What a request asks for, read from its method, path and `watch` parameter,
//! as the Kubernetes API server's `RequestInfoFactory` reads it.
//!
//! Resource paths have two prefixes: `/api/v1/...` for the core group and
//! `/apis/<group>/<version>/...` for the others. After the version come:
//! - `namespaces/<ns>/<resource>[/<name>[/<subresource>]]` for namespaced resources;
//! - `<resource>[/<name>[/<subresource>]]` for cluster-scoped ones, and for
//!   namespaced ones across all namespaces (list and watch);
//! - the namespace object itself: `namespaces/<name>[/status|/finalize]`;
//! - the legacy `watch/` prefix before any of these (`/api/v1/watch/pods`).
//!
//! The verb comes from the method: GET is get, list or watch; POST create;
//! PUT update; PATCH patch; DELETE delete or deletecollection.
//!
//! # Where to start
//! [`RequestInfo::parse`]; anything else (`/version`, `/healthz`, the
//! discovery documents) is a [`Path::NonResource`].
//!
//! # Caveats
//! No `proxy/` paths.

/// The verb of a resource request, as Kubernetes names it (and as RBAC will).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource: `/api/v1/namespaces/default/pods/web/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    /// Empty for the core group.
    pub(crate) group: String,
    pub(crate) version: String,
    /// Empty for cluster-scoped resources and for lists across namespaces.
    pub(crate) namespace: String,
    pub(crate) resource: String,
    pub(crate) name: String,
    pub(crate) subresource: String,
    /// The request came through the legacy `/watch/` prefix.
    pub(crate) legacy_watch: bool,
}

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// A resource, its objects or a subresource.
    Resource(RequestInfo),
    /// `/api/v1` or `/apis/<group>/<version>`: the resources of one group version.
    GroupVersion { group: String, version: String },
    /// `/api`, `/apis`, `/apis/<group>`, `/version`, `/healthz`, … (the path itself).
    NonResource(String),
}

/// The namespace object's own subresources: a third segment after
/// `namespaces/<name>` that is one of these is not a resource in the namespace.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    /// Reads a request's path.
    pub(crate) fn parse(path: &str) -> Path {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match parts.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Path::NonResource(format!("/{}", parts.join("/"))),
        };
        if rest.is_empty() {
            return Path::GroupVersion {
                group: group.to_string(),
                version: version.to_string(),
            };
        }
        let mut info = RequestInfo {
            group: group.to_string(),
            version: version.to_string(),
            ..Default::default()
        };
        let mut rest = rest;
        if rest[0] == "watch" {
            info.legacy_watch = true;
            rest = &rest[1..];
        }
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        let segment = |i: usize| rest.get(i).map_or(String::new(), |s| s.to_string());
        info.resource = segment(0);
        info.name = segment(1);
        info.subresource = segment(2);
        if info.resource == "namespaces" {
            // The namespace object is cluster-scoped: its name is not a namespace.
            info.namespace.clear();
        }
        if info.resource.is_empty() || rest.len() > 3 {
            return Path::NonResource(path.to_string());
        }
        Path::Resource(info)
    }

    /// The verb of `method` on this path; `watch` is the `watch` query parameter.
    pub(crate) fn verb(&self, method: &http::Method, watch: bool) -> Option<Verb> {
        let named = !self.name.is_empty();
        Some(match *method {
            http::Method::GET | http::Method::HEAD if self.legacy_watch || watch => Verb::Watch,
            http::Method::GET | http::Method::HEAD if named => Verb::Get,
            http::Method::GET | http::Method::HEAD => Verb::List,
            http::Method::POST => Verb::Create,
            http::Method::PUT => Verb::Update,
            http::Method::PATCH => Verb::Patch,
            http::Method::DELETE if named => Verb::Delete,
            http::Method::DELETE => Verb::DeleteCollection,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str) -> RequestInfo {
        match RequestInfo::parse(path) {
            Path::Resource(info) => info,
            other => panic!("{path} is not a resource path: {other:?}"),
        }
    }

    fn expect(group: &str, ns: &str, resource: &str, name: &str, sub: &str) -> RequestInfo {
        RequestInfo {
            group: group.into(),
            version: "v1".into(),
            namespace: ns.into(),
            resource: resource.into(),
            name: name.into(),
            subresource: sub.into(),
            legacy_watch: false,
        }
    }

    #[test]
    fn namespaced_paths_name_namespace_resource_name_and_subresource() {
        assert_eq!(
            info("/api/v1/namespaces/default/pods"),
            expect("", "default", "pods", "", "")
        );
        assert_eq!(
            info("/api/v1/namespaces/default/pods/web/status"),
            expect("", "default", "pods", "web", "status")
        );
        assert_eq!(
            info("/apis/apps/v1/namespaces/prod/deployments/api/scale"),
            expect("apps", "prod", "deployments", "api", "scale")
        );
        assert_eq!(info("/api/v1/pods"), expect("", "", "pods", "", ""));
    }

    #[test]
    fn the_namespace_object_is_a_cluster_scoped_resource() {
        assert_eq!(
            info("/api/v1/namespaces/prod"),
            expect("", "", "namespaces", "prod", "")
        );
        assert_eq!(
            info("/api/v1/namespaces/prod/finalize"),
            expect("", "", "namespaces", "prod", "finalize")
        );
        assert_eq!(
            info("/api/v1/namespaces"),
            expect("", "", "namespaces", "", "")
        );
        assert_eq!(info("/api/v1/nodes/n1"), expect("", "", "nodes", "n1", ""));
    }

    #[test]
    fn the_legacy_watch_prefix_makes_every_get_a_watch() {
        let watch = info("/api/v1/watch/namespaces/default/pods/web");
        assert!(watch.legacy_watch);
        assert_eq!(watch.name, "web");
        assert_eq!(watch.verb(&http::Method::GET, false), Some(Verb::Watch));
    }

    #[test]
    fn non_resource_paths_and_group_versions() {
        assert_eq!(
            RequestInfo::parse("/apis/apps/v1"),
            Path::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            RequestInfo::parse("/version"),
            Path::NonResource("/version".into())
        );
        assert_eq!(
            RequestInfo::parse("/apis"),
            Path::NonResource("/apis".into())
        );
        assert_eq!(
            RequestInfo::parse("/api/v1/namespaces/a/pods/b/c/d"),
            Path::NonResource("/api/v1/namespaces/a/pods/b/c/d".into())
        );
    }

    #[test]
    fn verbs_follow_method_name_and_watch() {
        let list = info("/api/v1/namespaces/default/pods");
        let one = info("/api/v1/namespaces/default/pods/web");
        use http::Method;
        assert_eq!(list.verb(&Method::GET, false), Some(Verb::List));
        assert_eq!(list.verb(&Method::GET, true), Some(Verb::Watch));
        assert_eq!(one.verb(&Method::GET, false), Some(Verb::Get));
        assert_eq!(list.verb(&Method::POST, false), Some(Verb::Create));
        assert_eq!(one.verb(&Method::PUT, false), Some(Verb::Update));
        assert_eq!(one.verb(&Method::PATCH, false), Some(Verb::Patch));
        assert_eq!(one.verb(&Method::DELETE, false), Some(Verb::Delete));
        assert_eq!(
            list.verb(&Method::DELETE, false),
            Some(Verb::DeleteCollection)
        );
        assert_eq!(one.verb(&Method::OPTIONS, false), None);
    }
}
