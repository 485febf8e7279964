//! Field selectors: the few fields of each kind that Kubernetes lets a list or
//! watch select on (`metadata.name`, `metadata.namespace`, and per kind ones such
//! as a pod's `spec.nodeName`).

use serde_json::Value;

/// A parsed field selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    raw: String,
}

impl FieldSelector {
    /// Parses a selector for objects of `kind`; a field the kind does not
    /// support is an error naming it, as Kubernetes' BadRequest.
    pub fn parse(kind: &str, selector: &str) -> Result<FieldSelector, String> {
        if selector.trim().is_empty() {
            return Ok(FieldSelector::default());
        }
        Err(format!("field label not supported for {kind}: {selector}"))
    }

    /// Whether `object` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        let _ = object;
        self.raw.is_empty()
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}
