//! Node labels as small integers, so that the plugins placing pods by
//! topology domain (PodTopologySpread, InterPodAffinity) compare numbers
//! rather than look strings up in every node's label map.
//!
//! A topology domain is the set of nodes sharing one value of a label (the
//! `topologyKey`, such as `topology.kubernetes.io/zone`). The cache gives
//! every label key and every value of a key a number ([`LabelIndex`]) when a
//! node enters or changes, and the node's `NodeInfo` keeps its labels as
//! (key, value) number pairs. A cycle turns its topology keys into
//! [`LabelKey`]s once, in PreFilter; Filter then finds a node's domain with
//! [`NodeInfo::label_value`](super::NodeInfo::label_value), and per-domain
//! counts live in vectors indexed by [`LabelValue`].
//!
//! The index only grows: numbers stay valid for as long as the index lives,
//! and every snapshot the cache fills shares the cache's index (copied on
//! write when a node brings a label not seen before). Each index has a
//! *lineage*: its copies share it, so a `NodeInfo` numbered by one copy is
//! readable through any later one.
//!
//! # Caveats
//! Values of nodes long gone stay numbered (a value per hostname ever seen);
//! the index is not compacted.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

/// Gives every new index its own lineage (0 means "not numbered").
static NEXT_LINEAGE: AtomicU64 = AtomicU64::new(1);

/// A label key's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelKey(u32);

/// A label value's number, among the values of one key: values of one key
/// are numbered 0, 1, 2, … so they index a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelValue(u32);

impl LabelValue {
    /// The number as a vector index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One node's labels as numbers, sorted by key.
pub(crate) type NumberedLabels = Box<[(LabelKey, LabelValue)]>;

/// The values of one key, both ways.
#[derive(Clone, Debug, Default)]
struct Values {
    numbers: HashMap<String, LabelValue>,
    names: Vec<String>,
}

/// Numbers for every label key and value seen on nodes.
#[derive(Clone, Debug)]
pub struct LabelIndex {
    lineage: u64,
    keys: HashMap<String, LabelKey>,
    values: Vec<Values>,
}

impl Default for LabelIndex {
    fn default() -> LabelIndex {
        LabelIndex {
            lineage: NEXT_LINEAGE.fetch_add(1, Ordering::Relaxed),
            keys: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl LabelIndex {
    /// The identity shared by this index and its copies.
    pub(crate) fn lineage(&self) -> u64 {
        self.lineage
    }

    /// The number of `key`; `None` when no node has had that label.
    pub fn key(&self, key: &str) -> Option<LabelKey> {
        self.keys.get(key).copied()
    }

    /// How many values `key` has had (the length of a vector indexed by them).
    pub fn value_count(&self, key: LabelKey) -> usize {
        self.values.get(key.0 as usize).map_or(0, |v| v.names.len())
    }

    /// The text of a value of `key`.
    pub fn value_name(&self, key: LabelKey, value: LabelValue) -> Option<&str> {
        let names = &self.values.get(key.0 as usize)?.names;
        names.get(value.index()).map(String::as_str)
    }

    /// `labels` as numbers, or `None` when one of them has none yet (then
    /// [`LabelIndex::number`] must add it).
    pub(crate) fn lookup(&self, labels: &BTreeMap<String, String>) -> Option<NumberedLabels> {
        let mut numbered = Vec::with_capacity(labels.len());
        for (key, value) in labels {
            let k = self.key(key)?;
            let v = *self.values[k.0 as usize].numbers.get(value)?;
            numbered.push((k, v));
        }
        numbered.sort_unstable();
        Some(numbered.into_boxed_slice())
    }

    /// `labels` as numbers, numbering the keys and values not seen before.
    pub(crate) fn number(&mut self, labels: &BTreeMap<String, String>) -> NumberedLabels {
        let mut numbered: Vec<_> = labels
            .iter()
            .map(|(key, value)| {
                let k = self.number_key(key);
                (k, self.number_value(k, value))
            })
            .collect();
        numbered.sort_unstable();
        numbered.into_boxed_slice()
    }

    /// The labels of `node` as numbers of `index`; the index is copied
    /// (`Arc::make_mut`) only when it has to grow, so a snapshot sharing it
    /// keeps its own.
    pub(crate) fn number_node(index: &mut Arc<LabelIndex>, node: Option<&Node>) -> NumberedLabels {
        let empty = BTreeMap::new();
        let labels = node.and_then(|n| n.metadata.labels.as_ref());
        let labels = labels.unwrap_or(&empty);
        match index.lookup(labels) {
            Some(numbered) => numbered,
            None => Arc::make_mut(index).number(labels),
        }
    }

    fn number_key(&mut self, key: &str) -> LabelKey {
        if let Some(k) = self.key(key) {
            return k;
        }
        let k = LabelKey(u32::try_from(self.values.len()).expect("fewer than 2^32 label keys"));
        self.keys.insert(key.to_string(), k);
        self.values.push(Values::default());
        k
    }

    fn number_value(&mut self, key: LabelKey, value: &str) -> LabelValue {
        let values = &mut self.values[key.0 as usize];
        if let Some(&v) = values.numbers.get(value) {
            return v;
        }
        let v = LabelValue(u32::try_from(values.names.len()).expect("fewer than 2^32 values"));
        values.numbers.insert(value.to_string(), v);
        values.names.push(value.to_string());
        v
    }
}

/// The value of `key` among numbered labels.
pub(crate) fn find(labels: &[(LabelKey, LabelValue)], key: LabelKey) -> Option<LabelValue> {
    // A node has a handful of labels: a linear scan beats a binary search.
    labels.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_of_a_key_are_numbered_densely_from_zero() {
        let mut index = LabelIndex::default();
        let a = index.number(&labels(&[("zone", "a"), ("host", "n1")]));
        let b = index.number(&labels(&[("zone", "b"), ("host", "n2")]));
        let again = index.number(&labels(&[("zone", "a")]));
        let zone = index.key("zone").expect("numbered");
        assert_eq!(find(&a, zone), Some(LabelValue(0)));
        assert_eq!(find(&b, zone), Some(LabelValue(1)));
        assert_eq!(find(&again, zone), Some(LabelValue(0)));
        assert_eq!(index.value_count(zone), 2);
        assert_eq!(index.value_name(zone, LabelValue(1)), Some("b"));
        assert_eq!(index.key("rack"), None);
    }

    #[test]
    fn lookup_numbers_only_what_is_known() {
        let mut index = LabelIndex::default();
        let known = labels(&[("zone", "a")]);
        assert!(index.lookup(&known).is_none());
        let numbered = index.number(&known);
        assert_eq!(index.lookup(&known), Some(numbered));
        assert!(index.lookup(&labels(&[("zone", "b")])).is_none());
    }

    #[test]
    fn copies_keep_the_lineage_and_new_indexes_get_their_own() {
        let index = LabelIndex::default();
        assert_eq!(index.clone().lineage(), index.lineage());
        assert_ne!(LabelIndex::default().lineage(), index.lineage());
    }
}
