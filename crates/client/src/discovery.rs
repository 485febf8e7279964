//! [`Discovery`]: what the API server serves, and which resource a name means.
//!
//! A client that does not know its kinds at compile time — kubectl, a garbage
//! collector — first asks the server what it serves, then addresses objects
//! through an `Api<DynamicObject>` over the [`ApiResource`] found here. Names
//! resolve as kubectl resolves them: a resource's plural, singular (its kind
//! in lower case), kind or short names, in any case, optionally qualified
//! with the group (`deployments.apps`, `deploy.apps`); manifests name theirs
//! by `apiVersion` and `kind` ([`Discovery::resolve_gvk`]).
//!
//! # Caveats
//! skiff answers discovery in one call, not per group as Kubernetes'
//! `/apis` does; one version per group is served, so there is no preferred
//! version to choose.

use kube_core::discovery::{ApiCapabilities, Scope};
use kube_core::{ApiResource, GroupVersionKind};

use crate::error::Error;
use crate::Client;

/// One served resource, as discovery answers it.
#[derive(Clone, Debug)]
pub struct Served {
    /// The group, version, kind and plural, for an `Api<DynamicObject>`.
    pub resource: ApiResource,
    /// Its scope, verbs and subresources.
    pub capabilities: ApiCapabilities,
    /// Short names kubectl accepts (`po`, `deploy`).
    pub short_names: Vec<String>,
}

impl Served {
    /// Whether its objects live in a namespace.
    pub fn namespaced(&self) -> bool {
        self.capabilities.scope == Scope::Namespaced
    }

    /// The singular name: the kind in lower case, as for every resource
    /// skiff serves.
    pub fn singular(&self) -> String {
        self.resource.kind.to_ascii_lowercase()
    }

    fn from_proto(served: skiff_proto::api::ApiResource) -> Served {
        let gvk = GroupVersionKind::gvk(&served.group, &served.version, &served.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &served.resource);
        let scope = if served.namespaced {
            Scope::Namespaced
        } else {
            Scope::Cluster
        };
        let subresources = served
            .subresources
            .iter()
            .map(|sub| {
                let plural = format!("{}/{sub}", served.resource);
                let capabilities = ApiCapabilities {
                    scope: scope.clone(),
                    subresources: Vec::new(),
                    operations: Vec::new(),
                };
                (
                    ApiResource::from_gvk_with_plural(&gvk, &plural),
                    capabilities,
                )
            })
            .collect();
        Served {
            resource,
            capabilities: ApiCapabilities {
                scope,
                subresources,
                operations: served.verbs,
            },
            short_names: served.short_names,
        }
    }

    fn answers_to(&self, name: &str, group: Option<&str>) -> bool {
        group.is_none_or(|g| g == self.resource.group)
            && (name == self.resource.plural
                || name == self.singular()
                || self.short_names.iter().any(|s| s == name))
    }
}

/// The resources one API server serves, in the order it lists them.
#[derive(Clone, Debug)]
pub struct Discovery {
    served: Vec<Served>,
}

impl Discovery {
    /// Asks the server what it serves.
    pub async fn run(client: &Client) -> Result<Discovery, Error> {
        let served = client.discovery().await?;
        Ok(Discovery::from_served(served))
    }

    /// Discovery from a server's answer, already fetched.
    pub fn from_served(served: Vec<skiff_proto::api::ApiResource>) -> Discovery {
        Discovery {
            served: served.into_iter().map(Served::from_proto).collect(),
        }
    }

    /// Every served resource.
    pub fn resources(&self) -> &[Served] {
        &self.served
    }

    /// The resource a user means by `typed` (`po`, `Pods`, `deployments.apps`).
    pub fn resolve(&self, typed: &str) -> Option<&Served> {
        let typed = typed.to_ascii_lowercase();
        let (name, group) = match typed.split_once('.') {
            Some((name, group)) => (name, Some(group)),
            None => (typed.as_str(), None),
        };
        self.served.iter().find(|r| r.answers_to(name, group))
    }

    /// The resource whose objects have this group, version and kind, as
    /// kube-rs's `Discovery::resolve_gvk`.
    pub fn resolve_gvk(&self, gvk: &GroupVersionKind) -> Option<(ApiResource, ApiCapabilities)> {
        self.served
            .iter()
            .find(|r| {
                r.resource.group == gvk.group
                    && r.resource.version == gvk.version
                    && r.resource.kind == gvk.kind
            })
            .map(|r| (r.resource.clone(), r.capabilities.clone()))
    }
}

impl Client {
    /// Asks the server what it serves: [`Discovery::run`].
    pub async fn discover(&self) -> Result<Discovery, Error> {
        Discovery::run(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The discovery answer of a server serving what skiff serves.
    fn skiff() -> Discovery {
        Discovery::from_served(skiff_apiserver::grpc::discovery_resources())
    }

    #[test]
    fn names_resolve_as_kubectl_resolves_them() {
        let discovery = skiff();
        for typed in ["pods", "pod", "po", "Pods", "PO"] {
            let pods = discovery.resolve(typed).expect(typed);
            assert_eq!(pods.resource.plural, "pods", "{typed}");
            assert!(pods.namespaced());
        }
        let deployments = discovery.resolve("deploy.apps").expect("deploy.apps");
        assert_eq!(deployments.resource.api_version, "apps/v1");
        assert!(discovery.resolve("deploy.batch").is_none());
        assert!(discovery.resolve("widgets").is_none());
        assert!(!discovery.resolve("nodes").expect("nodes").namespaced());
    }

    #[test]
    fn kinds_resolve_by_group_version_and_kind() {
        let discovery = skiff();
        let gvk = GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease");
        let (lease, capabilities) = discovery.resolve_gvk(&gvk).expect("Lease");
        assert_eq!(lease.plural, "leases");
        assert_eq!(capabilities.scope, Scope::Namespaced);
        let (pods, capabilities) = discovery
            .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod"))
            .expect("Pod");
        assert_eq!(pods.api_version, "v1");
        let subresources: Vec<_> = capabilities
            .subresources
            .iter()
            .map(|(r, _)| r.plural.as_str())
            .collect();
        assert!(subresources.contains(&"pods/binding"), "{subresources:?}");
        assert!(discovery
            .resolve_gvk(&GroupVersionKind::gvk("", "v2", "Pod"))
            .is_none());
    }
}
