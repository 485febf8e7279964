//! The options of each verb, as Kubernetes' query parameters.

use serde_json::{json, Map, Value};

/// Options of a list (Kubernetes' `ListOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// A label selector, as `kubectl -l` (`app=web,tier!=db`).
    pub label_selector: String,
    /// A field selector, such as `spec.nodeName=node-1`.
    pub field_selector: String,
    /// The most items in one page; 0 means all.
    pub limit: i64,
    /// The continue token of the previous page.
    pub continue_token: String,
    /// "": the latest state; "0": any state the server has; otherwise the
    /// state at that resourceVersion.
    pub resource_version: String,
}

impl ListParams {
    /// Only objects whose labels match `selector`.
    pub fn labels(mut self, selector: &str) -> ListParams {
        self.label_selector = selector.to_string();
        self
    }

    /// Only objects whose fields match `selector`.
    pub fn fields(mut self, selector: &str) -> ListParams {
        self.field_selector = selector.to_string();
        self
    }

    /// Pages of at most `limit` items.
    pub fn limit(mut self, limit: i64) -> ListParams {
        self.limit = limit;
        self
    }

    /// The page after the one that answered with this continue token.
    pub fn continue_token(mut self, token: &str) -> ListParams {
        self.continue_token = token.to_string();
        self
    }
}

/// How unknown fields in a written object are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Kubernetes' default: drop them and warn.
    #[default]
    Warn,
    /// Drop them silently.
    Ignore,
    /// Reject the request.
    Strict,
}

impl FieldValidation {
    pub(crate) fn to_proto(self) -> i32 {
        use skiff_proto::api::FieldValidation as P;
        match self {
            FieldValidation::Warn => P::Warn as i32,
            FieldValidation::Ignore => P::Ignore as i32,
            FieldValidation::Strict => P::Strict as i32,
        }
    }
}

/// Options of a create, replace or patch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostParams {
    /// Check and answer, but store nothing.
    pub dry_run: bool,
    /// What to do with unknown fields.
    pub field_validation: FieldValidation,
}

/// A patch, by its content type.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// RFC 7386 JSON merge patch (`application/merge-patch+json`): an object
    /// whose fields replace the target's, `null` deleting.
    Merge(Value),
    /// RFC 6902 JSON patch (`application/json-patch+json`): an array of
    /// `{"op", "path", "value"}` operations.
    Json(Value),
}

/// How dependents are deleted along with their owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropagationPolicy {
    /// Leave dependents.
    Orphan,
    /// Delete the owner now, its dependents in the background.
    Background,
    /// Delete dependents first, then the owner.
    Foreground,
}

/// Options of a delete (Kubernetes' `DeleteOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// Check and answer, but delete nothing.
    pub dry_run: bool,
    /// Seconds the object has to stop (pods); 0 deletes at once.
    pub grace_period_seconds: Option<i64>,
    /// How dependents are deleted.
    pub propagation_policy: Option<PropagationPolicy>,
    /// Delete only if the object still has this uid.
    pub precondition_uid: Option<String>,
    /// Delete only if the object still has this resourceVersion.
    pub precondition_resource_version: Option<String>,
}

impl DeleteParams {
    /// The DeleteOptions JSON the server reads; empty for the defaults.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut options = Map::new();
        if let Some(seconds) = self.grace_period_seconds {
            options.insert("gracePeriodSeconds".into(), json!(seconds));
        }
        if let Some(policy) = self.propagation_policy {
            let policy = match policy {
                PropagationPolicy::Orphan => "Orphan",
                PropagationPolicy::Background => "Background",
                PropagationPolicy::Foreground => "Foreground",
            };
            options.insert("propagationPolicy".into(), json!(policy));
        }
        let mut preconditions = Map::new();
        if let Some(uid) = &self.precondition_uid {
            preconditions.insert("uid".into(), json!(uid));
        }
        if let Some(rv) = &self.precondition_resource_version {
            preconditions.insert("resourceVersion".into(), json!(rv));
        }
        if !preconditions.is_empty() {
            options.insert("preconditions".into(), Value::Object(preconditions));
        }
        if options.is_empty() {
            return Vec::new();
        }
        serde_json::to_vec(&Value::Object(options)).expect("a Value always encodes")
    }
}

/// Options of a watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchParams {
    /// A label selector.
    pub label_selector: String,
    /// A field selector.
    pub field_selector: String,
    /// Ask for BOOKMARK events, which move the resourceVersion forward
    /// without a change.
    pub bookmarks: bool,
    /// The server closes the watch after this many seconds; 0 = its default.
    pub timeout_seconds: i64,
}

impl WatchParams {
    /// The same selectors as a list's, so a watch follows what was listed.
    pub fn from_list(list: &ListParams) -> WatchParams {
        WatchParams {
            label_selector: list.label_selector.clone(),
            field_selector: list.field_selector.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_options_name_only_what_was_set() {
        assert!(DeleteParams::default().to_json().is_empty());
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            propagation_policy: Some(PropagationPolicy::Foreground),
            precondition_resource_version: Some("7".into()),
            ..Default::default()
        };
        let json: Value = serde_json::from_slice(&params.to_json()).unwrap();
        assert_eq!(
            json,
            json!({
                "gracePeriodSeconds": 0,
                "propagationPolicy": "Foreground",
                "preconditions": {"resourceVersion": "7"},
            })
        );
    }
}
