//! The EndpointSlices of a Service: endpoints grouped by port set and
//! address family, at most [`MAX_ENDPOINTS_PER_SLICE`] to a slice.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{target_ref, PodEndpoint};

/// The label naming a slice's Service.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Its value for slices this controller manages.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Kubernetes' default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Whether `slice` is one this controller manages for `service`.
pub fn is_managed_for(slice: &EndpointSlice, service: &Service) -> bool {
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    labels.get(SERVICE_NAME) == service.metadata.name.as_ref()
        && labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
}

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The ports and endpoints of one slice group.
type Group = (Vec<SlicePort>, Vec<Endpoint>);

/// The slices `service` should have for `endpoints` (sorted by IP).
pub(crate) fn desired(service: &Service, endpoints: &[PodEndpoint]) -> Vec<EndpointSlice> {
    let mut groups: BTreeMap<(String, &'static str), Group> = BTreeMap::new();
    for e in endpoints {
        let family = if e.ip.contains(':') { "IPv6" } else { "IPv4" };
        let ports: Vec<SlicePort> = e
            .ports
            .iter()
            .map(|p| SlicePort {
                name: p.name.clone(),
                port: Some(p.port),
                protocol: p.protocol.clone(),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let key = serde_json::to_string(&ports).unwrap_or_default();
        let group = groups
            .entry((key, family))
            .or_insert_with(|| (ports, Vec::new()));
        group.1.push(Endpoint {
            addresses: vec![e.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(e.ready && !e.terminating),
                serving: Some(e.ready),
                terminating: Some(e.terminating),
            }),
            node_name: e.pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(e.pod)),
            ..Default::default()
        });
    }
    let service_name = service.metadata.name.clone().unwrap_or_default();
    let prefix: String = service_name.chars().take(40).collect();
    let mut slices = Vec::new();
    for ((key, family), (ports, all)) in groups {
        for (chunk, endpoints) in all.chunks(MAX_ENDPOINTS_PER_SLICE).enumerate() {
            let name = format!("{prefix}-{:08x}-{chunk}", fnv(&format!("{family}/{key}")));
            slices.push(slice(service, &name, family, &ports, endpoints.to_vec()));
        }
    }
    slices
}

fn slice(
    service: &Service,
    name: &str,
    family: &str,
    ports: &[SlicePort],
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        SERVICE_NAME.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![crate::meta::controller_ref(service)]),
            ..Default::default()
        },
        address_type: family.into(),
        endpoints,
        ports: Some(ports.to_vec()),
    }
}

/// Whether two slices say the same (labels, endpoints, ports).
pub fn same_slice(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    crate::meta::same(&a.endpoints, &b.endpoints)
        && crate::meta::same(&a.ports, &b.ports)
        && crate::meta::same(&a.metadata.labels, &b.metadata.labels)
        && a.address_type == b.address_type
}
