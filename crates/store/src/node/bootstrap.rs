//! Start-up: opening the data directory (sled, the snapshots, the raft log),
//! the member ID it records, and the bootstrap snapshot a new cluster starts
//! from. See "Membership" in the node's module doc.

use std::path::Path;
use std::sync::Arc;

use raft::eraftpb::{ConfState, SnapshotMetadata};

use super::storage_err;
use crate::config::{ClusterState, StoreConfig};
use crate::error::{Result, StoreError};
use crate::mvcc::{open_sled, Mvcc};
use crate::raft::snapshot::Snapshots;
use crate::raft::storage::RaftLog;
use crate::wal::WalOptions;

/// The log directory inside the data directory.
pub(crate) const WAL_DIR: &str = "wal";

/// The applied state's directory inside the data directory.
pub(crate) const DB_DIR: &str = "db";

/// The snapshots' directory inside the data directory.
pub(crate) const SNAP_DIR: &str = "snap";
/// The index and term of the bootstrap snapshot a new cluster starts from.
pub(super) const BOOTSTRAP_INDEX: u64 = 1;
const BOOTSTRAP_TERM: u64 = 1;

/// What [`open`] recovered.
pub(crate) struct Opened {
    pub(crate) db: sled::Db,
    pub(crate) mvcc: Mvcc,
    pub(crate) log: RaftLog,
    pub(crate) snapshots: Arc<Snapshots>,
    /// The member ID the data directory records ([`MEMBER_ID_FILE`]), if any.
    pub(crate) member_id: Option<u64>,
}

/// Opens sled, the snapshots and the raft log, reads the member ID the data
/// directory records, and restores the newest snapshot when sled is behind
/// the log's start. [`start_as`] then settles the member's ID.
pub(crate) fn open(config: &StoreConfig) -> Result<Opened> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StoreError::Storage(format!("creating {}: {e}", config.data_dir.display())))?;
    let member_id = read_member_id(&config.data_dir)?;
    let sled_config = sled::Config::new()
        .path(config.data_dir.join(DB_DIR))
        .cache_capacity(config.cache_bytes)
        // The log provides durability; sled is tuned for write throughput.
        .mode(sled::Mode::HighThroughput)
        // Nor does sled need its own periodic fsyncs: a sled that lost its
        // latest writes in a crash is caught up from the log, and the log is
        // compacted only behind a snapshot file, which is fsync'd and restored
        // when sled is behind the log's start. sled still writes its buffers
        // out as they fill.
        .flush_every_ms(None);
    let db = open_sled(&sled_config)?;
    let mut mvcc = Mvcc::open(db.open_tree("kv")?).map_err(|err| match err {
        StoreError::Storage(text) => StoreError::Storage(format!(
            "{}: {text}",
            config.data_dir.join(DB_DIR).display()
        )),
        other => other,
    })?;
    let snapshots = Arc::new(Snapshots::open(&config.data_dir.join(SNAP_DIR))?);
    let wal_options = WalOptions {
        preallocate_first: config.preallocate_wal_from_start,
        ..WalOptions::default()
    };
    let log = RaftLog::open(&config.data_dir.join(WAL_DIR), wal_options)
        .map_err(storage_err("opening the raft log"))?;
    let fresh = log.is_new() && mvcc.applied_index() == 0;
    if !fresh && mvcc.applied_index() + 1 < log.first_index() {
        // sled lost applied state that the log no longer holds.
        let (meta, _, body) = snapshots.latest_loaded()?.ok_or_else(|| {
            StoreError::Storage(format!(
                "the log starts at entry {} but the applied state ends at {} and there is no snapshot",
                log.first_index(),
                mvcc.applied_index()
            ))
        })?;
        if meta.index + 1 < log.first_index() {
            return Err(StoreError::Storage(format!(
                "the newest snapshot ({}) is older than the log's start ({})",
                meta.index,
                log.first_index()
            )));
        }
        mvcc.restore_snapshot(&mut body.as_slice())?;
        tracing::info!(
            index = meta.index,
            "restored the state machine from a snapshot"
        );
    }
    Ok(Opened {
        db,
        mvcc,
        log,
        snapshots,
        member_id,
    })
}

/// Makes `member_id` this data directory's member: records it in
/// [`MEMBER_ID_FILE`] (if not yet), bootstraps a new cluster on an empty
/// directory, and brings the raft state up to what was applied.
pub(crate) fn start_as(config: &StoreConfig, member_id: u64, opened: &mut Opened) -> Result<()> {
    match opened.member_id {
        Some(recorded) if recorded != member_id => {
            return Err(StoreError::Storage(format!(
                "{} belongs to member {recorded:x}, but the cluster lists this member's \
                 peer URLs as member {member_id:x}; start the new member on an empty data directory",
                config.data_dir.display()
            )))
        }
        Some(_) => {}
        None => {
            write_member_id(&config.data_dir, member_id)?;
            opened.member_id = Some(member_id);
        }
    }
    let Opened {
        mvcc,
        log,
        snapshots,
        ..
    } = opened;
    if log.is_new() && mvcc.applied_index() == 0 {
        if config.initial_cluster_state == ClusterState::New {
            bootstrap(config, member_id, mvcc, log, snapshots)?;
        } else {
            tracing::info!(
                member = %format!("{member_id:x}"),
                "joining an existing cluster; waiting for the leader's snapshot"
            );
        }
    }
    // The HardState's commit is written lazily; what was applied was committed.
    let mut hard_state = log.hard_state();
    if hard_state.commit < mvcc.applied_index() {
        hard_state.commit = mvcc.applied_index();
        log.set_hard_state(hard_state);
        log.sync().map_err(storage_err("writing the raft state"))?;
    }
    tracing::info!(
        data_dir = %config.data_dir.display(),
        member = %format!("{member_id:x}"),
        applied_index = mvcc.applied_index(),
        revision = mvcc.current_revision(),
        last_index = log.last_index(),
        "store opened"
    );
    Ok(())
}

/// The file in the data directory that records the member's ID (in hex), so
/// that a member added by MemberAdd, whose ID cannot be computed from its
/// configuration, keeps it across restarts.
pub(crate) const MEMBER_ID_FILE: &str = "member_id";

/// The member ID recorded in `data_dir`, if there is one.
fn read_member_id(data_dir: &Path) -> Result<Option<u64>> {
    let path = data_dir.join(MEMBER_ID_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Storage(format!(
                "reading {}: {e}",
                path.display()
            )))
        }
    };
    u64::from_str_radix(text.trim(), 16)
        .ok()
        .filter(|id| *id != 0)
        .map(Some)
        .ok_or_else(|| {
            StoreError::Storage(format!(
                "{} holds {:?}, not a member ID in hex",
                path.display(),
                text.trim()
            ))
        })
}

/// Records `id` in `data_dir`: written aside, fsync'd, renamed into place.
fn write_member_id(data_dir: &Path, id: u64) -> Result<()> {
    let path = data_dir.join(MEMBER_ID_FILE);
    let temporary = data_dir.join(format!("{MEMBER_ID_FILE}.tmp"));
    let failed =
        |e: std::io::Error| StoreError::Storage(format!("writing {}: {e}", path.display()));
    {
        let mut file = std::fs::File::create(&temporary).map_err(failed)?;
        std::io::Write::write_all(&mut file, format!("{id:x}\n").as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
    }
    std::fs::rename(&temporary, &path).map_err(failed)?;
    std::fs::File::open(data_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)
}

/// Writes the first configuration as a snapshot at index 1, so that members
/// added later receive it.
fn bootstrap(
    config: &StoreConfig,
    member_id: u64,
    mvcc: &mut Mvcc,
    log: &mut RaftLog,
    snapshots: &Snapshots,
) -> Result<()> {
    let members = config.initial_members();
    if !members.iter().any(|m| m.id == member_id) {
        return Err(StoreError::InvalidRequest(format!(
            "member {:?} with peer URLs {:?} is not in --initial-cluster",
            config.name, config.initial_advertise_peer_urls
        )));
    }
    let voters: Vec<u64> = members.iter().map(|m| m.id).collect();
    let mut meta = SnapshotMetadata {
        index: BOOTSTRAP_INDEX,
        term: BOOTSTRAP_TERM,
        ..Default::default()
    };
    meta.set_conf_state(ConfState::from((voters, Vec::<u64>::new())));
    mvcc.bootstrap_members(&members);
    mvcc.apply_empty(BOOTSTRAP_INDEX);
    mvcc.commit()?;
    snapshots.save(&meta, |out| mvcc.write_snapshot(out))?;
    log.apply_snapshot(&meta)
        .and_then(|()| log.sync())
        .map_err(storage_err("writing the bootstrap state"))?;
    tracing::info!(members = members.len(), "bootstrapped a new cluster");
    Ok(())
}
