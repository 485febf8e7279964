//! Which served resource a typed name means, from the server's discovery list.
//!
//! kubectl asks the server what it serves and matches what the user typed
//! against each resource's plural, singular, kind and short names, any case,
//! optionally qualified with the group (`deployments.apps`, `deploy.apps`).
//! Manifests name their objects by `apiVersion` and `kind` instead.

use skiff_proto::api::ApiResource;

/// The singular name of a resource: its kind in lower case, as every resource
/// skiff serves is named.
pub(crate) fn singular(resource: &ApiResource) -> String {
    resource.kind.to_ascii_lowercase()
}

/// `apiVersion` of a resource's objects: `group/version`, or the version alone
/// for the core group.
pub(crate) fn api_version(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.version.clone()
    } else {
        format!("{}/{}", resource.group, resource.version)
    }
}

/// How kubectl names one object in its messages: `pod/web`,
/// `deployment.apps/web`.
pub(crate) fn object_name(resource: &ApiResource, name: &str) -> String {
    format!("{}/{name}", kind_prefix(resource))
}

/// The singular name, qualified with the group outside the core group
/// (`pod`, `deployment.apps`).
pub(crate) fn kind_prefix(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        singular(resource)
    } else {
        format!("{}.{}", singular(resource), resource.group)
    }
}

/// The resource a user means by `typed`, if the server serves one by that name.
pub(crate) fn by_name<'a>(served: &'a [ApiResource], typed: &str) -> Option<&'a ApiResource> {
    let typed = typed.to_ascii_lowercase();
    let (name, group) = match typed.split_once('.') {
        Some((name, group)) => (name, Some(group)),
        None => (typed.as_str(), None),
    };
    served.iter().find(|r| {
        group.is_none_or(|g| g == r.group)
            && (name == r.resource
                || name == singular(r)
                || r.short_names.iter().any(|s| s == name))
    })
}

/// The resource whose objects carry this `apiVersion` and `kind`.
pub(crate) fn by_kind<'a>(
    served: &'a [ApiResource],
    api_version: &str,
    kind: &str,
) -> Option<&'a ApiResource> {
    served
        .iter()
        .find(|r| r.kind == kind && self::api_version(r) == api_version)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The discovery list of a server serving what skiff serves.
    pub(crate) fn served() -> Vec<ApiResource> {
        skiff_api::resources::RESOURCES
            .iter()
            .map(|r| ApiResource {
                group: r.group.into(),
                version: r.version.into(),
                resource: r.resource.into(),
                kind: r.kind.into(),
                namespaced: r.namespaced,
                short_names: r.short_names.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn every_name_kubectl_accepts_resolves() {
        let served = served();
        for (typed, plural) in [
            ("po", "pods"),
            ("pod", "pods"),
            ("PODS", "pods"),
            ("Pod", "pods"),
            ("svc", "services"),
            ("deploy", "deployments"),
            ("deployment.apps", "deployments"),
            ("deployments.apps", "deployments"),
            ("rs", "replicasets"),
            ("no", "nodes"),
            ("ns", "namespaces"),
            ("cm", "configmaps"),
            ("ev", "events"),
            ("cj", "cronjobs"),
            ("endpoints", "endpoints"),
            ("lease", "leases"),
        ] {
            let found = by_name(&served, typed).unwrap_or_else(|| panic!("{typed} is unknown"));
            assert_eq!(found.resource, plural, "{typed}");
        }
        assert!(by_name(&served, "widgets").is_none());
        assert!(by_name(&served, "deploy.batch").is_none());
    }

    #[test]
    fn manifests_resolve_by_api_version_and_kind() {
        let served = served();
        let deploy = by_kind(&served, "apps/v1", "Deployment").unwrap();
        assert_eq!(object_name(deploy, "web"), "deployment.apps/web");
        let pod = by_kind(&served, "v1", "Pod").unwrap();
        assert_eq!(object_name(pod, "web"), "pod/web");
        assert!(by_kind(&served, "apps/v1", "Pod").is_none());
    }
}
