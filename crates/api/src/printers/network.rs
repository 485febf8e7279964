//! Services, Endpoints and EndpointSlices, as Kubernetes' `printService`,
//! `printEndpoints` and `printEndpointSlice`.
//!
//! A Service's EXTERNAL-IP depends on its type: its `externalIPs` for
//! ClusterIP and NodePort, the load balancer's ingress (or `<pending>`) for
//! LoadBalancer, and the DNS name for ExternalName. Endpoints show three
//! addresses and count the rest (`+ 2 more...`).

use serde_json::Value;

use super::object::{int, items, label_list, or_none, text};
use super::{created, name, Column, Printer, AGE, NAME};

const SERVICE: &[Column] = &[
    NAME,
    Column::new("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer."),
    Column::new("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
    Column::new("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
    Column::new("Port(s)", "string", "The list of ports that are exposed by this service."),
    AGE,
    Column::new("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.").wide(),
];

const ENDPOINTS: &[Column] = &[
    NAME,
    Column::new(
        "Endpoints",
        "string",
        "Endpoints is the list of addresses and ports, as IP:port.",
    ),
    AGE,
];

const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    Column::new(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    Column::new(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    Column::new(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    AGE,
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (_, fn(&Value, i64) -> Vec<Value>) = match kind {
        "Service" => (SERVICE, service),
        "Endpoints" => (ENDPOINTS, endpoints),
        "EndpointSlice" => (ENDPOINT_SLICE, endpoint_slice),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

fn service(svc: &Value, now: i64) -> Vec<Value> {
    let kind = match text(svc, &["spec", "type"]) {
        kind if kind.is_empty() => "ClusterIP".to_string(),
        kind => kind,
    };
    let cluster_ip = items(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| text(svc, &["spec", "clusterIP"]));
    let ports: Vec<String> = items(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = match text(p, &["protocol"]) {
                p if p.is_empty() => "TCP".to_string(),
                p => p,
            };
            match int(p, &["nodePort"]) {
                0 => format!("{}/{protocol}", int(p, &["port"])),
                node_port => format!("{}:{node_port}/{protocol}", int(p, &["port"])),
            }
        })
        .collect();
    let external = external_ip(svc, &kind);
    vec![
        name(svc),
        kind.into(),
        or_none(cluster_ip).into(),
        external.into(),
        or_none(ports.join(",")).into(),
        created(svc, now),
        or_none(label_list(svc, &["spec", "selector"])).into(),
    ]
}

fn external_ip(svc: &Value, kind: &str) -> String {
    let external: Vec<String> = items(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(|ip| ip.as_str().map(str::to_string))
        .collect();
    match kind {
        "ClusterIP" | "NodePort" => or_none(external.join(",")),
        "LoadBalancer" => {
            let mut shown: Vec<String> = items(svc, &["status", "loadBalancer", "ingress"])
                .iter()
                .map(|i| match text(i, &["ip"]) {
                    ip if ip.is_empty() => text(i, &["hostname"]),
                    ip => ip,
                })
                .filter(|a| !a.is_empty())
                .collect();
            shown.extend(external);
            if shown.is_empty() {
                "<pending>".into()
            } else {
                shown.join(",")
            }
        }
        "ExternalName" => text(svc, &["spec", "externalName"]),
        _ => "<unknown>".into(),
    }
}

/// Endpoints' addresses as `ip:port`, port by port, three at most.
fn endpoints(object: &Value, now: i64) -> Vec<Value> {
    let subsets = items(object, &["subsets"]);
    let shown = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut all = Vec::new();
        for subset in subsets {
            let addresses: Vec<String> = items(subset, &["addresses"])
                .iter()
                .map(|a| text(a, &["ip"]))
                .collect();
            match items(subset, &["ports"]) {
                // A headless service may have no ports.
                [] => all.extend(addresses),
                ports => {
                    for port in ports {
                        let port = int(port, &["port"]);
                        all.extend(addresses.iter().map(|ip| host_port(ip, port)));
                    }
                }
            }
        }
        first_three(all, "")
    };
    vec![name(object), shown.into(), created(object, now)]
}

/// `ip:port`, with an IPv6 address in brackets (Go's `net.JoinHostPort`).
fn host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The first three entries joined, and how many more there are; `empty`
/// when there are none.
fn first_three(all: Vec<String>, empty: &str) -> String {
    match all.len() {
        0 => empty.to_string(),
        n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
        _ => all.join(","),
    }
}

fn endpoint_slice(slice: &Value, now: i64) -> Vec<Value> {
    let ports: Vec<String> = items(slice, &["ports"])
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(port) => port.to_string(),
            None => match text(p, &["name"]) {
                name if name.is_empty() => "*".to_string(),
                name => name,
            },
        })
        .collect();
    let addresses: Vec<String> = items(slice, &["endpoints"])
        .iter()
        .flat_map(|e| items(e, &["addresses"]))
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    vec![
        name(slice),
        text(slice, &["addressType"]).into(),
        first_three(ports, "<unset>").into(),
        first_three(addresses, "<unset>").into(),
        created(slice, now),
    ]
}
