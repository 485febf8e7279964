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
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    /// Never empty; the last generation is empty while the key is deleted.
    generations: Vec<Generation>,
    /// The lease of the key's newest version (0 for none or when deleted), so a
    /// write can move the key between leases without reading its old value.
    lease: i64,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            generations: vec![Generation::default()],
            lease: 0,
        }
    }
}

impl KeyIndex {
    /// Records a put at `rev` of a version attached to `lease`.
    pub(crate) fn put(&mut self, rev: Revision, lease: i64) {
        let generation = self.current_mut();
        if generation.revs.is_empty() {
            generation.created = rev.main;
        }
        generation.ver += 1;
        generation.revs.push(rev);
        self.lease = lease;
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
        let generation = self.current_mut();
        generation.created = create_revision;
        generation.ver = version;
        generation.revs.push(rev);
        self.lease = lease;
    }

    /// The lease of the newest version (0 when none or deleted).
    pub(crate) fn lease(&self) -> i64 {
        self.lease
    }

    /// Records a delete at `rev`; the key's current generation ends with it.
    pub(crate) fn tombstone(&mut self, rev: Revision) {
        assert!(
            self.is_alive(),
            "tombstone at {rev} on a key that is not alive"
        );
        let generation = self.current_mut();
        generation.ver += 1;
        generation.revs.push(rev);
        self.generations.push(Generation::default());
        self.lease = 0;
    }

    fn current_mut(&mut self) -> &mut Generation {
        let last = self.generations.len() - 1;
        &mut self.generations[last]
    }

    /// Whether the key exists at the newest revision.
    pub(crate) fn is_alive(&self) -> bool {
        self.generations.last().is_some_and(|g| !g.revs.is_empty())
    }

    /// The revision holding the key's value as of `at` (main revision), or `None`
    /// when the key did not exist then.
    pub(crate) fn get(&self, at: i64) -> Option<Revision> {
        let last = self.generations.len() - 1;
        for (i, generation) in self.generations.iter().enumerate().rev() {
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
        let generation = self.generations.last()?;
        (!generation.revs.is_empty()).then_some(generation.created)
    }

    /// The key's version (changes since creation) in its live generation.
    pub(crate) fn version(&self) -> i64 {
        self.generations.last().map_or(0, |g| g.ver)
    }

    /// Drops history older than `at`, adding the revisions that must stay on disk
    /// to `keep`. Returns `true` when nothing is left and the key can be forgotten.
    pub(crate) fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        let last = self.generations.len() - 1;
        // Skip whole generations that ended (tombstone) at or before `at`.
        let mut first = 0;
        while first < last {
            let tombstone = self.generations[first].revs.last().map_or(0, |r| r.main);
            if tombstone > at {
                break;
            }
            first += 1;
        }
        let generation = &mut self.generations[first];
        if let Some(pos) = generation.revs.iter().rposition(|r| r.main <= at) {
            keep.insert(generation.revs[pos]);
            generation.revs.drain(..pos);
            // A generation reduced to its tombstone is over: drop it too.
            if generation.revs.len() == 1 && first != last {
                keep.remove(&generation.revs[0]);
                first += 1;
            }
        }
        self.generations.drain(..first);
        self.generations.len() == 1 && self.generations[0].revs.is_empty()
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
