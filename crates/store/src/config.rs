//! How a store member is set up ([`StoreConfig`], etcd's flags with etcd's
//! defaults) and the identities derived from it: member and cluster IDs.
//!
//! Both the handle ([`crate::Store`]) and the raft node read the
//! configuration; it depends on nothing else of the store.
//!
//! # Caveats
//! Only the flags skiff implements are here; TLS, auth and discovery are not.

use std::path::PathBuf;
use std::time::Duration;

use skiff_proto::store::Member;

use crate::mvcc;
use crate::watch::WatchOptions;

/// How a store is set up. `Default` gives etcd's defaults.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The member's name (etcd's `--name`).
    pub name: String,
    /// Where the log and the applied state live (etcd's `--data-dir`).
    pub data_dir: PathBuf,
    /// The largest request accepted, in bytes (etcd's `--max-request-bytes`, 1.5 MiB).
    pub max_request_bytes: usize,
    /// The most operations in one txn branch (etcd's `--max-txn-ops`, 128).
    pub max_txn_ops: usize,
    /// The shortest TTL a lease is granted, in seconds; shorter requests get this.
    /// etcd derives it from its election timeout: 2 s with the default 1 s.
    pub min_lease_ttl: i64,
    /// How often lease deadlines are checked.
    pub lease_check_interval: Duration,
    /// The most log entries made durable by one fsync.
    pub max_batch_entries: usize,
    /// sled's page cache, in bytes. Small by default: pages sled drops from
    /// its cache stay in the kernel's page cache, and reading them back costs
    /// less than sled spends managing a larger cache (its resident memory also
    /// runs well past the figure). See docs/benchmarks.md.
    pub cache_bytes: u64,
    /// Whether a new raft log's first segment is preallocated too (the open
    /// waits while it is zero-filled, once per data directory), as a
    /// long-running server wants: writes that grow a file need a second,
    /// serial disk write per fsync and stall far more often. Off by default,
    /// so that an embedded or test store opens without writing 64 MiB; its
    /// log is preallocated from its second segment on (see `wal`).
    pub preallocate_wal_from_start: bool,
    /// Watch settings.
    pub watch: WatchOptions,
    /// The first members, name → peer URL (etcd's `--initial-cluster`, a name
    /// may repeat for several URLs). Empty: this member alone.
    pub initial_cluster: Vec<(String, String)>,
    /// Start a new cluster or join a running one (`--initial-cluster-state`).
    pub initial_cluster_state: ClusterState,
    /// Distinguishes clusters; part of every member ID (`--initial-cluster-token`).
    pub initial_cluster_token: String,
    /// This member's peer URLs as the others reach it (`--initial-advertise-peer-urls`).
    pub initial_advertise_peer_urls: Vec<String>,
    /// This member's client URLs as announced to the cluster (`--advertise-client-urls`).
    pub advertise_client_urls: Vec<String>,
    /// Raft's tick, the leader's heartbeat (`--heartbeat-interval`, 100 ms).
    pub heartbeat_interval: Duration,
    /// How long followers wait for a heartbeat before an election (`--election-timeout`, 1 s).
    pub election_timeout: Duration,
    /// Applied entries between snapshots (`--snapshot-count`).
    pub snapshot_count: u64,
    /// Entries kept in the log behind a snapshot, so a slightly slow follower
    /// catches up from the log rather than a snapshot (etcd keeps 5,000).
    pub snapshot_catch_up_entries: u64,
}

impl StoreConfig {
    /// The ID `--initial-cluster` gives this member: derived from its peer URLs
    /// and the cluster token, so every founding member computes the same IDs.
    /// A member added later by MemberAdd has an ID salted with the time of the
    /// addition instead; [`crate::Store::identity`] has the ID a store runs with.
    pub fn member_id(&self) -> u64 {
        member_id(
            &self.initial_advertise_peer_urls,
            &self.initial_cluster_token,
        )
    }

    /// The cluster's ID, derived from the cluster token.
    pub fn cluster_id(&self) -> u64 {
        fnv1a(self.initial_cluster_token.as_bytes()) | 1
    }

    /// The members `--initial-cluster` names, with their IDs.
    pub(crate) fn initial_members(&self) -> Vec<Member> {
        if self.initial_cluster.is_empty() {
            return vec![Member {
                id: self.member_id(),
                name: self.name.clone(),
                peer_urls: self.initial_advertise_peer_urls.clone(),
                client_urls: Vec::new(),
                is_learner: false,
            }];
        }
        let mut members: Vec<Member> = Vec::new();
        for (name, url) in &self.initial_cluster {
            match members.iter_mut().find(|m| &m.name == name) {
                Some(member) => member.peer_urls.push(url.clone()),
                None => members.push(Member {
                    name: name.clone(),
                    peer_urls: vec![url.clone()],
                    ..Default::default()
                }),
            }
        }
        for member in &mut members {
            member.id = member_id(&member.peer_urls, &self.initial_cluster_token);
        }
        members
    }

    /// How long a request may wait to be applied before "request timed out"
    /// (etcd: 5 s plus two election timeouts).
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(5) + 2 * self.election_timeout
    }
}

/// A founding member's ID from its peer URLs and the cluster token (no time,
/// so every member of `--initial-cluster` computes the same IDs).
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    fnv1a(&member_id_input(peer_urls, token)) | 1
}

/// The ID of a member added at `unix_nanos` (nanoseconds since the Unix
/// epoch): its peer URLs and the cluster token salted with the time, as
/// etcd's MemberAdd does, so that a member added again with the peer URLs of
/// a removed one gets a fresh ID.
pub(crate) fn added_member_id(peer_urls: &[String], token: &str, unix_nanos: u64) -> u64 {
    let mut bytes = member_id_input(peer_urls, token);
    bytes.push(0);
    bytes.extend_from_slice(&unix_nanos.to_be_bytes());
    fnv1a(&bytes) | 1
}

fn member_id_input(peer_urls: &[String], token: &str) -> Vec<u8> {
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let mut bytes = urls.join(",").into_bytes();
    bytes.push(0);
    bytes.extend_from_slice(token.as_bytes());
    bytes
}

/// Whether a member starts a new cluster or joins a running one (etcd's
/// `--initial-cluster-state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClusterState {
    /// Every `--initial-cluster` member starts together.
    #[default]
    New,
    /// The member was added with MemberAdd and catches up from the leader.
    Existing,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            name: "default".into(),
            data_dir: PathBuf::from("default.skiff"),
            max_request_bytes: 1536 * 1024,
            max_txn_ops: mvcc::MAX_TXN_OPS,
            min_lease_ttl: 2,
            lease_check_interval: Duration::from_millis(500),
            max_batch_entries: 4096,
            cache_bytes: 32 * 1024 * 1024,
            preallocate_wal_from_start: false,
            watch: WatchOptions::default(),
            initial_cluster: Vec::new(),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".into(),
            initial_advertise_peer_urls: vec!["http://localhost:2380".into()],
            advertise_client_urls: vec!["http://localhost:2379".into()],
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            snapshot_count: 100_000,
            snapshot_catch_up_entries: 5_000,
        }
    }
}

/// A member's identity, as etcd reports it in every response header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberIdentity {
    /// The cluster's ID.
    pub cluster_id: u64,
    /// This member's ID.
    pub member_id: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn founding_member_ids_depend_only_on_peer_urls_and_token() {
        // Pinned: founding members' IDs are what they always were, so data
        // directories and clusters made before keep their IDs.
        let urls = vec!["http://127.0.0.1:2380".to_string()];
        assert_eq!(member_id(&urls, "etcd-cluster"), 0x2b3e_a24f_3b86_f823);
        let two = vec!["http://b:2380".to_string(), "http://a:2380".to_string()];
        let sorted = vec!["http://a:2380".to_string(), "http://b:2380".to_string()];
        assert_eq!(member_id(&two, "t"), member_id(&sorted, "t"));
        assert_ne!(member_id(&urls, "t"), member_id(&urls, "u"));
        // Every founder computes the same IDs from --initial-cluster.
        let config = StoreConfig {
            initial_cluster: vec![
                ("m1".into(), "http://127.0.0.1:2380".into()),
                ("m2".into(), "http://127.0.0.2:2380".into()),
            ],
            initial_advertise_peer_urls: urls.clone(),
            ..StoreConfig::default()
        };
        let ids: Vec<u64> = config.initial_members().iter().map(|m| m.id).collect();
        assert_eq!(ids[0], member_id(&urls, "etcd-cluster"));
        assert_eq!(ids[0], config.member_id());
    }

    #[test]
    fn added_member_ids_are_salted_with_the_time() {
        let urls = vec!["http://127.0.0.4:2380".to_string()];
        let at = 1_700_000_000_000_000_000;
        assert_eq!(
            added_member_id(&urls, "t", at),
            added_member_id(&urls, "t", at)
        );
        assert_ne!(
            added_member_id(&urls, "t", at),
            added_member_id(&urls, "t", at + 1)
        );
        assert_ne!(added_member_id(&urls, "t", at), member_id(&urls, "t"));
    }
}
