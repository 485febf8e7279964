//! How kubectl names served resources and their objects, and which served
//! resource a manifest's `apiVersion` and `kind` mean.
//!
//! Typed names (`po`, `deployments.apps`) resolve through
//! [`skiff_client::Discovery::resolve`]; what is left here is kubectl's way of
//! writing a resource in messages: `pod/web`, `deployment.apps "web" deleted`.

use skiff_client::{Discovery, Served};

/// `apiVersion` of a resource's objects: `group/version`, or the version alone
/// for the core group.
pub(crate) fn api_version(resource: &Served) -> String {
    resource.resource.api_version.clone()
}

/// How kubectl names one object in its messages: `pod/web`,
/// `deployment.apps/web`.
pub(crate) fn object_name(resource: &Served, name: &str) -> String {
    format!("{}/{name}", kind_prefix(resource))
}

/// The singular name, qualified with the group outside the core group
/// (`pod`, `deployment.apps`).
pub(crate) fn kind_prefix(resource: &Served) -> String {
    let group = &resource.resource.group;
    if group.is_empty() {
        resource.singular()
    } else {
        format!("{}.{group}", resource.singular())
    }
}

/// The resource whose objects carry this `apiVersion` and `kind`.
pub(crate) fn by_kind<'a>(
    discovery: &'a Discovery,
    api_version: &str,
    kind: &str,
) -> Option<&'a Served> {
    discovery
        .resources()
        .iter()
        .find(|r| r.resource.kind == kind && r.resource.api_version == api_version)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The discovery answer of a server serving what skiff serves.
    pub(crate) fn discovery() -> Discovery {
        Discovery::from_served(skiff_apiserver::grpc::discovery_resources())
    }

    /// The served resource a typed name means.
    pub(crate) fn served(typed: &str) -> Served {
        discovery()
            .resolve(typed)
            .unwrap_or_else(|| panic!("{typed} is unknown"))
            .clone()
    }

    #[test]
    fn every_name_kubectl_accepts_resolves() {
        let discovery = discovery();
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
            let found = discovery
                .resolve(typed)
                .unwrap_or_else(|| panic!("{typed} is unknown"));
            assert_eq!(found.resource.plural, plural, "{typed}");
        }
        assert!(discovery.resolve("widgets").is_none());
        assert!(discovery.resolve("deploy.batch").is_none());
    }

    #[test]
    fn manifests_resolve_by_api_version_and_kind() {
        let discovery = discovery();
        let deploy = by_kind(&discovery, "apps/v1", "Deployment").unwrap();
        assert_eq!(object_name(deploy, "web"), "deployment.apps/web");
        assert_eq!(kind_prefix(deploy), "deployment.apps");
        let pod = by_kind(&discovery, "v1", "Pod").unwrap();
        assert_eq!(object_name(pod, "web"), "pod/web");
        assert_eq!(api_version(pod), "v1");
        assert!(by_kind(&discovery, "apps/v1", "Pod").is_none());
    }
}
