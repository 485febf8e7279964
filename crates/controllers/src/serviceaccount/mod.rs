//! The ServiceAccount controller: every namespace has a ServiceAccount named
//! `default`, as Kubernetes' `ServiceAccountsController`
//! (pkg/controller/serviceaccount/serviceaccounts_controller.go).
//!
//! # Caveats
//! No tokens: skiff has no authentication yet, so no token Secrets or
//! projected tokens are made.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) mod controller;

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

/// The ServiceAccount to create in `namespace`, if it lacks `default` and is
/// not being deleted.
pub fn reconcile(namespace: &Namespace, accounts: &[&ServiceAccount]) -> Option<ServiceAccount> {
    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    let present = accounts
        .iter()
        .any(|a| a.metadata.name.as_deref() == Some(DEFAULT));
    if terminating || present {
        return None;
    }
    Some(ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            namespace: namespace.metadata.name.clone(),
            ..Default::default()
        },
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    fn namespace(phase: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("team".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(NamespaceStatus {
                phase: Some(phase.into()),
                conditions: None,
            }),
        }
    }

    #[test]
    fn a_namespace_without_default_gets_one_unless_it_is_terminating() {
        let made = reconcile(&namespace("Active"), &[]).unwrap();
        assert_eq!(made.metadata.name.as_deref(), Some("default"));
        assert_eq!(made.metadata.namespace.as_deref(), Some("team"));
        assert!(reconcile(&namespace("Active"), &[&made]).is_none());
        assert!(reconcile(&namespace("Terminating"), &[]).is_none());
    }
}
