//! Services, Endpoints and EndpointSlices.

use serde_json::{json, Value};

use super::{assert_error, assert_error_starting, assert_valid, check, with};

fn service() -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
}

#[test]
fn services() {
    assert_valid("Service", &service());
    assert_error_starting("Service", &with(&service(), "/metadata/name", json!("1web")), "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character");
    assert_error(
        "Service",
        &with(&service(), "/spec/ports", json!([])),
        "spec.ports: Required value",
    );
    let headless = with(
        &with(&service(), "/spec/ports", json!([])),
        "/spec/clusterIP",
        json!("None"),
    );
    assert_valid("Service", &headless);
    assert_error(
        "Service",
        &with(&service(), "/spec/ports/0/port", json!(0)),
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    assert_error("Service", &with(&service(), "/spec/ports/0/protocol", json!("ICMP")), "spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
    assert_error(
        "Service",
        &with(&service(), "/spec/ports/0/targetPort", json!(70000)),
        "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_error(
        "Service",
        &with(&service(), "/spec/ports/0/nodePort", json!(30080)),
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    );
    let two = with(
        &service(),
        "/spec/ports",
        json!([{"port": 80}, {"port": 443, "name": "https"}]),
    );
    assert_error("Service", &two, "spec.ports[0].name: Required value");
    assert_error_starting(
        "Service",
        &with(&service(), "/spec/selector", json!({"app": "a b"})),
        "spec.selector: Invalid value: \"a b\"",
    );
    assert_error("Service", &with(&service(), "/spec/type", json!("Magic")), "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"");
    assert_error("Service", &with(&service(), "/spec/clusterIP", json!("10.0.0.300")), "spec.clusterIP: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    assert_error("Service", &with(&service(), "/spec/sessionAffinity", json!("Sticky")), "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"");
    assert_error("Service", &with(&service(), "/spec/externalTrafficPolicy", json!("Local")), "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services");
    let external = json!({"metadata": {"name": "db", "namespace": "default"}, "spec": {"type": "ExternalName"}});
    assert_error("Service", &external, "spec.externalName: Required value");
    assert_valid(
        "Service",
        &with(&external, "/spec/externalName", json!("db.example.com.")),
    );
}

#[test]
fn service_cluster_ip_is_immutable_once_set() {
    let old = with(&service(), "/spec/clusterIP", json!("10.96.0.10"));
    assert!(check(
        "Service",
        &with(&old, "/spec/ports/0/port", json!(81)),
        Some(&old)
    )
    .is_empty());
    assert_eq!(
        check(
            "Service",
            &with(&old, "/spec/clusterIP", json!("10.96.0.11")),
            Some(&old)
        ),
        vec!["spec.clusterIPs[0]: Invalid value: [\"10.96.0.11\"]: may not change once set"]
    );
    assert!(
        check("Service", &old, Some(&service())).is_empty(),
        "an unset cluster IP may be filled in"
    );
}

fn endpoints() -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.1.0.5", "nodeName": "node-a"}], "ports": [{"port": 8080}]}]})
}

#[test]
fn endpoints_and_slices() {
    assert_valid("Endpoints", &endpoints());
    assert_error("Endpoints", &with(&endpoints(), "/subsets/0/addresses/0/ip", json!("x")), "subsets[0].addresses[0].ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
    assert_error("Endpoints", &with(&endpoints(), "/subsets/0/addresses/0/ip", json!("127.0.0.1")), "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)");
    assert_error(
        "Endpoints",
        &with(&endpoints(), "/subsets/0/addresses", json!([])),
        "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
    );
    let slice = json!({"metadata": {"name": "web-abc", "namespace": "default"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": true}}], "ports": [{"name": "http", "port": 8080}]});
    assert_valid("EndpointSlice", &slice);
    assert_error(
        "EndpointSlice",
        &with(&slice, "/addressType", json!("IPv5")),
        "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
    );
    assert_error(
        "EndpointSlice",
        &with(&slice, "/endpoints/0/addresses/0", json!("fe80::1")),
        "endpoints[0].addresses[0]: Invalid value: \"fe80::1\": must be a valid IPv4 address",
    );
    assert_error(
        "EndpointSlice",
        &with(&slice, "/endpoints/0/addresses", json!([])),
        "endpoints[0].addresses: Required value: must contain at least 1 address",
    );
    assert_error(
        "EndpointSlice",
        &with(&slice, "/ports/0/port", json!(0)),
        "ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    let v6 = with(
        &with(&slice, "/addressType", json!("IPv6")),
        "/endpoints/0/addresses/0",
        json!("fd00::5"),
    );
    assert_eq!(
        check("EndpointSlice", &v6, Some(&slice)),
        vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
    );
}
