//! The Endpoints and EndpointSlice controllers: for each Service with a
//! selector, the addresses of the pods it selects.
//!
//! As Kubernetes' endpoints controller (pkg/controller/endpoint/) and
//! EndpointSlice controller (pkg/controller/endpointslice/):
//! - a pod with an IP that is not finished counts; ready pods go into
//!   `addresses`, others into `notReadyAddresses` (all into `addresses` with
//!   `publishNotReadyAddresses`); pods being deleted are left out of
//!   Endpoints but stay in EndpointSlices with `terminating: true`;
//! - a Service port's named `targetPort` is resolved per pod from its
//!   containers' ports, so pods resolving to different numbers land in
//!   different subsets (and slices); a pod that cannot resolve it is left out
//!   of that port's subset;
//! - EndpointSlices are grouped by port set and address family, at most
//!   [`MAX_ENDPOINTS_PER_SLICE`] endpoints each, named deterministically
//!   from the Service and port set so a restarted controller updates rather
//!   than duplicates them, and owned by the Service.
//!
//! # Caveats
//! No topology hints, zones or `hostname`/`subdomain`; no EndpointSlice
//! mirroring for selector-less Services; a Service whose selector is empty or
//! absent is left alone, as Kubernetes does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_api::labels::LabelSelector;

use crate::pods;

pub(crate) mod controller;
pub mod slices;

pub use slices::{MANAGED_BY, MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME};

/// What one reconcile of a Service's endpoints writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The Endpoints object as it should be.
    pub endpoints: Endpoints,
    /// The EndpointSlices as they should be.
    pub slices: Vec<EndpointSlice>,
    /// Managed EndpointSlices of this Service to delete.
    pub delete_slices: Vec<String>,
}

/// One pod as an endpoint: its address and the ports it resolves.
pub(crate) struct PodEndpoint<'a> {
    pub(crate) pod: &'a Pod,
    pub(crate) ip: String,
    pub(crate) ready: bool,
    pub(crate) terminating: bool,
    pub(crate) ports: Vec<EndpointPort>,
}

/// Reconciles the endpoints of `service` from the pods of its namespace.
/// `None` when the Service has no selector (its endpoints are not ours).
pub fn reconcile(
    service: &Service,
    namespace_pods: &[&Pod],
    existing_slices: &[&EndpointSlice],
) -> Option<Plan> {
    let spec = service.spec.as_ref()?;
    let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let selector = LabelSelector::from_map(selector);
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let mut endpoints: Vec<PodEndpoint> = namespace_pods
        .iter()
        .filter(|p| selector.matches(crate::meta::labels(&p.metadata)))
        .filter_map(|p| pod_endpoint(p, spec.ports.as_deref().unwrap_or(&[]), publish_not_ready))
        // A pod that resolves none of the Service's ports serves nothing.
        .filter(|e| !e.ports.is_empty() || spec.ports.as_ref().is_none_or(|p| p.is_empty()))
        .collect();
    endpoints.sort_by(|a, b| {
        a.ip.cmp(&b.ip)
            .then(a.pod.metadata.name.cmp(&b.pod.metadata.name))
    });
    let slices = slices::desired(service, &endpoints);
    let wanted: Vec<&str> = slices
        .iter()
        .filter_map(|s| s.metadata.name.as_deref())
        .collect();
    let delete_slices = existing_slices
        .iter()
        .filter(|s| slices::is_managed_for(s, service))
        .filter_map(|s| s.metadata.name.clone())
        .filter(|n| !wanted.contains(&n.as_str()))
        .collect();
    Some(Plan {
        endpoints: endpoints_object(service, &endpoints),
        slices,
        delete_slices,
    })
}

fn pod_endpoint<'a>(
    pod: &'a Pod,
    ports: &[ServicePort],
    publish_not_ready: bool,
) -> Option<PodEndpoint<'a>> {
    let ip = pod
        .status
        .as_ref()?
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())?;
    if pods::is_finished(pod) {
        return None;
    }
    let ports = ports
        .iter()
        .filter_map(|port| {
            Some(EndpointPort {
                name: port.name.clone().filter(|n| !n.is_empty()),
                port: resolve_port(pod, port)?,
                protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: port.app_protocol.clone(),
            })
        })
        .collect();
    Some(PodEndpoint {
        pod,
        ip,
        ready: publish_not_ready || pods::is_ready(pod),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        ports,
    })
}

/// The container port a Service port reaches on `pod`, as `FindPort`: a
/// number as it is, a name looked up among the pod's container ports.
pub fn resolve_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name)
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// A reference to the pod behind an address.
pub(crate) fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

fn endpoints_object(service: &Service, endpoints: &[PodEndpoint]) -> Endpoints {
    // Subsets are keyed by the port list each pod resolves.
    let mut subsets: BTreeMap<String, EndpointSubset> = BTreeMap::new();
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    for endpoint in endpoints {
        if endpoint.terminating && !publish_not_ready {
            continue;
        }
        let key = serde_json::to_string(&endpoint.ports).unwrap_or_default();
        let subset = subsets.entry(key).or_insert_with(|| EndpointSubset {
            ports: Some(endpoint.ports.clone()).filter(|p| !p.is_empty()),
            ..Default::default()
        });
        let address = EndpointAddress {
            ip: endpoint.ip.clone(),
            node_name: endpoint.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(endpoint.pod)),
            hostname: None,
        };
        let list = if endpoint.ready {
            subset.addresses.get_or_insert_with(Vec::new)
        } else {
            subset.not_ready_addresses.get_or_insert_with(Vec::new)
        };
        list.push(address);
    }
    Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: service.metadata.labels.clone(),
            ..Default::default()
        },
        subsets: Some(subsets.into_values().collect()).filter(|s: &Vec<_>| !s.is_empty()),
    }
}

/// Whether two Endpoints objects say the same (labels and subsets).
pub fn same_endpoints(a: &Endpoints, b: &Endpoints) -> bool {
    a.subsets.clone().unwrap_or_default() == b.subsets.clone().unwrap_or_default()
        && a.metadata.labels.clone().unwrap_or_default()
            == b.metadata.labels.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
