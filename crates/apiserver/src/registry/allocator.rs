//! Service ClusterIPs and NodePorts.
//!
//! Each allocated IP or port is a key of its own, written in the same txn as
//! the Service that takes it, with a compare that the key is absent: two
//! Services can never get the same address, and allocations survive restarts
//! because they live in the store. (Kubernetes keeps one bitmap per range under
//! `/registry/ranges/serviceips` and `/registry/ranges/servicenodeports`; skiff
//! keeps one key per address beneath those prefixes, which needs no lock.)
//!
//! # Caveats
//! IPv4 only; one ClusterIP per Service; no LoadBalancer provisioning.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use serde_json::{json, Value};
use skiff_api::admission::{FieldError, FieldErrorKind};
use skiff_proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RequestOp,
};

use crate::clock::Random;

/// The prefix of allocated ClusterIPs.
pub(crate) const SERVICE_IPS_PREFIX: &str = "/registry/ranges/serviceips/";
/// The prefix of allocated NodePorts.
pub(crate) const NODE_PORTS_PREFIX: &str = "/registry/ranges/servicenodeports/";

/// The ranges Services take addresses from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRanges {
    /// `--service-cluster-ip-range` network address.
    pub cluster_ip_network: Ipv4Addr,
    /// Its prefix length.
    pub cluster_ip_prefix: u8,
    /// `--service-node-port-range`.
    pub node_ports: RangeInclusive<u16>,
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges {
            cluster_ip_network: Ipv4Addr::new(10, 96, 0, 0),
            cluster_ip_prefix: 12,
            node_ports: 30000..=32767,
        }
    }
}

impl ServiceRanges {
    /// Parses a CIDR such as `10.96.0.0/12` into the ClusterIP range.
    pub fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8), String> {
        let (ip, len) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not a CIDR such as 10.96.0.0/12"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| (8..=30).contains(l))
            .ok_or_else(|| format!("prefix length {len:?} must be between 8 and 30"))?;
        Ok((ip, len))
    }

    fn ip_bounds(&self) -> (u32, u32) {
        let mask = u32::MAX << (32 - u32::from(self.cluster_ip_prefix));
        let network = u32::from(self.cluster_ip_network) & mask;
        // Neither the network address nor the broadcast address.
        (network + 1, (network | !mask) - 1)
    }

    fn contains_ip(&self, ip: Ipv4Addr) -> bool {
        let (low, high) = self.ip_bounds();
        (low..=high).contains(&u32::from(ip))
    }
}

/// Store operations that take and release addresses, run in the Service's txn.
#[derive(Default, Debug)]
pub(crate) struct Allocation {
    pub(crate) compares: Vec<Compare>,
    pub(crate) ops: Vec<RequestOp>,
}

impl Allocation {
    fn take(&mut self, key: String, owner: &str) {
        self.compares.push(Compare {
            key: key.clone().into_bytes(),
            target: compare::CompareTarget::Create as i32,
            result: compare::CompareResult::Equal as i32,
            target_union: Some(compare::TargetUnion::CreateRevision(0)),
            ..Default::default()
        });
        self.ops.push(RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: key.into_bytes(),
                value: owner.as_bytes().to_vec(),
                ..Default::default()
            })),
        });
    }

    pub(crate) fn release(&mut self, key: String) {
        self.ops.push(RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                DeleteRangeRequest {
                    key: key.into_bytes(),
                    ..Default::default()
                },
            )),
        });
    }
}

fn invalid(field: &str, detail: String) -> FieldError {
    FieldError {
        field: field.into(),
        kind: FieldErrorKind::Invalid,
        detail,
    }
}

/// Whether `existing` (an allocation key) is taken, asked of the store by the caller.
pub(crate) type IsTaken<'a> = &'a dyn Fn(&str) -> bool;

/// The node ports a Service holds.
pub(crate) fn node_ports(service: &Value) -> BTreeSet<u16> {
    service["spec"]["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p["nodePort"].as_u64())
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The ClusterIP a Service holds, if it holds one.
pub(crate) fn cluster_ip(service: &Value) -> Option<Ipv4Addr> {
    service["spec"]["clusterIP"].as_str()?.parse().ok()
}

/// Gives an updated Service the addresses its client left out, as
/// Kubernetes' `patchAllocatedValues` does before validation: an update that
/// omits `spec.clusterIP`, `spec.clusterIPs`, a port's `nodePort` or
/// `spec.healthCheckNodePort` keeps the old value (a client that read the
/// Service before it was allocated must not be told the address may not change).
/// Node ports are matched by port name, and a port the new spec already uses
/// elsewhere is not carried over.
pub(crate) fn carry_over_allocated(service: &mut Value, old: &Value) {
    let needs_cluster_ip = |s: &Value| s["spec"]["type"] != "ExternalName";
    if needs_cluster_ip(old) && needs_cluster_ip(service) {
        let empty = |v: &Value| v.as_str().is_none_or(str::is_empty);
        if empty(&service["spec"]["clusterIP"]) && !empty(&old["spec"]["clusterIP"]) {
            service["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
        }
        let none = |v: &Value| v.as_array().is_none_or(Vec::is_empty);
        if none(&service["spec"]["clusterIPs"]) && !none(&old["spec"]["clusterIPs"]) {
            service["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
        }
    }
    if needs_node_ports(old) && needs_node_ports(service) {
        let in_both: BTreeSet<u16> = node_ports(old)
            .intersection(&node_ports(service))
            .copied()
            .collect();
        let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
        if let Some(ports) = service["spec"]["ports"].as_array_mut() {
            for port in ports
                .iter_mut()
                .filter(|p| p["nodePort"].as_u64().is_none())
            {
                let name = port["name"].as_str().unwrap_or("");
                let held = old_ports
                    .iter()
                    .find(|o| o["name"].as_str().unwrap_or("") == name)
                    .and_then(|o| o["nodePort"].as_u64())
                    .and_then(|p| u16::try_from(p).ok());
                if let Some(p) = held.filter(|p| !in_both.contains(p)) {
                    port["nodePort"] = json!(p);
                }
            }
        }
        if service["spec"]["healthCheckNodePort"].as_u64().is_none()
            && old["spec"]["healthCheckNodePort"].as_u64().is_some()
        {
            service["spec"]["healthCheckNodePort"] = old["spec"]["healthCheckNodePort"].clone();
        }
    }
}

fn needs_node_ports(service: &Value) -> bool {
    matches!(
        service["spec"]["type"].as_str(),
        Some("NodePort") | Some("LoadBalancer")
    )
}

/// Fills in a Service's ClusterIP and NodePorts, keeping those of `old` (an
/// update), and returns the allocation ops. `taken` says whether an address
/// key is already in the store.
pub(crate) fn allocate(
    ranges: &ServiceRanges,
    random: &Random,
    service: &mut Value,
    old: Option<&Value>,
    owner: &str,
    taken: IsTaken<'_>,
) -> Result<Allocation, Vec<FieldError>> {
    let mut allocator = Allocator {
        ranges,
        random,
        owner,
        taken,
        allocation: Allocation::default(),
        errors: Vec::new(),
    };
    allocator.cluster_ip(service, old);
    allocator.node_ports(service, old);
    if allocator.errors.is_empty() {
        Ok(allocator.allocation)
    } else {
        Err(allocator.errors)
    }
}

/// One Service's allocation in progress: the ops so far and what went wrong.
struct Allocator<'a> {
    ranges: &'a ServiceRanges,
    random: &'a Random,
    owner: &'a str,
    taken: IsTaken<'a>,
    allocation: Allocation,
    errors: Vec<FieldError>,
}

impl Allocator<'_> {
    /// ClusterIP: immutable once set; "None" is a headless Service.
    fn cluster_ip(&mut self, service: &mut Value, old: Option<&Value>) {
        let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP");
        let asked = service["spec"]["clusterIP"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if kind == "ExternalName" || asked == "None" {
            return;
        }
        match (old.and_then(cluster_ip), asked.as_str()) {
            (Some(old_ip), "") => set_ip(service, old_ip),
            (Some(old_ip), asked) if asked == old_ip.to_string() => {}
            (Some(_), asked) => self.errors.push(invalid(
                "spec.clusterIPs[0]",
                format!("[]string{{\"{asked}\"}}: may not change once set"),
            )),
            (None, "") => match pick_ip(self.ranges, self.random, self.taken) {
                Some(ip) => self.take_ip(service, ip),
                None => self.errors.push(invalid(
                    "spec.clusterIPs",
                    "failed to allocate IP: range is full".into(),
                )),
            },
            (None, asked) => self.asked_ip(service, asked),
        }
    }

    /// A ClusterIP the client chose for a new Service.
    fn asked_ip(&mut self, service: &mut Value, asked: &str) {
        match asked.parse::<Ipv4Addr>() {
            Ok(ip) if !self.ranges.contains_ip(ip) => self.errors.push(invalid(
                "spec.clusterIPs",
                format!("[]string{{\"{asked}\"}}: failed to allocate IP {asked}: the provided IP ({asked}) is not in the valid range"),
            )),
            Ok(ip) if (self.taken)(&format!("{SERVICE_IPS_PREFIX}{ip}")) => self.errors.push(invalid(
                "spec.clusterIPs",
                format!("[]string{{\"{asked}\"}}: failed to allocate IP {asked}: provided IP is already allocated"),
            )),
            Ok(ip) => self.take_ip(service, ip),
            Err(_) => self.errors.push(invalid(
                "spec.clusterIPs[0]",
                format!("\"{asked}\": must be a valid IP address"),
            )),
        }
    }

    fn take_ip(&mut self, service: &mut Value, ip: Ipv4Addr) {
        self.allocation
            .take(format!("{SERVICE_IPS_PREFIX}{ip}"), self.owner);
        set_ip(service, ip);
    }

    /// NodePorts: a port keeps its old nodePort when it names none; the
    /// old ones no port holds any more are released.
    fn node_ports(&mut self, service: &mut Value, old: Option<&Value>) {
        let held = old.map(node_ports).unwrap_or_default();
        let old_ports = old
            .and_then(|o| o["spec"]["ports"].as_array().cloned())
            .unwrap_or_default();
        let wants = needs_node_ports(service);
        let mut used = BTreeSet::new();
        if let Some(ports) = service["spec"]["ports"].as_array_mut() {
            for (i, port) in ports.iter_mut().enumerate() {
                if !wants {
                    if let Some(map) = port.as_object_mut() {
                        map.remove("nodePort");
                    }
                    continue;
                }
                let asked = as_port(&port["nodePort"]).or_else(|| {
                    old_ports
                        .iter()
                        .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"])
                        .and_then(|o| as_port(&o["nodePort"]))
                });
                let field = format!("spec.ports[{i}].nodePort");
                if let Some(p) = self.node_port(&field, asked, &held, &used) {
                    used.insert(p);
                    port["nodePort"] = json!(p);
                }
            }
        }
        for port in held.difference(&used) {
            self.allocation
                .release(format!("{NODE_PORTS_PREFIX}{port}"));
        }
    }

    /// The node port of one Service port: the one it asks for (or held
    /// already), or a free one.
    fn node_port(
        &mut self,
        field: &str,
        asked: Option<u16>,
        held: &BTreeSet<u16>,
        used: &BTreeSet<u16>,
    ) -> Option<u16> {
        let ranges = self.ranges;
        let error = match asked {
            Some(p) if held.contains(&p) => return Some(p),
            Some(p) if !ranges.node_ports.contains(&p) => format!(
                "{p}: provided port is not in the valid range. The range of valid ports is {}-{}",
                ranges.node_ports.start(),
                ranges.node_ports.end()
            ),
            Some(p) if used.contains(&p) || (self.taken)(&format!("{NODE_PORTS_PREFIX}{p}")) => {
                format!("{p}: provided port is already allocated")
            }
            Some(p) => return Some(self.take_port(p)),
            None => match pick_port(ranges, self.random, used, self.taken) {
                Some(p) => return Some(self.take_port(p)),
                None => "range is full".into(),
            },
        };
        self.errors.push(invalid(field, error));
        None
    }

    fn take_port(&mut self, port: u16) -> u16 {
        self.allocation
            .take(format!("{NODE_PORTS_PREFIX}{port}"), self.owner);
        port
    }
}

/// The ops that free everything `service` holds (on delete).
pub(crate) fn release_all(service: &Value) -> Allocation {
    let mut allocation = Allocation::default();
    if let Some(ip) = cluster_ip(service) {
        allocation.release(format!("{SERVICE_IPS_PREFIX}{ip}"));
    }
    for port in node_ports(service) {
        allocation.release(format!("{NODE_PORTS_PREFIX}{port}"));
    }
    allocation
}

/// A port number, if `value` is one.
fn as_port(value: &Value) -> Option<u16> {
    value.as_u64().and_then(|p| u16::try_from(p).ok())
}

fn set_ip(service: &mut Value, ip: Ipv4Addr) {
    service["spec"]["clusterIP"] = json!(ip.to_string());
    service["spec"]["clusterIPs"] = json!([ip.to_string()]);
}

/// A free address, tried at random as Kubernetes' allocator does (the
/// store's compare catches a race with another writer).
fn pick_ip(ranges: &ServiceRanges, random: &Random, taken: IsTaken<'_>) -> Option<Ipv4Addr> {
    let (low, high) = ranges.ip_bounds();
    let size = u64::from(high - low + 1);
    let offset = random.below(size);
    // Random probes first, then a bounded linear scan from the last probe.
    (0..64)
        .map(|_| random.below(size))
        .chain((0..size.min(65_536)).map(|i| (offset + i) % size))
        .map(|i| Ipv4Addr::from(low + i as u32))
        .find(|ip| !taken(&format!("{SERVICE_IPS_PREFIX}{ip}")))
}

fn pick_port(
    ranges: &ServiceRanges,
    random: &Random,
    used: &BTreeSet<u16>,
    taken: IsTaken<'_>,
) -> Option<u16> {
    let (low, high) = (*ranges.node_ports.start(), *ranges.node_ports.end());
    let size = u64::from(high - low) + 1;
    let offset = random.below(size);
    (0..size)
        .map(|i| low + ((offset + i) % size) as u16)
        .find(|p| !used.contains(p) && !taken(&format!("{NODE_PORTS_PREFIX}{p}")))
}
