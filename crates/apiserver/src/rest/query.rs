//! Kubernetes' query parameters, read into the registry's options and
//! checked as the Kubernetes API server checks them.
//!
//! - lists and watches: `labelSelector`, `fieldSelector`, `limit`,
//!   `continue`, `resourceVersion`, `resourceVersionMatch`, `timeoutSeconds`,
//!   `allowWatchBookmarks`, `watch`;
//! - writes: `dryRun=All`, `fieldValidation=Strict|Warn|Ignore`,
//!   `fieldManager`, `force`;
//! - deletes: `gracePeriodSeconds`, `propagationPolicy` (or a DeleteOptions body);
//! - any answer: `pretty`; tables: `includeObject`.
//!
//! A list's resourceVersion semantics map onto the registry's: unset is the
//! latest state, `0` any state, `NotOlderThan` (the default for other values)
//! the latest state (which is never older), `Exact` that very revision.
//!
//! # Where to start
//! [`Query::parse`], then the `*_options` methods.
//!
//! # Caveats
//! `sendInitialEvents` and `orphanDependents` are not read.

use std::collections::HashMap;
use std::time::Duration;

use skiff_api::printers::IncludeObject;
use skiff_api::status::{ApiError, Cause, Details, Reason};

use crate::object::FieldValidation;
use crate::registry::write::PatchType;
use crate::registry::{DeleteOptions, ListOptions, WatchOptions, WriteOptions};

/// How long a watch lasts when the client sets no `timeoutSeconds`: the
/// Kubernetes API server's `--min-request-timeout` default (it picks at
/// random between this and twice it).
pub(crate) const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The longest a field manager may be, as Kubernetes checks it.
const MAX_FIELD_MANAGER: usize = 128;

/// A request's query parameters (the last value of a repeated one wins).
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    /// Parses a URL's query string.
    pub(crate) fn parse(query: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// A parameter's value, "" when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// Whether a parameter is present, with or without a value (`?verbose`).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A boolean parameter, read as Go's `strconv.ParseBool`.
    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), "1" | "t" | "T" | "true" | "TRUE" | "True")
    }

    /// `?watch=true`.
    pub(crate) fn watch(&self) -> bool {
        self.flag("watch")
    }

    /// `?pretty=true`.
    pub(crate) fn pretty(&self) -> bool {
        self.flag("pretty")
    }

    /// An integer parameter, `None` when absent.
    pub(crate) fn integer(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "strconv.ParseInt: parsing {text:?}: invalid syntax (parameter {name})"
                ))
            }),
        }
    }

    /// `?includeObject=None|Metadata|Object` for Tables.
    pub(crate) fn include_object(&self) -> Result<IncludeObject, ApiError> {
        match self.get("includeObject") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(options_invalid(
                "TableOptions",
                "includeObject",
                "FieldValueNotSupported",
                format!("Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""),
            )),
        }
    }

    /// A list's options, checked as Kubernetes' `ValidateListOptions`.
    pub(crate) fn list_options(&self) -> Result<ListOptions, ApiError> {
        let rv = self.get("resourceVersion");
        let limit = self.integer("limit")?.unwrap_or(0);
        let continue_token = self.get("continue");
        let forbidden = |why: &str| {
            options_invalid(
                "ListOptions",
                "resourceVersionMatch",
                "FieldValueForbidden",
                format!("Forbidden: {why}"),
            )
        };
        let exact = match self.get("resourceVersionMatch") {
            "" => limit > 0 && rv != "0" && !rv.is_empty(),
            _ if rv.is_empty() => {
                return Err(forbidden(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ))
            }
            _ if !continue_token.is_empty() => {
                return Err(forbidden(
                    "resourceVersionMatch is forbidden when continue is provided",
                ))
            }
            "Exact" if rv == "0" => {
                return Err(forbidden(
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                ))
            }
            "Exact" => true,
            "NotOlderThan" => false,
            other => {
                return Err(options_invalid(
                    "ListOptions",
                    "resourceVersionMatch",
                    "FieldValueNotSupported",
                    format!("Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""),
                ))
            }
        };
        let resource_version = match rv {
            "" | "0" => rv.to_string(),
            _ if exact => rv.to_string(),
            // NotOlderThan: the latest state is never older.
            _ => String::new(),
        };
        Ok(ListOptions {
            label_selector: self.get("labelSelector").to_string(),
            field_selector: self.get("fieldSelector").to_string(),
            limit,
            continue_token: continue_token.to_string(),
            resource_version,
        })
    }

    /// A watch's options; `name` (a watch of one object) narrows the field selector.
    pub(crate) fn watch_options(&self, name: &str) -> Result<WatchOptions, ApiError> {
        if !self.get("resourceVersionMatch").is_empty() {
            return Err(options_invalid(
                "ListOptions",
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
            ));
        }
        let mut field_selector = self.get("fieldSelector").to_string();
        if !name.is_empty() {
            let by_name = format!("metadata.name={name}");
            field_selector = if field_selector.is_empty() {
                by_name
            } else {
                format!("{field_selector},{by_name}")
            };
        }
        Ok(WatchOptions {
            resource_version: self.get("resourceVersion").to_string(),
            label_selector: self.get("labelSelector").to_string(),
            field_selector,
            allow_watch_bookmarks: self.flag("allowWatchBookmarks"),
        })
    }

    /// How long a watch lasts.
    pub(crate) fn watch_timeout(&self) -> Result<Duration, ApiError> {
        Ok(match self.integer("timeoutSeconds")? {
            Some(seconds) if seconds > 0 => Duration::from_secs(seconds as u64),
            _ => DEFAULT_WATCH_TIMEOUT,
        })
    }

    /// `dryRun`: only `All` is a value.
    fn dry_run(&self, kind: &str) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            "" => Ok(false),
            "All" => Ok(true),
            other => Err(options_invalid(
                kind,
                "dryRun",
                "FieldValueNotSupported",
                format!("Unsupported value: [\"{other}\"]: supported values: \"All\""),
            )),
        }
    }

    /// The options of a create (`kind` "CreateOptions"), update
    /// ("UpdateOptions") or patch ("PatchOptions" with its patch type).
    /// Without `fieldManager`, a non-apply write is managed by the client's
    /// User-Agent up to its first '/' ("kubectl"), as Kubernetes derives it.
    pub(crate) fn write_options(
        &self,
        kind: &str,
        patch: Option<PatchType>,
        user_agent: &str,
    ) -> Result<WriteOptions, ApiError> {
        let field_validation = match self.get("fieldValidation") {
            "" | "Warn" => FieldValidation::Warn,
            "Strict" => FieldValidation::Strict,
            "Ignore" => FieldValidation::Ignore,
            other => {
                return Err(options_invalid(
                    kind,
                    "fieldValidation",
                    "FieldValueNotSupported",
                    format!("Unsupported value: {other:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""),
                ))
            }
        };
        let apply = patch == Some(PatchType::Apply);
        let force = self.flag("force");
        if force && !apply {
            return Err(options_invalid(
                kind,
                "force",
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch".into(),
            ));
        }
        let mut field_manager = self.get("fieldManager").to_string();
        if field_manager.is_empty() && apply {
            return Err(options_invalid(
                kind,
                "fieldManager",
                "FieldValueRequired",
                "Required value: is required for apply patch".into(),
            ));
        }
        if field_manager.is_empty() {
            field_manager = user_agent.split('/').next().unwrap_or("").to_string();
            field_manager.truncate(MAX_FIELD_MANAGER);
        }
        if field_manager.len() > MAX_FIELD_MANAGER {
            return Err(options_invalid(
                kind,
                "fieldManager",
                "FieldValueTooLong",
                format!("Too long: may not be more than {MAX_FIELD_MANAGER} bytes"),
            ));
        }
        Ok(WriteOptions {
            field_validation,
            dry_run: self.dry_run(kind)?,
            field_manager,
            force,
        })
    }

    /// A delete's options: the DeleteOptions body (JSON), with what the query
    /// gives for fields the body leaves unset.
    pub(crate) fn delete_options(&self, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut options = DeleteOptions::from_json(body)?;
        if options.grace_period_seconds.is_none() {
            options.grace_period_seconds = self.integer("gracePeriodSeconds")?;
        }
        if options.propagation_policy.is_none() && !self.get("propagationPolicy").is_empty() {
            options.propagation_policy = Some(self.get("propagationPolicy").to_string());
        }
        let body_dry_run = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .is_some_and(|b| {
                b["dryRun"]
                    .as_array()
                    .is_some_and(|d| d.contains(&"All".into()))
            });
        options.dry_run = body_dry_run || self.dry_run("DeleteOptions")?;
        Ok(options)
    }
}

/// 422 for bad request options, as Kubernetes words it:
/// `ListOptions.meta.k8s.io "" is invalid: <field>: <what>`.
fn options_invalid(kind: &str, field: &str, reason: &str, what: String) -> ApiError {
    let message = format!("{field}: {what}");
    ApiError {
        details: Some(Box::new(Details {
            group: "meta.k8s.io".into(),
            kind: kind.into(),
            causes: vec![Cause {
                reason: reason.into(),
                message: message.clone(),
                field: field.into(),
            }],
            ..Default::default()
        })),
        ..ApiError::new(
            Reason::Invalid,
            format!("{kind}.meta.k8s.io \"\" is invalid: {message}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Query {
        Query::parse(Some(text))
    }

    #[test]
    fn resource_version_match_needs_a_resource_version_and_no_continue() {
        let err = query("resourceVersionMatch=NotOlderThan")
            .list_options()
            .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        let err = query("resourceVersion=5&resourceVersionMatch=Exact&continue=abc")
            .list_options()
            .unwrap_err();
        assert!(err.message.ends_with("forbidden when continue is provided"));
        let err = query("resourceVersion=0&resourceVersionMatch=Exact")
            .list_options()
            .unwrap_err();
        assert!(err.message.ends_with("forbidden for resourceVersion \"0\""));
        let err = query("resourceVersion=5&resourceVersionMatch=Newest")
            .list_options()
            .unwrap_err();
        assert!(err.message.contains("Unsupported value: \"Newest\""));
    }

    #[test]
    fn resource_versions_map_onto_the_registry() {
        let rv = |q: &str| query(q).list_options().unwrap().resource_version;
        assert_eq!(rv(""), "");
        assert_eq!(rv("resourceVersion=0"), "0");
        assert_eq!(
            rv("resourceVersion=7"),
            "",
            "NotOlderThan is served as the latest"
        );
        assert_eq!(rv("resourceVersion=7&resourceVersionMatch=Exact"), "7");
        assert_eq!(
            rv("resourceVersion=7&limit=2"),
            "7",
            "paged lists are exact"
        );
        let options =
            query("labelSelector=app%3Dweb&fieldSelector=metadata.name%3Da&limit=3&continue=t")
                .list_options()
                .unwrap();
        assert_eq!(options.label_selector, "app=web");
        assert_eq!(options.field_selector, "metadata.name=a");
        assert_eq!(options.limit, 3);
        assert_eq!(options.continue_token, "t");
        assert_eq!(query("limit=x").list_options().unwrap_err().code, 400);
    }

    #[test]
    fn writes_take_their_manager_from_the_user_agent_unless_given() {
        let ua = "kubectl/v1.32.4 (linux/amd64) kubernetes/abc";
        let options = query("").write_options("CreateOptions", None, ua).unwrap();
        assert_eq!(options.field_manager, "kubectl");
        assert_eq!(options.field_validation, FieldValidation::Warn);
        let options = query("fieldManager=me&dryRun=All&fieldValidation=Strict")
            .write_options("CreateOptions", None, ua)
            .unwrap();
        assert_eq!(options.field_manager, "me");
        assert!(options.dry_run);
        assert_eq!(options.field_validation, FieldValidation::Strict);
        assert_eq!(
            query("dryRun=Some")
                .write_options("CreateOptions", None, ua)
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            query("fieldValidation=Loose")
                .write_options("CreateOptions", None, ua)
                .unwrap_err()
                .code,
            422
        );
    }

    #[test]
    fn apply_needs_a_field_manager_and_only_apply_may_force() {
        let err = query("")
            .write_options("PatchOptions", Some(PatchType::Apply), "kubectl/v1")
            .unwrap_err();
        assert_eq!(
            err.message,
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        let err = query("force=true")
            .write_options("PatchOptions", Some(PatchType::Merge), "kubectl/v1")
            .unwrap_err();
        assert!(err
            .message
            .ends_with("force: Forbidden: may not be specified for non-apply patch"));
        let options = query("force=true&fieldManager=ops")
            .write_options("PatchOptions", Some(PatchType::Apply), "")
            .unwrap();
        assert!(options.force);
    }

    #[test]
    fn delete_options_come_from_the_body_then_the_query() {
        let options = query("gracePeriodSeconds=0&propagationPolicy=Foreground&dryRun=All")
            .delete_options(b"")
            .unwrap();
        assert_eq!(options.grace_period_seconds, Some(0));
        assert_eq!(options.propagation_policy.as_deref(), Some("Foreground"));
        assert!(options.dry_run);
        let body = br#"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":5,"preconditions":{"uid":"u1"}}"#;
        let options = query("gracePeriodSeconds=0").delete_options(body).unwrap();
        assert_eq!(options.grace_period_seconds, Some(5));
        assert_eq!(options.preconditions.uid.as_deref(), Some("u1"));
    }

    #[test]
    fn a_watch_of_one_object_selects_it_by_name() {
        let options =
            query("fieldSelector=status.phase%3DRunning&watch=1&allowWatchBookmarks=true")
                .watch_options("web")
                .unwrap();
        assert_eq!(
            options.field_selector,
            "status.phase=Running,metadata.name=web"
        );
        assert!(options.allow_watch_bookmarks);
        assert!(query("watch=1").watch());
        assert_eq!(
            query("timeoutSeconds=5").watch_timeout().unwrap(),
            Duration::from_secs(5)
        );
    }
}
