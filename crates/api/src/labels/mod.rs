//! Label selectors, equality- and set-based, as `kubectl -l` takes them and as
//! a Deployment's or Service's `selector` holds them.
//!
//! A selector is a list of requirements that must all hold (comma = AND):
//!
//! | text              | holds when the object's labels …           |
//! |-------------------|--------------------------------------------|
//! | `k=v`, `k==v`     | have `k` with value `v`                    |
//! | `k!=v`            | lack `k`, or have it with another value    |
//! | `k in (a,b)`      | have `k` with value `a` or `b`             |
//! | `k notin (a,b)`   | lack `k`, or have it with neither value    |
//! | `k`               | have `k`                                   |
//! | `!k`              | lack `k`                                   |
//! | `k>5`, `k<5`      | have `k` with an integer above / below 5   |
//!
//! Parsing follows apimachinery's `labels.Parse`: a lexer splits the text at
//! whitespace and the symbols `= ! ( ) , < >`; the words `in` and `notin` are
//! operators after a key but plain values inside `( )`; keys must be
//! qualified names and values valid label values. Requirements are kept
//! sorted by key and values sorted, so [`LabelSelector`]'s `Display` is the
//! canonical form Kubernetes prints. See
//! <https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors>.
//!
//! # Layout
//! - [`LabelSelector`]: a parsed selector (from text, a `metav1.LabelSelector`
//!   object, or a plain label map) that matches label sets.
//! - [`Requirement`] and [`Operator`]: one condition of a selector.
//! - `parser`: the lexer and recursive-descent parser behind [`LabelSelector::parse`].
//!
//! # Where to start
//! [`LabelSelector::parse`] for `?labelSelector=` queries,
//! [`LabelSelector::from_json`] for the `selector` of a Deployment, ReplicaSet or Job.
//!
//! # Caveats
//! Error texts are Kubernetes' own, including the `<nil>:` that apimachinery
//! prints before a bad key (its field path is empty there).
//! The `>`/`<` operators are accepted, as apimachinery accepts them, though
//! `kubectl` documentation rarely mentions them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::names;

mod parser;

/// How a [`Requirement`] relates its key to its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `k=v`.
    Equals,
    /// `k==v` (the same as `=`).
    DoubleEquals,
    /// `k!=v`.
    NotEquals,
    /// `k in (a,b)`.
    In,
    /// `k notin (a,b)`.
    NotIn,
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
    /// `k>5`.
    GreaterThan,
    /// `k<5`.
    LessThan,
}

/// One condition of a selector: a key, an operator and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, checking it as apimachinery's `NewRequirement`
    /// does: a valid key, the right number of values for the operator, and
    /// valid label values. Values are sorted and deduplicated.
    pub(crate) fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, String> {
        let mut values = values;
        values.sort();
        values.dedup();
        let mut errs = Vec::new();
        let key_errs = names::qualified_name(key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "key: Invalid value: {}: {}",
                quote(key),
                key_errs.join("; ")
            ));
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(format!(
                "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                go_string_slice(&values)
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
                errs.push(format!(
                    "values: Invalid value: {}: exact-match compatibility requires one single value",
                    go_string_slice(&values)
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(format!(
                "values: Invalid value: {}: values set must be empty for exists and does not exist",
                go_string_slice(&values)
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            quote(v)
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = names::label_value(v);
            if !value_errs.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    quote(v),
                    value_errs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted (empty for `Exists` and `DoesNotExist`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether labels satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.values.contains(v))
            }
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.values.join(",");
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={values}", self.key),
            Operator::DoubleEquals => write!(f, "{}=={values}", self.key),
            Operator::NotEquals => write!(f, "{}!={values}", self.key),
            Operator::GreaterThan => write!(f, "{}>{values}", self.key),
            Operator::LessThan => write!(f, "{}<{values}", self.key),
            Operator::In => write!(f, "{} in ({values})", self.key),
            Operator::NotIn => write!(f, "{} notin ({values})", self.key),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Set for the selector of a null `metav1.LabelSelector`, which selects nothing.
    nothing: bool,
}

impl LabelSelector {
    /// Parses `app=web,tier in (a,b),!canary`; the error names what is wrong,
    /// in Kubernetes' words (`unable to parse requirement: …`, `found '…', expected: …`).
    pub fn parse(selector: &str) -> Result<LabelSelector, String> {
        let mut requirements = parser::parse(selector)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// The selector that matches exactly these labels (`k=v` for each), as
    /// a Service's or ReplicationController's map selector.
    pub fn from_map(labels: &BTreeMap<String, String>) -> LabelSelector {
        let requirements = labels
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Converts a `metav1.LabelSelector` object (`matchLabels` and
    /// `matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`), as
    /// apimachinery's `LabelSelectorAsSelector`: `null` selects nothing, `{}`
    /// selects everything.
    pub fn from_json(selector: &Value) -> Result<LabelSelector, String> {
        if selector.is_null() {
            return Ok(LabelSelector::nothing());
        }
        let typed =
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector::deserialize(selector)
                .map_err(|e| format!("invalid label selector: {e}"))?;
        let mut requirements = Vec::new();
        for (key, value) in typed.match_labels.unwrap_or_default() {
            requirements.push(Requirement::new(&key, Operator::Equals, vec![value])?);
        }
        for expression in typed.match_expressions.unwrap_or_default() {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(format!(
                        "{} is not a valid label selector operator",
                        quote(other)
                    ))
                }
            };
            let values = expression.values.unwrap_or_default();
            requirements.push(Requirement::new(&expression.key, operator, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// The selector that matches nothing (what a null `metav1.LabelSelector` means).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// The requirements, sorted by key; all must hold.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The single value this selector requires `key` to have, if it pins one
    /// (`key=v`, `key==v` or `key in (v)`), as apimachinery's `RequiresExactMatch`.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == key)?;
        match requirement.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In
                if requirement.values.len() == 1 =>
            {
                Some(&requirement.values[0])
            }
            _ => None,
        }
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether this selector selects everything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this selector selects nothing at all.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// A string as Go's `%q` prints it (close enough: JSON escaping).
pub(crate) fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// A string list as Go's `%#v` prints a `[]string`.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
        LabelSelector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector:?} should parse: {e}"))
            .matches(&labels(pairs))
    }

    #[test]
    fn empty_selector_selects_everything() {
        let s = LabelSelector::parse("  ").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[])));
        assert_eq!(s.to_string(), "");
    }

    #[test]
    fn equality_requirements() {
        assert!(selects("app=web", &[("app", "web")]));
        assert!(selects("app==web", &[("app", "web")]));
        assert!(!selects("app=web", &[("app", "db")]));
        assert!(!selects("app=web", &[]));
        assert!(selects("app!=web", &[("app", "db")]));
        assert!(selects("app!=web", &[]), "!= holds when the key is absent");
        assert!(!selects("app!=web", &[("app", "web")]));
        assert!(
            selects("app=", &[("app", "")]),
            "a missing value is the empty value"
        );
    }

    #[test]
    fn set_requirements() {
        assert!(selects("tier in (a,b)", &[("tier", "b")]));
        assert!(!selects("tier in (a,b)", &[("tier", "c")]));
        assert!(!selects("tier in (a,b)", &[]));
        assert!(selects("tier notin (a,b)", &[("tier", "c")]));
        assert!(selects("tier notin (a,b)", &[]));
        assert!(!selects("tier notin (a,b)", &[("tier", "a")]));
        assert!(
            selects("x in (in, notin)", &[("x", "notin")]),
            "keywords are values inside ()"
        );
        assert!(selects("x in ()", &[("x", "")]));
        assert_eq!(
            LabelSelector::parse("x in (,a)").unwrap().requirements()[0].values(),
            ["", "a"]
        );
        assert_eq!(
            LabelSelector::parse("x in (a,,b)").unwrap().requirements()[0].values(),
            ["", "a", "b"]
        );
    }

    #[test]
    fn existence_requirements() {
        assert!(selects("canary", &[("canary", "")]));
        assert!(!selects("canary", &[]));
        assert!(selects("!canary", &[]));
        assert!(!selects("!canary", &[("canary", "yes")]));
    }

    #[test]
    fn numeric_requirements() {
        assert!(selects("gen>5", &[("gen", "6")]));
        assert!(!selects("gen>5", &[("gen", "5")]));
        assert!(!selects("gen>5", &[("gen", "x")]));
        assert!(selects("gen<5", &[("gen", "-1")]));
        assert!(LabelSelector::parse("gen>x")
            .unwrap_err()
            .contains("the value must be an integer"));
    }

    #[test]
    fn commas_and_all_requirements_must_hold() {
        let s = "app=web, tier in (a, b) ,!canary";
        assert!(selects(s, &[("app", "web"), ("tier", "a")]));
        assert!(!selects(
            s,
            &[("app", "web"), ("tier", "a"), ("canary", "")]
        ));
        assert!(!selects(s, &[("app", "db"), ("tier", "a")]));
    }

    #[test]
    fn display_is_canonical_sorted_by_key_and_value() {
        let s = LabelSelector::parse("z notin (b,a), a in (y,x),b!=c,!d,e,f==g,n>3").unwrap();
        assert_eq!(s.to_string(), "a in (x,y),b!=c,!d,e,f==g,n>3,z notin (a,b)");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn parse_errors_are_kubernetes_texts() {
        let err = |s: &str| LabelSelector::parse(s).unwrap_err();
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(
            err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(
            err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert!(err("a/b/c=d").starts_with("unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist"));
        assert!(err("app=-x").starts_with("unable to parse requirement: values[0][app]: Invalid value: \"-x\": a valid label must be"));
        let long = format!("app={}", "v".repeat(64));
        assert_eq!(
            err(&long),
            format!("unable to parse requirement: values[0][app]: Invalid value: \"{}\": must be no more than 63 characters", "v".repeat(64))
        );
    }

    #[test]
    fn keys_may_carry_a_dns_prefix() {
        assert!(selects(
            "app.kubernetes.io/name=web",
            &[("app.kubernetes.io/name", "web")]
        ));
        assert!(LabelSelector::parse("Bad_/x=y").is_err());
    }

    #[test]
    fn from_json_converts_match_labels_and_expressions() {
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,!canary,env notin (prod),owner,tier in (a,b)"
        );
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("owner", "me")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert_eq!(s.requires_exact_match("app"), Some("web"));
        assert_eq!(s.requires_exact_match("tier"), None);
    }

    #[test]
    fn from_json_null_selects_nothing_and_empty_selects_everything() {
        let nothing = LabelSelector::from_json(&Value::Null).unwrap();
        assert!(nothing.matches_nothing());
        assert!(!nothing.matches(&labels(&[])));
        let everything = LabelSelector::from_json(&json!({})).unwrap();
        assert!(everything.is_empty());
        assert!(everything.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn from_json_rejects_bad_operators_and_values() {
        let err = LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Equals"}]}),
        )
        .unwrap_err();
        assert_eq!(err, "\"Equals\" is not a valid label selector operator");
        let err = LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        )
        .unwrap_err();
        assert_eq!(err, "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty");
        let err = LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        )
        .unwrap_err();
        assert!(err.ends_with("values set must be empty for exists and does not exist"));
        let err = LabelSelector::from_json(&json!({"matchLabels": {"a b": "c"}})).unwrap_err();
        assert!(err.starts_with("key: Invalid value: \"a b\": name part must consist"));
        assert!(LabelSelector::from_json(&json!({"matchLabels": "x"}))
            .unwrap_err()
            .starts_with("invalid label selector"));
    }

    #[test]
    fn from_map_selects_exactly_those_labels() {
        let s = LabelSelector::from_map(&labels(&[("app", "web"), ("tier", "fe")]));
        assert_eq!(s.to_string(), "app=web,tier=fe");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
    }
}
