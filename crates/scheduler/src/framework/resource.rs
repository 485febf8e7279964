//! Resource amounts as the scheduler adds them up: cpu in millicores, memory
//! and ephemeral storage in bytes, a pod count, and extended resources
//! (`example.com/gpu`) by name — kube-scheduler's `framework.Resource`.
//!
//! A pod's request is what kube-scheduler's `computePodResourceRequest` says:
//! the sum over its containers, raised to the largest init container, plus
//! the pod's overhead. Its *non-zero* request counts a container that asks
//! for no cpu or memory as asking for 100m and 200Mi, so scoring still
//! spreads such pods (`schedutil.GetNonzeroRequests`).
//!
//! Quantities are read by skiff-api's parser, the one admission validates
//! them with, so the scheduler and the API server agree on every amount.
//!
//! # Caveats
//! Sidecar (restartable) init containers are treated as ordinary init
//! containers; hugepages are extended resources like any other.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use skiff_api::admission::quantity::parse_nanos;

/// The cpu a container without a cpu request counts as when scoring (100m).
pub(crate) const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container without a memory request counts as when scoring (200Mi).
pub(crate) const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of each resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// cpu, in millicores.
    pub milli_cpu: i64,
    /// memory, in bytes.
    pub memory: i64,
    /// ephemeral-storage, in bytes.
    pub ephemeral_storage: i64,
    /// pods (only meaningful for a node's allocatable).
    pub allowed_pod_number: i64,
    /// Extended resources by name, in whole units.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a resource list (a node's allocatable, a container's requests).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resource {
        let mut resource = Resource::default();
        for (name, quantity) in list {
            resource.set(name, &quantity.0);
        }
        resource
    }

    fn set(&mut self, name: &str, quantity: &str) {
        match name {
            "cpu" => self.milli_cpu = parse_milli(quantity).unwrap_or(0),
            "memory" => self.memory = parse_units(quantity).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = parse_units(quantity).unwrap_or(0),
            "pods" => self.allowed_pod_number = parse_units(quantity).unwrap_or(0),
            other => {
                self.scalar
                    .insert(other.to_string(), parse_units(quantity).unwrap_or(0));
            }
        }
    }

    /// The amount of one resource by its Kubernetes name.
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    /// Adds `other` to this amount.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_insert(0) += value;
        }
    }

    /// Takes `other` away from this amount.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_insert(0) -= value;
        }
    }

    /// Raises each amount to at least `other`'s.
    fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_insert(0);
            *entry = (*entry).max(*value);
        }
    }
}

/// What a pod requests, and what it counts as when scoring.
pub(crate) fn pod_requests(pod: &Pod) -> (Resource, Resource) {
    let Some(spec) = pod.spec.as_ref() else {
        return (Resource::default(), Resource::default());
    };
    let mut requests = Resource::default();
    let mut non_zero = Resource::default();
    for container in &spec.containers {
        let (r, nz) = container_requests(container);
        requests.add(&r);
        non_zero.add(&nz);
    }
    for container in spec.init_containers.iter().flatten() {
        let (r, nz) = container_requests(container);
        requests.max_with(&r);
        non_zero.max_with(&nz);
    }
    if let Some(overhead) = &spec.overhead {
        let overhead = Resource::from_list(overhead);
        requests.add(&overhead);
        non_zero.add(&overhead);
    }
    (requests, non_zero)
}

fn container_requests(container: &Container) -> (Resource, Resource) {
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(Resource::from_list)
        .unwrap_or_default();
    let mut non_zero = requests.clone();
    if non_zero.milli_cpu == 0 {
        non_zero.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if non_zero.memory == 0 {
        non_zero.memory = DEFAULT_MEMORY_REQUEST;
    }
    (requests, non_zero)
}

/// A quantity in thousandths of a unit, rounded up (`0.5` → 500, `100m` → 100).
pub(crate) fn parse_milli(text: &str) -> Option<i64> {
    let nanos = parse_nanos(text)?;
    i64::try_from(div_ceil(nanos, 1_000_000)).ok()
}

/// A quantity in whole units, rounded up (`1Ki` → 1024, `1.5` → 2).
pub(crate) fn parse_units(text: &str) -> Option<i64> {
    let nanos = parse_nanos(text)?;
    i64::try_from(div_ceil(nanos, 1_000_000_000)).ok()
}

fn div_ceil(value: i128, by: i128) -> i128 {
    let quotient = value / by;
    if value % by > 0 {
        quotient + 1
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_kubernetes_reads_them() {
        for (text, milli, units) in [
            ("100m", Some(100), Some(1)),
            ("0.5", Some(500), Some(1)),
            ("2", Some(2000), Some(2)),
            ("1Ki", Some(1_024_000), Some(1024)),
            ("1.5Gi", Some(1_610_612_736_000), Some(1_610_612_736)),
            ("2e3", Some(2_000_000), Some(2000)),
            ("1k", Some(1_000_000), Some(1000)),
            ("abc", None, None),
            ("", None, None),
        ] {
            assert_eq!(parse_milli(text), milli, "{text} in milli");
            assert_eq!(parse_units(text), units, "{text} in units");
        }
    }
}
