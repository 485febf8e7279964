//! Services of each type, Endpoints and EndpointSlices.

use serde_json::{json, Value};

use super::{cells, default_cells, meta, names, wide_cells, CREATED};

fn service(spec: Value) -> Value {
    json!({"metadata": meta("api"), "spec": spec})
}

fn shown(svc: &Value) -> Value {
    Value::from(default_cells("Service", svc, CREATED))
}

#[test]
fn services_show_their_type_addresses_and_ports() {
    assert_eq!(
        names("Service", 0),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age"
        ]
    );
    let cluster_ip = service(json!({"type": "ClusterIP", "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"], "ports": [{"port": 53, "protocol": "UDP"}],
        "selector": {"k8s-app": "dns", "tier": "a"}}));
    assert_eq!(
        shown(&cluster_ip),
        json!(["api", "ClusterIP", "10.96.0.10", "<none>", "53/UDP", "0s"])
    );
    assert_eq!(
        Value::from(wide_cells("Service", &cluster_ip, CREATED)),
        json!(["k8s-app=dns,tier=a"])
    );
    let node_port = service(json!({"type": "NodePort", "clusterIP": "10.96.0.11",
        "externalIPs": ["192.0.2.1"],
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443}]}));
    assert_eq!(
        shown(&node_port),
        json!([
            "api",
            "NodePort",
            "10.96.0.11",
            "192.0.2.1",
            "80:30080/TCP,443/TCP",
            "0s"
        ])
    );
    let headless = service(json!({"clusterIP": "None"}));
    assert_eq!(
        shown(&headless),
        json!(["api", "ClusterIP", "None", "<none>", "<none>", "0s"])
    );
    assert_eq!(wide_cells("Service", &headless, CREATED), ["<none>"]);
}

#[test]
fn load_balancers_show_their_ingress_or_pending() {
    let pending = service(json!({"type": "LoadBalancer", "clusterIP": "10.96.0.12"}));
    assert_eq!(shown(&pending)[3], "<pending>");
    let mut ready = pending.clone();
    ready["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.5"},
                                                          {"hostname": "lb.example.com"}]}});
    ready["spec"]["externalIPs"] = json!(["192.0.2.9"]);
    assert_eq!(shown(&ready)[3], "203.0.113.5,lb.example.com,192.0.2.9");
}

#[test]
fn external_names_show_the_dns_name() {
    let external = service(json!({"type": "ExternalName", "externalName": "db.example.com"}));
    assert_eq!(
        shown(&external),
        json!([
            "api",
            "ExternalName",
            "<none>",
            "db.example.com",
            "<none>",
            "0s"
        ])
    );
}

#[test]
fn endpoints_show_three_addresses_port_by_port_and_count_the_rest() {
    let ep = json!({"metadata": meta("api"), "subsets": [{
        "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
        "ports": [{"port": 80}, {"port": 443}]}]});
    assert_eq!(
        cells("Endpoints", &ep, CREATED)[1],
        "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more..."
    );
    let headless = json!({"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
    assert_eq!(cells("Endpoints", &headless, CREATED)[1], "10.0.0.1");
    let empty = json!({"metadata": meta("e")});
    assert_eq!(cells("Endpoints", &empty, CREATED)[1], "<none>");
}

#[test]
fn endpoint_slices_show_their_ports_and_addresses() {
    let slice = json!({"metadata": meta("api-x7k2p"), "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}, {"name": "dns"}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
    assert_eq!(
        Value::from(cells("EndpointSlice", &slice, CREATED)),
        json!(["api-x7k2p", "IPv4", "80,dns", "10.0.0.1,10.0.0.2", "0s"])
    );
    let empty = json!({"metadata": meta("e"), "addressType": "IPv4"});
    assert_eq!(
        cells("EndpointSlice", &empty, CREATED)[2..4],
        ["<unset>", "<unset>"]
    );
}
