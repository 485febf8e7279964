//! The in-memory index from a key to the revisions at which it changed.
//!
//! A key lives through *generations*: a generation starts when the key is created
//! and ends with the tombstone written when it is deleted; creating it again starts
//! a new generation. A worked example, for a key put at revisions 1 and 2, deleted
//! at 3, put again at 5 and 6:
//!
//! ```text
//!   generations: [ {created 1, revs 1 2 3(tombstone)}, {created 5, revs 5 6}, ]
//!   at revision 2 → the value written at 2, version 2
//!   at revision 4 → not found (deleted at 3, not yet re-created)
//!   at revision 6 → the value written at 6, version 2 (versions restart per generation)
//! ```
//!
//! Compaction at revision R keeps, in each generation still alive after R, the
//! newest revision ≤ R (so reads at R still work) and drops every older one;
//! generations whose tombstone is ≤ R disappear entirely. This mirrors etcd's
//! `keyIndex` (server/storage/mvcc/key_index.go).
//!
//! In memory, a key with one life and one revision (the usual shape of a key
//! written once, or compacted) is held inline, with no allocation; see
//! [`KeyIndex`].
//!
//! # Caveats
//! The whole index lives in memory, as etcd's does; values stay on disk.

use std::collections::HashSet;

use crate::revision::Revision;

/// One life of a key, from creation to (optionally) its tombstone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Generation {
    /// The revision that created the key in this life (0 before it is created).
    /// Kept apart from `revs` because compaction drops the oldest revisions.
    created: i64,
    /// Changes in this life so far, tombstone included; also survives compaction.
    ver: i64,
    /// Revisions of the changes in this life, oldest first; when the generation is
    /// not the key's last one, its last revision is the tombstone.
    revs: Vec<Revision>,
}

/// All revisions of one key.
///
/// Most keys have one life with one revision (written once, or compacted down
/// to the revision visible at the compaction point); they are kept inline in
/// [`KeyIndex::One`], with no allocation, which roughly halves the index's
/// memory for a million such keys. Every other shape lives in a boxed
/// [`History`]; compaction turns a history back into `One` when it can.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum KeyIndex {
    /// No revision yet: the state of a key about to be written for the first time.
    #[default]
    Empty,
    /// One live generation holding one revision.
    One {
        /// The revision holding the value.
        rev: Revision,
        /// The revision that created the key in this life.
        created: i64,
        /// The key's version: changes in this life, compacted ones included.
        ver: i64,
        /// The lease of this version (0 for none).
        lease: i64,
    },
    /// Anything else: several revisions or several lives.
    History(Box<History>),
}

/// The general shape of a key's revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct History {
    /// Never empty; the last generation is empty while the key is deleted.
    generations: Vec<Generation>,
    /// The lease of the key's newest version (0 for none or when deleted), so a
    /// write can move the key between leases without reading its old value.
    lease: i64,
}

impl History {
    fn current_mut(&mut self) -> &mut Generation {
        let last = self.generations.len() - 1;
        &mut self.generations[last]
    }
}

impl KeyIndex {
    /// Records a put at `rev` of a version attached to `lease`.
    pub(crate) fn put(&mut self, rev: Revision, lease: i64) {
        if let KeyIndex::Empty = self {
            *self = KeyIndex::One {
                rev,
                created: rev.main,
                ver: 1,
                lease,
            };
            return;
        }
        let history = self.history_mut();
        let generation = history.current_mut();
        if generation.revs.is_empty() {
            generation.created = rev.main;
        }
        generation.ver += 1;
        generation.revs.push(rev);
        history.lease = lease;
    }

    /// Records a stored version found when rebuilding the index: its creation
    /// revision and version come from the record, as older revisions may have been
    /// compacted away.
    pub(crate) fn restore(
        &mut self,
        rev: Revision,
        lease: i64,
        create_revision: i64,
        version: i64,
    ) {
        if let KeyIndex::Empty = self {
            *self = KeyIndex::One {
                rev,
                created: create_revision,
                ver: version,
                lease,
            };
            return;
        }
        let history = self.history_mut();
        let generation = history.current_mut();
        generation.created = create_revision;
        generation.ver = version;
        generation.revs.push(rev);
        history.lease = lease;
    }

    /// The lease of the newest version (0 when none or deleted).
    pub(crate) fn lease(&self) -> i64 {
        match self {
            KeyIndex::Empty => 0,
            KeyIndex::One { lease, .. } => *lease,
            KeyIndex::History(history) => history.lease,
        }
    }

    /// Records a delete at `rev`; the key's current generation ends with it.
    pub(crate) fn tombstone(&mut self, rev: Revision) {
        assert!(
            self.is_alive(),
            "tombstone at {rev} on a key that is not alive"
        );
        let history = self.history_mut();
        let generation = history.current_mut();
        generation.ver += 1;
        generation.revs.push(rev);
        history.generations.push(Generation::default());
        history.lease = 0;
    }

    /// The general shape, after turning `Empty` or `One` into it.
    fn history_mut(&mut self) -> &mut History {
        let history = match *self {
            KeyIndex::History(ref mut history) => return history,
            KeyIndex::Empty => History {
                generations: vec![Generation::default()],
                lease: 0,
            },
            KeyIndex::One {
                rev,
                created,
                ver,
                lease,
            } => History {
                generations: vec![Generation {
                    created,
                    ver,
                    revs: vec![rev],
                }],
                lease,
            },
        };
        *self = KeyIndex::History(Box::new(history));
        match self {
            KeyIndex::History(history) => history,
            _ => unreachable!("set just above"),
        }
    }

    /// Whether the key exists at the newest revision.
    pub(crate) fn is_alive(&self) -> bool {
        match self {
            KeyIndex::Empty => false,
            KeyIndex::One { .. } => true,
            KeyIndex::History(history) => history
                .generations
                .last()
                .is_some_and(|g| !g.revs.is_empty()),
        }
    }

    /// The revision holding the key's value as of `at` (main revision), or `None`
    /// when the key did not exist then.
    pub(crate) fn get(&self, at: i64) -> Option<Revision> {
        let history = match self {
            KeyIndex::Empty => return None,
            KeyIndex::One { rev, .. } => return (rev.main <= at).then_some(*rev),
            KeyIndex::History(history) => history,
        };
        let last = history.generations.len() - 1;
        for (i, generation) in history.generations.iter().enumerate().rev() {
            let Some(first) = generation.revs.first() else {
                continue;
            };
            if first.main > at {
                continue; // this life began after `at`
            }
            let tombstoned = i != last;
            let newest = generation.revs.iter().rev().find(|r| r.main <= at)?;
            let is_tombstone = tombstoned && Some(newest) == generation.revs.last();
            return (!is_tombstone).then_some(*newest);
        }
        None
    }

    /// The revision at which the key's live generation began.
    pub(crate) fn created(&self) -> Option<i64> {
        match self {
            KeyIndex::Empty => None,
            KeyIndex::One { created, .. } => Some(*created),
            KeyIndex::History(history) => {
                let generation = history.generations.last()?;
                (!generation.revs.is_empty()).then_some(generation.created)
            }
        }
    }

    /// The key's version (changes since creation) in its live generation.
    pub(crate) fn version(&self) -> i64 {
        match self {
            KeyIndex::Empty => 0,
            KeyIndex::One { ver, .. } => *ver,
            KeyIndex::History(history) => history.generations.last().map_or(0, |g| g.ver),
        }
    }

    /// Drops history older than `at`, adding the revisions that must stay on disk
    /// to `keep`. Returns `true` when nothing is left and the key can be forgotten.
    pub(crate) fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        let history = match self {
            KeyIndex::Empty => return true,
            KeyIndex::One { rev, .. } => {
                if rev.main <= at {
                    keep.insert(*rev);
                }
                return false;
            }
            KeyIndex::History(history) => history,
        };
        let last = history.generations.len() - 1;
        // Skip whole generations that ended (tombstone) at or before `at`.
        let mut first = 0;
        while first < last {
            let tombstone = history.generations[first].revs.last().map_or(0, |r| r.main);
            if tombstone > at {
                break;
            }
            first += 1;
        }
        let generation = &mut history.generations[first];
        if let Some(pos) = generation.revs.iter().rposition(|r| r.main <= at) {
            keep.insert(generation.revs[pos]);
            generation.revs.drain(..pos);
            // A generation reduced to its tombstone is over: drop it too.
            if generation.revs.len() == 1 && first != last {
                keep.remove(&generation.revs[0]);
                first += 1;
            }
        }
        history.generations.drain(..first);
        let shrunk = match history.generations.as_slice() {
            [only] if only.revs.is_empty() => return true,
            [only] if only.revs.len() == 1 => KeyIndex::One {
                rev: only.revs[0],
                created: only.created,
                ver: only.ver,
                lease: history.lease,
            },
            _ => return false,
        };
        *self = shrunk;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    /// The module doc's example: put 1, 2; delete 3; put 5, 6.
    fn example() -> KeyIndex {
        let mut ki = KeyIndex::default();
        ki.put(rev(1), 0);
        ki.put(rev(2), 0);
        ki.tombstone(rev(3));
        ki.put(rev(5), 0);
        ki.put(rev(6), 0);
        ki
    }

    #[test]
    fn get_sees_the_newest_revision_at_or_before_the_read() {
        let ki = example();
        assert_eq!(ki.get(0), None);
        assert_eq!(ki.get(1), Some(rev(1)));
        assert_eq!(ki.get(2), Some(rev(2)));
        assert_eq!(ki.get(3), None, "deleted at 3");
        assert_eq!(ki.get(4), None, "not re-created until 5");
        assert_eq!(ki.get(5), Some(rev(5)));
        assert_eq!(ki.get(100), Some(rev(6)));
    }

    #[test]
    fn version_restarts_in_a_new_generation() {
        let ki = example();
        assert_eq!(ki.version(), 2);
        assert_eq!(ki.created(), Some(5));
    }

    #[test]
    fn creation_and_version_survive_compaction() {
        let mut ki = KeyIndex::default();
        for main in 1..=4 {
            ki.put(rev(main), 0);
        }
        ki.compact(3, &mut HashSet::new());
        assert_eq!(ki.created(), Some(1));
        assert_eq!(ki.version(), 4);
    }

    #[test]
    fn compaction_keeps_the_revision_visible_at_the_compaction_point() {
        let mut ki = example();
        let mut keep = HashSet::new();
        assert!(!ki.compact(5, &mut keep));
        assert_eq!(keep, HashSet::from([rev(5)]));
        assert_eq!(ki.get(5), Some(rev(5)));
        assert_eq!(ki.get(6), Some(rev(6)));
    }

    #[test]
    fn compaction_drops_generations_that_ended_before_it() {
        let mut ki = example();
        let mut keep = HashSet::new();
        ki.compact(4, &mut keep);
        assert!(
            keep.is_empty(),
            "nothing of the first life survives: {keep:?}"
        );
        assert_eq!(ki.get(4), None);
        assert_eq!(ki.get(6), Some(rev(6)));
    }

    #[test]
    fn compaction_at_the_tombstone_drops_the_generation() {
        let mut ki = KeyIndex::default();
        ki.put(rev(1), 0);
        ki.tombstone(rev(2));
        let mut keep = HashSet::new();
        assert!(ki.compact(2, &mut keep), "a deleted key is forgotten");
        assert!(keep.is_empty());
    }

    #[test]
    fn a_key_written_once_is_kept_inline_until_it_changes_again() {
        let mut ki = KeyIndex::default();
        assert!(!ki.is_alive());
        ki.put(rev(7), 3);
        assert_eq!(
            ki,
            KeyIndex::One {
                rev: rev(7),
                created: 7,
                ver: 1,
                lease: 3
            }
        );
        assert_eq!((ki.get(6), ki.get(7)), (None, Some(rev(7))));
        ki.put(rev(9), 0);
        assert!(matches!(ki, KeyIndex::History(_)), "{ki:?}");
        assert_eq!((ki.get(8), ki.get(9)), (Some(rev(7)), Some(rev(9))));
        assert_eq!((ki.created(), ki.version(), ki.lease()), (Some(7), 2, 0));
    }

    #[test]
    fn compaction_to_one_revision_makes_the_key_inline_again() {
        let mut ki = KeyIndex::default();
        ki.put(rev(1), 0);
        ki.tombstone(rev(2));
        ki.put(rev(3), 5);
        ki.put(rev(4), 5);
        let mut keep = HashSet::new();
        assert!(!ki.compact(4, &mut keep));
        assert_eq!(keep, HashSet::from([rev(4)]));
        assert_eq!(
            ki,
            KeyIndex::One {
                rev: rev(4),
                created: 3,
                ver: 2,
                lease: 5
            }
        );
    }

    #[test]
    fn a_key_deleted_after_one_write_is_forgotten_at_its_tombstone() {
        let mut ki = KeyIndex::default();
        ki.put(rev(1), 0);
        ki.tombstone(rev(2));
        assert!(!ki.is_alive());
        assert_eq!((ki.get(1), ki.get(2)), (Some(rev(1)), None));
        let mut keep = HashSet::new();
        assert!(!ki.compact(1, &mut keep), "still visible at 1");
        assert_eq!(keep, HashSet::from([rev(1)]));
        assert!(ki.compact(2, &mut HashSet::new()));
    }

    #[test]
    fn an_index_entry_stays_small() {
        // The index holds one entry per key in memory; growing it costs
        // megabytes per million keys.
        assert!(std::mem::size_of::<KeyIndex>() <= 48);
    }

    #[test]
    fn compaction_inside_a_live_generation_keeps_the_older_value() {
        let mut ki = KeyIndex::default();
        ki.put(rev(1), 0);
        ki.tombstone(rev(4));
        let mut keep = HashSet::new();
        assert!(!ki.compact(2, &mut keep));
        assert_eq!(keep, HashSet::from([rev(1)]));
        assert_eq!(ki.get(2), Some(rev(1)));
        assert_eq!(ki.get(4), None);
    }
}
