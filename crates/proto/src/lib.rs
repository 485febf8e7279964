//! skiff's protocol buffers, generated at build time from `proto/`.
//!
//! # Layout
//! - [`mvccpb`]: etcd's `KeyValue` and watch `Event`.
//! - [`etcdserverpb`]: etcd's v3 client API (KV, Watch, Lease, Cluster, Maintenance), with
//!   etcd's own names and field numbers so etcdctl and etcd client libraries work unchanged.
//! - [`store`]: the entries of skiff-store's log (`skiff.store.v1`).
//! - [`raftpb`]: traffic between store members (`skiff.raft.v1`).
//! - [`api`]: the API server's generic service (`skiff.api.v1`).
//! - [`channel`]: the framing of an exec's streams between the API server and a
//!   kubelet over one upgraded HTTP connection (stdin, stdout, stderr, status, resize).
//! - [`conn`]: [`conn::Coalesce`], the write-batching layer under every gRPC
//!   connection skiff serves or benchmarks with: a connection's writes leave in
//!   a few large system calls instead of one per response.
//!
//! # Where to start
//! `proto/etcd/etcdserverpb/rpc.proto` is the contract every store client speaks.
//!
//! Generated code is plain data (prost) plus tonic clients and servers; the
//! behaviour behind the services lives in `skiff-store` and `skiff-apiserver`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod channel;
pub mod conn;
pub mod keys;

/// etcd's MVCC records: a key's versions and watch events.
#[allow(missing_docs, clippy::all)]
pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}

/// etcd's v3 client API.
#[allow(missing_docs, clippy::all)]
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

/// skiff's own packages, nested as their proto package names (`skiff.store.v1`).
pub mod skiff {
    /// skiff-store's protos.
    pub mod store {
        /// skiff-store's log entries.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/skiff.store.v1.rs"));
        }
    }

    /// Traffic between the members of a replicated store.
    pub mod raft {
        /// The peer service: raft messages and snapshots.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/skiff.raft.v1.rs"));
        }
    }

    /// The API server's generic service.
    pub mod api {
        /// Every served Kubernetes resource through one service.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/skiff.api.v1.rs"));
        }
    }
}

pub use skiff::api::v1 as api;
pub use skiff::raft::v1 as raftpb;
pub use skiff::store::v1 as store;

impl From<api::CreateRequest> for api::UpdateRequest {
    /// An update (PUT) carries exactly what a create (POST) carries.
    fn from(create: api::CreateRequest) -> api::UpdateRequest {
        api::UpdateRequest {
            r#ref: create.r#ref,
            object: create.object,
            field_validation: create.field_validation,
            dry_run: create.dry_run,
            field_manager: create.field_manager,
        }
    }
}

/// The encoded `FileDescriptorSet` of every skiff proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

#[cfg(test)]
mod tests {
    use super::etcdserverpb::{compare, request_op, Compare, PutRequest, RequestOp, TxnRequest};
    use super::mvccpb::KeyValue;
    use super::store::{log_entry, LogEntry};
    use prost::Message;

    #[test]
    fn key_value_round_trips_through_the_wire_format() {
        let kv = KeyValue {
            key: b"/registry/pods/default/web".to_vec(),
            create_revision: 7,
            mod_revision: 9,
            version: 3,
            value: b"{}".to_vec(),
            lease: 42,
        };
        let bytes = kv.encode_to_vec();
        assert_eq!(KeyValue::decode(bytes.as_slice()).unwrap(), kv);
    }

    #[test]
    fn field_numbers_match_etcds_wire_interface() {
        // KeyValue.mod_revision is field 3 (varint): tag byte (3 << 3) | 0 = 0x18.
        let kv = KeyValue {
            mod_revision: 5,
            ..Default::default()
        };
        assert_eq!(kv.encode_to_vec(), vec![0x18, 5]);
        // Compare.range_end is field 64 (length-delimited): tag varint 64 << 3 | 2 = 514 = [0x82, 0x04].
        let cmp = Compare {
            range_end: b"b".to_vec(),
            ..Default::default()
        };
        assert_eq!(cmp.encode_to_vec(), vec![0x82, 0x04, 1, b'b']);
    }

    #[test]
    fn log_entry_carries_a_nested_txn() {
        let entry = LogEntry {
            id: 11,
            proposer: 3,
            request: Some(log_entry::Request::Txn(TxnRequest {
                compare: vec![Compare {
                    key: b"k".to_vec(),
                    target_union: Some(compare::TargetUnion::Version(0)),
                    ..Default::default()
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: b"k".to_vec(),
                        value: b"v".to_vec(),
                        ..Default::default()
                    })),
                }],
                failure: vec![],
            })),
        };
        let decoded = LogEntry::decode(entry.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, entry);
    }

    #[test]
    fn descriptor_set_names_the_etcd_services() {
        let set = prost_types_free_check(super::FILE_DESCRIPTOR_SET);
        assert!(
            set.contains("etcdserverpb"),
            "descriptor set lacks etcdserverpb"
        );
        assert!(
            set.contains("Maintenance"),
            "descriptor set lacks Maintenance"
        );
    }

    /// The descriptor set is a protobuf; service names appear in it as plain strings.
    fn prost_types_free_check(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }
}
