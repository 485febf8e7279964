//! How the served kinds' lists merge: the one table that strategic merge
//! patch and server-side apply both read.
//!
//! Kubernetes declares it on the Go types of k8s.io/api, as struct tags
//! (`patchStrategy:"merge" patchMergeKey:"name"`) and markers
//! (`+listType=map`, `+listMapKey=name`), published in the OpenAPI as
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type` and `x-kubernetes-list-map-keys`. Here each kind
//! is a [`Type`]: the fields on the way to a list that merges, and how that
//! list merges. Everything not in the table follows the default: an object
//! merges field by field, a list is atomic (replaced whole).
//!
//! # Caveats
//! Maps and structs are not told apart (both merge field by field), so
//! atomic maps (`nodeSelector`, Service `selector`) and atomic structs merge.
//! Lists that are sets for server-side apply but replaced by a strategic merge
//! patch (EndpointSlice `addresses`, Job `uncountedTerminatedPods`) are atomic
//! for both.

/// The fields of an object type that lead to lists with a merge strategy.
#[derive(Debug)]
pub struct Type {
    /// Field name → what it holds; fields not listed follow the defaults.
    pub fields: &'static [(&'static str, Field)],
}

/// What a field of a [`Type`] holds.
#[derive(Debug)]
pub enum Field {
    /// An object, merged field by field.
    Object(&'static Type),
    /// A list that merges (anything else is atomic).
    List(List),
}

/// A list with a merge strategy.
#[derive(Debug)]
pub struct List {
    /// How its items are matched.
    pub merge: ListMerge,
    /// The type of its items, when they are objects with lists of their own.
    pub items: &'static Type,
}

/// How the items of a list are matched between two versions of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMerge {
    /// A set of scalars (`patchStrategy: merge` without a key,
    /// `listType: set`): items are added; `finalizers`, a Node's `podCIDRs`.
    Set,
    /// Objects identified by keys (`listType: map`).
    Map {
        /// The `patchMergeKey` strategic merge patch matches items by.
        patch_merge_key: &'static str,
        /// The `listMapKeys` server-side apply identifies items by (the
        /// merge key, or more: container ports are keyed by `containerPort`
        /// and `protocol`).
        keys: &'static [&'static str],
    },
}

impl Type {
    /// What `name` holds, if it is in the table.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, field)| field)
    }

    /// The type of an object held in field `name`; [`OPAQUE`] when unlisted.
    pub fn object(&self, name: &str) -> &'static Type {
        match self.field(name) {
            Some(Field::Object(ty)) => ty,
            _ => &OPAQUE,
        }
    }

    /// The merge strategy of the list in field `name`; `None` when atomic.
    pub fn list(&self, name: &str) -> Option<&'static List> {
        match self.field(name) {
            Some(Field::List(list)) => Some(list),
            _ => None,
        }
    }
}

/// The type of `kind`'s objects; [`OPAQUE`] beyond `metadata` for kinds
/// without merging lists.
pub fn for_kind(kind: &str) -> &'static Type {
    match kind {
        "Pod" => &POD,
        "Deployment" | "ReplicaSet" | "Job" => &WORKLOAD,
        "CronJob" => &CRON_JOB,
        "Service" => &SERVICE,
        "Node" => &NODE,
        "ServiceAccount" => &SERVICE_ACCOUNT,
        "Namespace" | "PodDisruptionBudget" => &WITH_CONDITIONS,
        _ => &METADATA_ONLY,
    }
}

/// A type with nothing in the table: objects merge, lists are atomic.
pub static OPAQUE: Type = Type { fields: &[] };

/// A list keyed by one field, for both patch types.
macro_rules! keyed {
    ($key:literal, $items:expr) => {
        keyed_by($key, &[$key], $items)
    };
}

/// A keyed list merged by `key` and identified for apply by `keys`.
const fn keyed_by(key: &'static str, keys: &'static [&'static str], items: &'static Type) -> Field {
    Field::List(List {
        merge: ListMerge::Map {
            patch_merge_key: key,
            keys,
        },
        items,
    })
}

const SET: Field = Field::List(List {
    merge: ListMerge::Set,
    items: &OPAQUE,
});

impl ListMerge {
    /// The keys server-side apply identifies an item by (empty for a set).
    pub fn apply_keys(self) -> &'static [&'static str] {
        match self {
            ListMerge::Set => &[],
            ListMerge::Map { keys, .. } => keys,
        }
    }
}

static OBJECT_META: Type = Type {
    fields: &[
        ("finalizers", SET),
        ("ownerReferences", keyed!("uid", &OPAQUE)),
    ],
};

static METADATA_ONLY: Type = Type {
    fields: &[("metadata", Field::Object(&OBJECT_META))],
};

static RESOURCE_REQUIREMENTS: Type = Type {
    fields: &[("claims", keyed!("name", &OPAQUE))],
};

static CONTAINER: Type = Type {
    fields: &[
        (
            "ports",
            keyed_by("containerPort", &["containerPort", "protocol"], &OPAQUE),
        ),
        ("env", keyed!("name", &OPAQUE)),
        ("volumeMounts", keyed!("mountPath", &OPAQUE)),
        ("volumeDevices", keyed!("devicePath", &OPAQUE)),
        ("resources", Field::Object(&RESOURCE_REQUIREMENTS)),
    ],
};

static POD_SPEC: Type = Type {
    fields: &[
        ("containers", keyed!("name", &CONTAINER)),
        ("initContainers", keyed!("name", &CONTAINER)),
        ("ephemeralContainers", keyed!("name", &CONTAINER)),
        ("volumes", keyed!("name", &OPAQUE)),
        ("imagePullSecrets", keyed!("name", &OPAQUE)),
        ("hostAliases", keyed!("ip", &OPAQUE)),
        (
            "topologySpreadConstraints",
            keyed_by(
                "topologyKey",
                &["topologyKey", "whenUnsatisfiable"],
                &OPAQUE,
            ),
        ),
        ("schedulingGates", keyed!("name", &OPAQUE)),
        ("resourceClaims", keyed!("name", &OPAQUE)),
    ],
};

static POD_STATUS: Type = Type {
    fields: &[
        ("conditions", keyed!("type", &OPAQUE)),
        ("podIPs", keyed!("ip", &OPAQUE)),
        ("hostIPs", keyed!("ip", &OPAQUE)),
        ("resourceClaimStatuses", keyed!("name", &OPAQUE)),
    ],
};

static POD: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("spec", Field::Object(&POD_SPEC)),
        ("status", Field::Object(&POD_STATUS)),
    ],
};

static POD_TEMPLATE: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("spec", Field::Object(&POD_SPEC)),
    ],
};

/// `status.conditions` keyed by type, as most kinds' statuses have.
static CONDITIONS: Type = Type {
    fields: &[("conditions", keyed!("type", &OPAQUE))],
};

static WITH_CONDITIONS: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("status", Field::Object(&CONDITIONS)),
    ],
};

/// The `spec` of a Deployment, ReplicaSet or Job: a pod template.
static TEMPLATE_SPEC: Type = Type {
    fields: &[("template", Field::Object(&POD_TEMPLATE))],
};

static WORKLOAD: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("spec", Field::Object(&TEMPLATE_SPEC)),
        ("status", Field::Object(&CONDITIONS)),
    ],
};

static JOB_TEMPLATE: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("spec", Field::Object(&TEMPLATE_SPEC)),
    ],
};

static CRON_JOB_SPEC: Type = Type {
    fields: &[("jobTemplate", Field::Object(&JOB_TEMPLATE))],
};

static CRON_JOB: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("spec", Field::Object(&CRON_JOB_SPEC)),
    ],
};

static SERVICE_SPEC: Type = Type {
    fields: &[("ports", keyed_by("port", &["port", "protocol"], &OPAQUE))],
};

static SERVICE: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("spec", Field::Object(&SERVICE_SPEC)),
        ("status", Field::Object(&CONDITIONS)),
    ],
};

static NODE_SPEC: Type = Type {
    fields: &[("podCIDRs", SET)],
};

static NODE_STATUS: Type = Type {
    fields: &[
        ("conditions", keyed!("type", &OPAQUE)),
        ("addresses", keyed!("type", &OPAQUE)),
    ],
};

static NODE: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("spec", Field::Object(&NODE_SPEC)),
        ("status", Field::Object(&NODE_STATUS)),
    ],
};

static SERVICE_ACCOUNT: Type = Type {
    fields: &[
        ("metadata", Field::Object(&OBJECT_META)),
        ("secrets", keyed!("name", &OPAQUE)),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn merge_at(kind: &str, path: &[&str]) -> Option<ListMerge> {
        let (last, objects) = path.split_last().expect("a path");
        let ty = objects
            .iter()
            .fold(for_kind(kind), |ty, name| ty.object(name));
        ty.list(last).map(|list| list.merge)
    }

    #[test]
    fn pod_templates_merge_containers_by_name_in_every_workload() {
        let by_name = Some(ListMerge::Map {
            patch_merge_key: "name",
            keys: &["name"],
        });
        assert_eq!(merge_at("Pod", &["spec", "containers"]), by_name);
        for kind in ["Deployment", "ReplicaSet", "Job"] {
            assert_eq!(
                merge_at(kind, &["spec", "template", "spec", "containers"]),
                by_name
            );
        }
        assert_eq!(
            merge_at(
                "CronJob",
                &["spec", "jobTemplate", "spec", "template", "spec", "volumes"]
            ),
            by_name
        );
    }

    #[test]
    fn unlisted_lists_are_atomic() {
        assert_eq!(merge_at("Pod", &["spec", "tolerations"]), None);
        assert_eq!(merge_at("ConfigMap", &["data", "x"]), None);
        assert_eq!(merge_at("Service", &["spec", "externalIPs"]), None);
    }

    #[test]
    fn apply_keys_default_to_the_merge_key() {
        let ports = for_kind("Pod")
            .object("spec")
            .list("containers")
            .expect("containers merge")
            .items
            .list("ports")
            .expect("ports merge");
        assert_eq!(ports.merge.apply_keys(), ["containerPort", "protocol"]);
        let finalizers = merge_at("ConfigMap", &["metadata", "finalizers"]);
        assert_eq!(finalizers, Some(ListMerge::Set));
        let owners = merge_at("Secret", &["metadata", "ownerReferences"]).expect("keyed");
        assert_eq!(owners.apply_keys(), ["uid"]);
    }
}
