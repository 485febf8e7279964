use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerPort, ServiceSpec};

use super::*;
use crate::fixtures::{at, pod, Phase, PodBuilder};

fn service(target: IntOrString) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("svc-uid".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([("app".into(), "web".into())])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(target),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn serving(pod: PodBuilder, http_port: i32) -> Pod {
    let mut pod = pod.build();
    pod.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
        name: Some("http".into()),
        container_port: http_port,
        protocol: Some("TCP".into()),
        ..Default::default()
    }]);
    pod
}

fn ips(addresses: &Option<Vec<EndpointAddress>>) -> Vec<String> {
    addresses.iter().flatten().map(|a| a.ip.clone()).collect()
}

#[test]
fn ready_pods_are_addresses_and_the_rest_not_ready_addresses() {
    let a = serving(pod("a").ip("10.0.0.2").ready_at(at(0)), 8080);
    let b = serving(pod("b").ip("10.0.0.1").phase(Phase::Running), 8080);
    let no_ip = serving(pod("c").ready_at(at(0)), 8080);
    let done = serving(pod("d").ip("10.0.0.9").exited(0, at(1)), 8080);
    let other = serving(
        pod("e")
            .ip("10.0.0.5")
            .labels(&[("app", "db")])
            .ready_at(at(0)),
        8080,
    );
    let plan = reconcile(
        &service(IntOrString::Int(8080)),
        &[&a, &b, &no_ip, &done, &other],
        &[],
    )
    .unwrap();
    let subsets = plan.endpoints.subsets.unwrap();
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), ["10.0.0.2"]);
    assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.1"]);
    assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
}

#[test]
fn named_target_ports_resolve_per_pod_into_separate_subsets() {
    let a = serving(pod("a").ip("10.0.0.1").ready_at(at(0)), 8080);
    let b = serving(pod("b").ip("10.0.0.2").ready_at(at(0)), 9090);
    let unnamed = pod("c").ip("10.0.0.3").ready_at(at(0)).build();
    let plan = reconcile(
        &service(IntOrString::String("http".into())),
        &[&a, &b, &unnamed],
        &[],
    )
    .unwrap();
    let subsets = plan.endpoints.subsets.unwrap();
    let ports: Vec<i32> = subsets
        .iter()
        .map(|s| s.ports.as_ref().unwrap()[0].port)
        .collect();
    assert_eq!(ports, [8080, 9090]);
    assert_eq!(plan.slices.len(), 2, "one slice per port set");
}

#[test]
fn terminating_pods_leave_endpoints_but_stay_in_slices_as_terminating() {
    let going = serving(pod("a").ip("10.0.0.1").ready_at(at(0)).deleting(at(5)), 80);
    let plan = reconcile(&service(IntOrString::Int(80)), &[&going], &[]).unwrap();
    assert_eq!(plan.endpoints.subsets, None);
    let conditions = plan.slices[0].endpoints[0].conditions.clone().unwrap();
    assert_eq!(conditions.terminating, Some(true));
    assert_eq!(conditions.ready, Some(false));
    assert_eq!(conditions.serving, Some(true));
}

#[test]
fn slices_hold_at_most_a_hundred_endpoints_and_stale_ones_are_deleted() {
    let pods: Vec<Pod> = (0..250)
        .map(|i| {
            serving(
                pod(&format!("p{i}"))
                    .ip(&format!("10.1.{}.{}", i / 200, i % 200))
                    .ready_at(at(0)),
                80,
            )
        })
        .collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    let svc = service(IntOrString::Int(80));
    let plan = reconcile(&svc, &refs, &[]).unwrap();
    let sizes: Vec<usize> = plan.slices.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let slice = &plan.slices[0];
    assert_eq!(
        slice.metadata.owner_references.as_ref().unwrap()[0].uid,
        "svc-uid"
    );
    let again = reconcile(&svc, &refs, &[]).unwrap();
    assert_eq!(
        again.slices, plan.slices,
        "names and contents are deterministic"
    );
    let existing: Vec<&EndpointSlice> = plan.slices.iter().collect();
    let fewer = reconcile(&svc, &refs[..10], &existing).unwrap();
    assert_eq!(fewer.delete_slices.len(), 2);
}

#[test]
fn services_without_a_selector_are_not_managed() {
    let mut svc = service(IntOrString::Int(80));
    svc.spec.as_mut().unwrap().selector = None;
    assert!(reconcile(&svc, &[], &[]).is_none());
}
