//! Patches: the four ways a client changes part of an object.
//!
//! - JSON merge patch (RFC 7386, `kubectl patch --type merge`): a partial
//!   object; objects merge, `null` removes, lists are replaced whole.
//! - JSON patch (RFC 6902, `--type json`): a list of operations at JSON Pointers.
//! - Strategic merge patch (`kubectl patch`'s default, and what client-side
//!   `kubectl apply` sends): a merge patch that merges lists by their
//!   `patchMergeKey` and understands `$patch` directives.
//! - Server-side apply reads the same list knowledge to merge a field
//!   manager's intent; its bookkeeping (managedFields) is the API server's.
//!
//! # Layout
//! - `merge.rs`: [`merge_patch`], RFC 7386.
//! - `json.rs`: [`json_patch`], RFC 6902, one operation at a time over a copy.
//! - `strategic/`: [`strategic_merge_patch`] and its directives.
//! - [`schema`]: which lists of which kinds merge, and by which keys — the
//!   one table strategic merge patch and server-side apply share.
//!
//! # Where to start
//! [`strategic_merge_patch`]; the table it reads is [`schema::for_kind`].
//!
//! # Caveats
//! See each module: strategic merge patch does not interleave server-only
//! list items as Kubernetes does, and the schema does not tell atomic maps.

use std::fmt;

mod json;
mod merge;
pub mod schema;
mod strategic;

pub use json::json_patch;
pub use merge::merge_patch;
pub use strategic::strategic_merge_patch;

/// Merges a server-side apply intent into `live` with the list strategies of
/// `kind`: keyed lists merge item by item, atomic lists are replaced.
pub fn apply_merge(
    kind: &str,
    live: &mut serde_json::Value,
    intent: &serde_json::Value,
) -> Result<(), PatchError> {
    strategic::merge_into(schema::for_kind(kind), live, intent)
}

/// A patch that cannot be applied: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchError {
    /// The field path in the patch, such as `spec.containers[1]`; empty for the whole patch.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl PatchError {
    pub(crate) fn at(path: &str, message: impl Into<String>) -> PatchError {
        PatchError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for PatchError {}
