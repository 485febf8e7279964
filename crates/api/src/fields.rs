//! Field selectors: the few fields of each kind that Kubernetes lets a list or
//! watch select on (`metadata.name`, `metadata.namespace`, and per kind ones such
//! as a pod's `spec.nodeName`, which is how a kubelet watches only its own pods).
//!
//! The syntax is apimachinery's `fields.ParseSelector`: terms joined by commas
//! (AND), each `field=value`, `field==value` or `field!=value`. A value may hold
//! `,`, `=` and `\` only escaped as `\,`, `\=` and `\\`. Then, as the API server
//! does with its per-kind field label conversion, each field must be one the
//! kind supports; the error texts are the ones Kubernetes returns for that kind.
//!
//! Matching reads the field from the object's JSON and compares strings, with
//! the value Kubernetes would put in the object's field set: an absent string
//! is `""`, an absent boolean `false` and an absent count `0`.
//! See <https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/>.
//!
//! # Layout
//! - [`FieldSelector`]: a parsed selector bound to a kind; [`FieldSelector::matches`]
//!   tests an object, [`FieldSelector::requires_exact_match`] lets a list be narrowed.
//! - [`FieldRequirement`] and [`FieldOperator`]: one term.
//! - [`field_value`]: the value of a selectable field in an object.
//!
//! # Where to start
//! [`FieldSelector::parse`], then `supported_fields`, the per-kind table.
//!
//! # Caveats
//! Set-based operators do not exist for fields (Kubernetes has none either).
//! A ReplicaSet's `status.replicas` is selectable here as the ReplicaSet
//! registry lists it.

use std::fmt;

use serde_json::Value;

/// How a [`FieldRequirement`] compares the field with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field, such as `spec.nodeName` (after aliases: a pod's `spec.host` is `spec.nodeName`).
    pub field: String,
    /// Equal or not equal.
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

/// A parsed field selector for one kind; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    kind: String,
    requirements: Vec<FieldRequirement>,
}

/// The type of a selectable field, which decides what an absent field reads as.
#[derive(Clone, Copy, PartialEq)]
enum FieldType {
    Text,
    Bool,
    Count,
}

/// Which text Kubernetes returns for an unsupported field: most core kinds
/// share one message, Jobs have their own, and kinds without a conversion
/// function use apimachinery's default.
#[derive(Clone, Copy)]
enum Rejection {
    Core,
    Job,
    MetadataOnly,
}

const METADATA: &[(&str, FieldType)] = &[
    ("metadata.name", FieldType::Text),
    ("metadata.namespace", FieldType::Text),
];

/// The fields `kind` can be selected on, and how it rejects others.
fn supported_fields(kind: &str) -> (Vec<(&'static str, FieldType)>, Rejection) {
    use FieldType::*;
    let extra: &[(&str, FieldType)] = match kind {
        "Pod" => &[
            ("spec.nodeName", Text),
            ("spec.restartPolicy", Text),
            ("spec.schedulerName", Text),
            ("spec.serviceAccountName", Text),
            ("spec.hostNetwork", Bool),
            ("status.phase", Text),
            ("status.podIP", Text),
            ("status.podIPs", Text),
            ("status.nominatedNodeName", Text),
        ],
        // Cluster-scoped kinds with their own conversion: no metadata.namespace.
        "Node" => {
            return (
                vec![("metadata.name", Text), ("spec.unschedulable", Bool)],
                Rejection::Core,
            )
        }
        "Namespace" => {
            return (
                vec![("metadata.name", Text), ("status.phase", Text)],
                Rejection::Core,
            )
        }
        "Secret" => &[("type", Text)],
        "Service" => &[("spec.clusterIP", Text), ("spec.type", Text)],
        "Event" => &[
            ("involvedObject.kind", Text),
            ("involvedObject.namespace", Text),
            ("involvedObject.name", Text),
            ("involvedObject.uid", Text),
            ("involvedObject.apiVersion", Text),
            ("involvedObject.resourceVersion", Text),
            ("involvedObject.fieldPath", Text),
            ("reason", Text),
            ("reportingComponent", Text),
            ("source", Text),
            ("type", Text),
        ],
        "ReplicaSet" => &[("status.replicas", Count)],
        "Job" => {
            let mut fields = METADATA.to_vec();
            fields.push(("status.successful", Count));
            return (fields, Rejection::Job);
        }
        _ => return (METADATA.to_vec(), Rejection::MetadataOnly),
    };
    let mut fields = METADATA.to_vec();
    fields.extend_from_slice(extra);
    (fields, Rejection::Core)
}

fn rejection_message(style: Rejection, field: &str) -> String {
    match style {
        Rejection::Core => format!("field label not supported: {field}"),
        Rejection::Job => format!("field label {} not supported for batchv1.Job", quote(field)),
        Rejection::MetadataOnly => format!(
            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            quote(field)
        ),
    }
}

impl FieldSelector {
    /// Parses a selector for objects of `kind`; a field the kind does not
    /// support is an error naming it, as Kubernetes' BadRequest.
    pub fn parse(kind: &str, selector: &str) -> Result<FieldSelector, String> {
        let (supported, rejection) = supported_fields(kind);
        let mut terms = split_terms(selector);
        // Kubernetes sorts the terms before parsing, which makes the printed form canonical.
        terms.sort();
        let mut requirements = Vec::new();
        for term in terms.iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw_value)) = split_term(term) else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{term}'"
                ));
            };
            let value = unescape_value(raw_value)?;
            // Old clients send a pod's node as `spec.host`.
            let field = if kind == "Pod" && field == "spec.host" {
                "spec.nodeName"
            } else {
                field
            };
            if !supported.iter().any(|(name, _)| *name == field) {
                return Err(rejection_message(rejection, field));
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector {
            kind: kind.to_string(),
            requirements,
        })
    }

    /// Whether `object` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let have = field_value(&self.kind, &r.field, object);
            match r.operator {
                FieldOperator::Equals => have == r.value,
                FieldOperator::NotEquals => have != r.value,
            }
        })
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The terms, all of which must hold.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// The value this selector pins `field` to with `=`, if any: the API server
    /// uses it to narrow a list to one name (`metadata.name=x`) or namespace.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

/// The value of `field` in `object` as Kubernetes' field set for `kind` holds it.
pub(crate) fn field_value(kind: &str, field: &str, object: &Value) -> String {
    match (kind, field) {
        ("Pod", "status.podIP") => {
            // The first of status.podIPs, as the pod registry does; older objects carry only podIP.
            let first = object
                .pointer("/status/podIPs/0/ip")
                .and_then(Value::as_str);
            let single = object.pointer("/status/podIP").and_then(Value::as_str);
            return first.or(single).unwrap_or_default().to_string();
        }
        // Accepted by the conversion but not in the pod's field set, so it always reads empty.
        ("Pod", "status.podIPs") => return String::new(),
        ("Event", "source") => {
            let component = object
                .pointer("/source/component")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !component.is_empty() {
                return component.to_string();
            }
            return object
                .get("reportingComponent")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
        }
        _ => {}
    }
    let field_type = supported_fields(kind)
        .0
        .into_iter()
        .find(|(name, _)| *name == field)
        .map(|(_, t)| t)
        .unwrap_or(FieldType::Text);
    let pointer = format!("/{}", field.replace('.', "/"));
    match object.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => match field_type {
            FieldType::Text => String::new(),
            FieldType::Bool => "false".to_string(),
            FieldType::Count => "0".to_string(),
        },
    }
}

/// Escapes `\`, `,` and `=` in a value, as a selector's text needs them.
pub(crate) fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Undoes `\\`, `\,` and `\=`; any other escape, or a bare `,` or `=`, is an error.
fn unescape_value(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '=' {
            // apimachinery prints the rune as its number here.
            return Err(format!(
                "invalid field selector: unescaped character in value: {}",
                c as u32
            ));
        } else {
            out.push(c);
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// Splits at commas that are not escaped; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<String> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in selector.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    terms.push(current);
    terms
}

/// Splits `field<op>value` at the first unescaped operator, trying `!=`, `==`, `=`.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    let mut chars = term.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
            continue;
        }
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if rest.starts_with(op) {
                return Some((&term[..i], operator, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"nodeName": "node-a", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "podIP": "10.0.0.7"}
        })
    }

    fn selects(kind: &str, selector: &str, object: &Value) -> bool {
        FieldSelector::parse(kind, selector)
            .unwrap_or_else(|e| panic!("{selector:?} should parse: {e}"))
            .matches(object)
    }

    #[test]
    fn empty_selector_selects_everything() {
        let s = FieldSelector::parse("Pod", "").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&json!({})));
    }

    #[test]
    fn equality_and_inequality_on_pod_fields() {
        let p = pod();
        assert!(selects("Pod", "spec.nodeName=node-a", &p));
        assert!(selects("Pod", "spec.nodeName==node-a", &p));
        assert!(!selects("Pod", "spec.nodeName!=node-a", &p));
        assert!(selects(
            "Pod",
            "status.phase!=Pending,metadata.namespace=prod",
            &p
        ));
        assert!(!selects(
            "Pod",
            "status.phase=Running,metadata.name=other",
            &p
        ));
        assert!(selects("Pod", "status.podIP=10.0.0.7", &p));
        assert!(
            selects("Pod", "spec.host=node-a", &p),
            "spec.host is the old name of spec.nodeName"
        );
        assert!(
            selects("Pod", "status.nominatedNodeName=", &p),
            "absent strings read as empty"
        );
    }

    #[test]
    fn unscheduled_pods_have_an_empty_node_name() {
        let p = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(selects("Pod", "spec.nodeName=", &p));
        assert!(!selects("Pod", "spec.nodeName!=", &p));
    }

    #[test]
    fn booleans_and_counts_read_as_kubernetes_prints_them() {
        let p = pod();
        assert!(
            selects("Pod", "spec.hostNetwork=false", &p),
            "absent booleans are false"
        );
        assert!(selects(
            "Pod",
            "spec.hostNetwork=true",
            &json!({"spec": {"hostNetwork": true}})
        ));
        assert!(selects(
            "Node",
            "spec.unschedulable=false",
            &json!({"metadata": {"name": "n"}})
        ));
        assert!(selects(
            "Node",
            "spec.unschedulable=true",
            &json!({"spec": {"unschedulable": true}})
        ));
        assert!(selects(
            "Job",
            "status.successful=0",
            &json!({"status": {}})
        ));
        assert!(selects(
            "Job",
            "status.successful=3",
            &json!({"status": {"successful": 3}})
        ));
        assert!(selects(
            "ReplicaSet",
            "status.replicas=2",
            &json!({"status": {"replicas": 2}})
        ));
    }

    #[test]
    fn kind_specific_fields() {
        assert!(selects("Secret", "type=Opaque", &json!({"type": "Opaque"})));
        assert!(selects(
            "Namespace",
            "status.phase=Active",
            &json!({"status": {"phase": "Active"}})
        ));
        assert!(selects(
            "Service",
            "spec.clusterIP=None,spec.type=ClusterIP",
            &json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}})
        ));
        let event = json!({
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "prod", "uid": "u1"},
            "reason": "Scheduled", "type": "Normal", "reportingComponent": "default-scheduler",
            "source": {}
        });
        assert!(selects(
            "Event",
            "involvedObject.kind=Pod,involvedObject.name=web-1,involvedObject.uid=u1",
            &event
        ));
        assert!(selects(
            "Event",
            "reason=Scheduled,type=Normal,reportingComponent=default-scheduler",
            &event
        ));
        assert!(
            selects("Event", "source=default-scheduler", &event),
            "source falls back to the reporting component"
        );
        let kubelet = json!({"source": {"component": "kubelet"}, "reportingComponent": "x"});
        assert!(selects("Event", "source=kubelet", &kubelet));
    }

    #[test]
    fn unsupported_fields_are_rejected_in_kubernetes_words() {
        let err = |kind: &str, s: &str| FieldSelector::parse(kind, s).unwrap_err();
        assert_eq!(
            err("Pod", "spec.foo=x"),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            err("Node", "metadata.namespace=x"),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            err("Job", "spec.x=1"),
            "field label \"spec.x\" not supported for batchv1.Job"
        );
        assert_eq!(
            err("ConfigMap", "data.x=1"),
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert!(FieldSelector::parse("PriorityClass", "metadata.name=high").is_ok());
        assert!(FieldSelector::parse("Deployment", "status.replicas=1").is_err());
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            FieldSelector::parse("Pod", "spec.nodeName").unwrap_err(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"
        );
        assert_eq!(
            FieldSelector::parse("Pod", "spec.nodeName=a=b").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("Pod", "spec.nodeName=a\\x").unwrap_err(),
            "invalid field selector: invalid escape sequence: \\x"
        );
    }

    #[test]
    fn escapes_let_values_hold_commas_and_equals() {
        let s = FieldSelector::parse("Event", "reason=a\\,b\\=c\\\\d").unwrap();
        assert_eq!(s.requirements()[0].value, "a,b=c\\d");
        assert!(s.matches(&json!({"reason": "a,b=c\\d"})));
        assert_eq!(s.to_string(), "reason=a\\,b\\=c\\\\d");
        assert_eq!(FieldSelector::parse("Event", &s.to_string()).unwrap(), s);
    }

    #[test]
    fn display_is_sorted_and_exact_matches_are_found() {
        let s = FieldSelector::parse(
            "Pod",
            "status.phase!=Failed,metadata.namespace==prod,metadata.name=web",
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "metadata.name=web,metadata.namespace=prod,status.phase!=Failed"
        );
        assert_eq!(s.requires_exact_match("metadata.name"), Some("web"));
        assert_eq!(s.requires_exact_match("metadata.namespace"), Some("prod"));
        assert_eq!(s.requires_exact_match("status.phase"), None);
    }
}
