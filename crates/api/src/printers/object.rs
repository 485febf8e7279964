//! Reading fields of an object's JSON for a cell: a missing field reads as
//! empty, zero or `None`, as Go's zero values read in Kubernetes' printers.
//! Shared with the CLI's `describe`, which reads the same fields.

use serde_json::Value;

/// The value at `path`, if every step exists.
pub fn at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(object, |v, key| v.get(*key))
}

/// The string at `path`, or empty.
pub fn text(object: &Value, path: &[&str]) -> String {
    at(object, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The integer at `path`, or 0.
pub fn int(object: &Value, path: &[&str]) -> i64 {
    at(object, path).and_then(Value::as_i64).unwrap_or_default()
}

/// The number of entries of the object or array at `path`, or 0.
pub fn len(object: &Value, path: &[&str]) -> usize {
    match at(object, path) {
        Some(Value::Object(map)) => map.len(),
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    }
}

/// The items of the array at `path`, or none.
pub fn items<'a>(object: &'a Value, path: &[&str]) -> &'a [Value] {
    at(object, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `<none>` for an empty cell, as Kubernetes' printers fill one.
pub fn or_none(cell: String) -> String {
    if cell.is_empty() {
        "<none>".into()
    } else {
        cell
    }
}

/// `k=v,k=v` of a label map at `path`, keys sorted (apimachinery's
/// `labels.FormatLabels` without its `<none>`).
pub fn label_list(object: &Value, path: &[&str]) -> String {
    let Some(Value::Object(map)) = at(object, path) else {
        return String::new();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// A `metav1.LabelSelector` at `path` as a selector string: its matchLabels
/// (`k=v`) and matchExpressions (`k in (a,b)`, `k notin (a)`, `k`, `!k`),
/// sorted by key, as `LabelSelectorAsSelector(…).String()` writes them.
pub fn label_selector(object: &Value, path: &[&str]) -> String {
    let Some(selector) = at(object, path) else {
        return String::new();
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(labels)) = selector.get("matchLabels") {
        for (key, value) in labels {
            let value = value.as_str().unwrap_or_default();
            requirements.push((key.clone(), format!("{key}={value}")));
        }
    }
    for expression in items(selector, &["matchExpressions"]) {
        let key = text(expression, &["key"]);
        let mut values: Vec<String> = items(expression, &["values"])
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        values.sort();
        let shown = match text(expression, &["operator"]).as_str() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        requirements.push((key, shown));
    }
    requirements.sort();
    let shown: Vec<String> = requirements.into_iter().map(|(_, r)| r).collect();
    shown.join(",")
}
