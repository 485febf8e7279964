//! Services and their endpoints (Kubernetes' `ValidateService`,
//! `ValidateEndpoints` and discovery's `ValidateEndpointSlice`).
//!
//! A Service names a stable virtual IP and ports; its selector picks the
//! pods whose addresses the endpoints controller writes into Endpoints and
//! EndpointSlices.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::meta::{self, immutable, NameRule};
use super::{names, pod, FieldError};

const VALID_IP_MESSAGE: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// Validates a Service on create or update.
pub(crate) fn validate_service(service: &Service, old: Option<&Service>) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&service.metadata, true, NameRule::Dns1035);
    let spec = service.spec.clone().unwrap_or_default();
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    match service_type {
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(FieldError::not_supported(
            "spec.type",
            &json!(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    validate_addresses(&spec, service_type, &mut errs);
    validate_ports(&spec, service_type, &mut errs);
    errs.extend(meta::validate_labels(
        spec.selector.as_ref(),
        "spec.selector",
    ));
    validate_session_affinity(&spec, &mut errs);
    validate_traffic_policies(&spec, service_type, &mut errs);
    if let Some(old) = old {
        validate_service_update(service, &spec, service_type, old, &mut errs);
    }
    errs
}

/// `spec.clusterIP(s)` and, for an ExternalName Service, `spec.externalName`.
fn validate_addresses(spec: &ServiceSpec, service_type: &str, errs: &mut Vec<FieldError>) {
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or_default();
    let headless = cluster_ip == "None";
    if service_type == "ExternalName" {
        if !cluster_ip.is_empty() {
            errs.push(FieldError::forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
        let external_name = spec.external_name.as_deref().unwrap_or_default();
        if external_name.is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        } else {
            let trimmed = external_name.strip_suffix('.').unwrap_or(external_name);
            for msg in names::dns1123_subdomain(trimmed) {
                errs.push(FieldError::invalid(
                    "spec.externalName",
                    &json!(trimmed),
                    msg,
                ));
            }
        }
    } else if !cluster_ip.is_empty() && !headless && cluster_ip.parse::<IpAddr>().is_err() {
        errs.push(FieldError::invalid(
            "spec.clusterIP",
            &json!(cluster_ip),
            VALID_IP_MESSAGE,
        ));
    }
    if let Some(first) = spec.cluster_ips.as_ref().and_then(|ips| ips.first()) {
        if !cluster_ip.is_empty() && first != cluster_ip {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                &json!(spec.cluster_ips),
                "first value must match `clusterIP`",
            ));
        }
    }
}

/// `spec.ports`: named when there are several, unique, valid numbers.
fn validate_ports(spec: &ServiceSpec, service_type: &str, errs: &mut Vec<FieldError>) {
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let ports = spec.ports.clone().unwrap_or_default();
    if ports.is_empty() && !headless && service_type != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut port_names = BTreeSet::new();
    let mut port_keys = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        validate_port(port, i, ports.len(), service_type, &mut port_names, errs);
        let protocol = port.protocol.clone().unwrap_or_default();
        if !port_keys.insert((port.port, protocol.clone())) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}]"),
                &json!({"port": port.port, "protocol": protocol}),
            ));
        }
    }
}

/// A port of a Service or an Endpoints subset at `path`, one of
/// `port_count`: its name (a DNS label, required when there are several),
/// number and protocol.
fn validate_named_port(
    path: &str,
    (name, number, protocol): (&str, i32, Option<&str>),
    port_count: usize,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        if port_count > 1 {
            errs.push(FieldError::required(format!("{path}.name"), ""));
        }
    } else {
        for msg in names::dns1123_label(name) {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                &json!(name),
                msg,
            ));
        }
    }
    for msg in names::port_number(i64::from(number)) {
        errs.push(FieldError::invalid(
            format!("{path}.port"),
            &json!(number),
            msg,
        ));
    }
    errs.extend(pod::validate_protocol(
        protocol,
        &format!("{path}.protocol"),
    ));
    errs
}

/// `spec.ports[i]`, one of `port_count`.
fn validate_port<'a>(
    port: &'a ServicePort,
    i: usize,
    port_count: usize,
    service_type: &str,
    port_names: &mut BTreeSet<&'a str>,
    errs: &mut Vec<FieldError>,
) {
    let path = format!("spec.ports[{i}]");
    let name = port.name.as_deref().unwrap_or_default();
    errs.extend(validate_named_port(
        &path,
        (name, port.port, port.protocol.as_deref()),
        port_count,
    ));
    if !name.is_empty() && !port_names.insert(name) {
        errs.push(FieldError::duplicate(format!("{path}.name"), &json!(name)));
    }
    match &port.target_port {
        Some(IntOrString::Int(target)) => {
            for msg in names::port_number(i64::from(*target)) {
                errs.push(FieldError::invalid(
                    format!("{path}.targetPort"),
                    &json!(target),
                    msg,
                ));
            }
        }
        Some(IntOrString::String(target)) => {
            for msg in names::port_name(target) {
                errs.push(FieldError::invalid(
                    format!("{path}.targetPort"),
                    &json!(target),
                    msg,
                ));
            }
        }
        None => {}
    }
    if let Some(node_port) = port.node_port.filter(|p| *p != 0) {
        if service_type == "ClusterIP" {
            errs.push(FieldError::forbidden(
                format!("{path}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        for msg in names::port_number(i64::from(node_port)) {
            errs.push(FieldError::invalid(
                format!("{path}.nodePort"),
                &json!(node_port),
                msg,
            ));
        }
    }
}

/// `spec.sessionAffinity` and its ClientIP timeout.
fn validate_session_affinity(spec: &ServiceSpec, errs: &mut Vec<FieldError>) {
    match spec.session_affinity.as_deref().unwrap_or("None") {
        "None" => {}
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            if let Some(timeout) = timeout.filter(|t| !(1..=86400).contains(t)) {
                errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    &json!(timeout),
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            &json!(other),
            &["ClientIP", "None"],
        )),
    }
}

/// `spec.externalTrafficPolicy` (only for externally-accessible Services)
/// and `spec.internalTrafficPolicy`.
fn validate_traffic_policies(spec: &ServiceSpec, service_type: &str, errs: &mut Vec<FieldError>) {
    let externally_accessible = matches!(service_type, "NodePort" | "LoadBalancer")
        || (service_type == "ClusterIP"
            && spec
                .external_ips
                .as_ref()
                .is_some_and(|ips| !ips.is_empty()));
    if let Some(policy) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !externally_accessible {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                &json!(policy),
                "may only be set for externally-accessible services",
            ));
        } else if !matches!(policy, "Cluster" | "Local") {
            errs.push(FieldError::not_supported(
                "spec.externalTrafficPolicy",
                &json!(policy),
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(policy) = spec
        .internal_traffic_policy
        .as_deref()
        .filter(|p| !matches!(*p, "" | "Cluster" | "Local"))
    {
        errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            &json!(policy),
            &["Cluster", "Local"],
        ));
    }
}

/// What an update may not change: metadata rules, and the ClusterIP.
fn validate_service_update(
    service: &Service,
    spec: &ServiceSpec,
    service_type: &str,
    old: &Service,
    errs: &mut Vec<FieldError>,
) {
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or_default();
    errs.extend(meta::validate_object_meta_update(
        &service.metadata,
        &old.metadata,
    ));
    let old_ip = old
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or_default();
    // The cluster IP is kept for the Service's life, unless it turns into an
    // ExternalName. (An update that leaves it out must be given the old one
    // by the API server first, as Kubernetes' service registry does.)
    if !old_ip.is_empty() && service_type != "ExternalName" && cluster_ip != old_ip {
        let shown = spec
            .cluster_ips
            .clone()
            .unwrap_or_else(|| vec![cluster_ip.to_string()]);
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            &json!(shown),
            "may not change once set",
        ));
    }
}

/// Validates an Endpoints object on create or update.
pub(crate) fn validate_endpoints(
    endpoints: &Endpoints,
    old: Option<&Endpoints>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&endpoints.metadata, true, NameRule::Subdomain);
    for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
        let path = format!("subsets[{i}]");
        let addresses = subset.addresses.as_deref().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
        if addresses.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                path.clone(),
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (list, items) in [("addresses", addresses), ("notReadyAddresses", not_ready)] {
            for (j, address) in items.iter().enumerate() {
                errs.extend(validate_endpoint_address(
                    address,
                    &format!("{path}.{list}[{j}]"),
                ));
            }
        }
        let ports = subset.ports.as_deref().unwrap_or_default();
        for (j, port) in ports.iter().enumerate() {
            let name = port.name.as_deref().unwrap_or_default();
            errs.extend(validate_named_port(
                &format!("{path}.ports[{j}]"),
                (name, port.port, port.protocol.as_deref()),
                ports.len(),
            ));
        }
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &endpoints.metadata,
            &old.metadata,
        ));
    }
    errs
}

fn validate_endpoint_address(address: &EndpointAddress, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match address.ip.parse::<IpAddr>() {
        Err(_) => errs.push(FieldError::invalid(
            format!("{path}.ip"),
            &json!(address.ip),
            VALID_IP_MESSAGE,
        )),
        Ok(ip) if ip.is_unspecified() => errs.push(FieldError::invalid(
            format!("{path}.ip"),
            &json!(address.ip),
            "may not be unspecified (0.0.0.0)",
        )),
        Ok(ip) if ip.is_loopback() => errs.push(FieldError::invalid(
            format!("{path}.ip"),
            &json!(address.ip),
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        )),
        Ok(_) => {}
    }
    errs.extend(node_and_hostname(
        path,
        address.node_name.as_deref(),
        address.hostname.as_deref(),
    ));
    errs
}

/// An endpoint's optional `nodeName` (a DNS-1123 subdomain) and `hostname`
/// (a DNS-1123 label), as Endpoints and EndpointSlices both check them.
fn node_and_hostname(path: &str, node: Option<&str>, hostname: Option<&str>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(node) = node.filter(|n| !n.is_empty()) {
        for msg in names::dns1123_subdomain(node) {
            errs.push(FieldError::invalid(
                format!("{path}.nodeName"),
                &json!(node),
                msg,
            ));
        }
    }
    if let Some(hostname) = hostname.filter(|h| !h.is_empty()) {
        for msg in names::dns1123_label(hostname) {
            errs.push(FieldError::invalid(
                format!("{path}.hostname"),
                &json!(hostname),
                msg,
            ));
        }
    }
    errs
}

/// Validates an EndpointSlice on create or update.
pub(crate) fn validate_endpoint_slice(
    slice: &EndpointSlice,
    old: Option<&EndpointSlice>,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta(&slice.metadata, true, NameRule::Subdomain);
    let address_type = slice.address_type.as_str();
    match address_type {
        "" => errs.push(FieldError::required("addressType", "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => errs.push(FieldError::not_supported(
            "addressType",
            &json!(other),
            &["FQDN", "IPv4", "IPv6"],
        )),
    }
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        let path = format!("endpoints[{i}]");
        if endpoint.addresses.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.addresses"),
                "must contain at least 1 address",
            ));
        }
        for (j, address) in endpoint.addresses.iter().enumerate() {
            let field = format!("{path}.addresses[{j}]");
            let problem = match address_type {
                "IPv4" => (!address.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()))
                    .then_some("must be a valid IPv4 address"),
                "IPv6" => (!address.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()))
                    .then_some("must be a valid IPv6 address"),
                _ => None,
            };
            if let Some(problem) = problem {
                errs.push(FieldError::invalid(field, &json!(address), problem));
            } else if address_type == "FQDN" {
                for msg in names::dns1123_subdomain(address) {
                    errs.push(FieldError::invalid(field.clone(), &json!(address), msg));
                }
            }
        }
        errs.extend(node_and_hostname(
            &path,
            endpoint.node_name.as_deref(),
            endpoint.hostname.as_deref(),
        ));
    }
    let mut port_names = BTreeSet::new();
    for (i, port) in slice.ports.iter().flatten().enumerate() {
        let path = format!("ports[{i}]");
        let name = port.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(
                    format!("{path}.name"),
                    &json!(name),
                    msg,
                ));
            }
        }
        if !port_names.insert(name) {
            errs.push(FieldError::duplicate(format!("{path}.name"), &json!(name)));
        }
        errs.extend(pod::validate_protocol(
            port.protocol.as_deref(),
            &format!("{path}.protocol"),
        ));
        if let Some(number) = port.port {
            for msg in names::port_number(i64::from(number)) {
                errs.push(FieldError::invalid(
                    format!("{path}.port"),
                    &json!(number),
                    msg,
                ));
            }
        }
    }
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(
            &slice.metadata,
            &old.metadata,
        ));
        errs.extend(immutable(
            "addressType",
            &json!(address_type),
            &json!(old.address_type),
        ));
    }
    errs
}
