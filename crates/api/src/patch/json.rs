//! JSON patch (RFC 6902): a list of operations (`add`, `remove`, `replace`,
//! `move`, `copy`, `test`) addressed by JSON Pointers (RFC 6901: `/spec/ports/0`,
//! `~1` for `/` and `~0` for `~` inside a name, `-` for "after the last element").
//! A JSON patch applies atomically: if any operation fails the target is left
//! as it was, and the error names the operation's index, kind and path.

use serde_json::Value;

/// Applies a JSON patch (a list of add/remove/replace/move/copy/test operations)
/// to `target`; on error `target` is unchanged and the error names the failing operation.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Array(operations) = patch else {
        return Err("a JSON patch must be a list of operations".to_string());
    };
    let mut document = target.clone();
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(&mut document, operation).map_err(|e| match e {
            OpError::Malformed(reason) => format!("JSON patch operation {index}: {reason}"),
            OpError::At { op, path, reason } => {
                format!("JSON patch operation {index} ({op} at \"{path}\"): {reason}")
            }
        })?;
    }
    *target = document;
    Ok(())
}

enum OpError {
    /// The operation itself is not well formed.
    Malformed(String),
    /// The operation failed at a path.
    At {
        op: String,
        path: String,
        reason: String,
    },
}

fn apply_operation(document: &mut Value, operation: &Value) -> Result<(), OpError> {
    let Value::Object(fields) = operation else {
        return Err(OpError::Malformed("an operation must be an object".into()));
    };
    let op = fields
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| OpError::Malformed("missing \"op\"".into()))?;
    let path = fields
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| OpError::Malformed(format!("{op}: missing \"path\"")))?;
    let at = |reason: String| OpError::At {
        op: op.to_string(),
        path: path.to_string(),
        reason,
    };
    let value = || {
        fields
            .get("value")
            .cloned()
            .ok_or_else(|| at("missing \"value\"".into()))
    };
    let from = || {
        fields
            .get("from")
            .and_then(Value::as_str)
            .ok_or_else(|| at("missing \"from\"".into()))
    };
    let tokens = parse_pointer(path).map_err(at)?;
    match op {
        "add" => add(document, &tokens, value()?).map_err(at),
        "remove" => remove(document, &tokens).map(drop).map_err(at),
        "replace" => {
            let value = value()?;
            let slot = get_mut(document, &tokens).map_err(at)?;
            *slot = value;
            Ok(())
        }
        "move" => {
            let from = from()?;
            let from_tokens = parse_pointer(from).map_err(at)?;
            if from_tokens == tokens {
                return get_mut(document, &tokens).map(drop).map_err(at);
            }
            if tokens.len() > from_tokens.len() && tokens[..from_tokens.len()] == from_tokens[..] {
                return Err(at(format!(
                    "cannot move \"{from}\" into one of its own children"
                )));
            }
            let moved =
                remove(document, &from_tokens).map_err(|e| at(format!("from \"{from}\": {e}")))?;
            add(document, &tokens, moved).map_err(at)
        }
        "copy" => {
            let from = from()?;
            let from_tokens = parse_pointer(from).map_err(at)?;
            let copied = get(document, &from_tokens)
                .map_err(|e| at(format!("from \"{from}\": {e}")))?
                .clone();
            add(document, &tokens, copied).map_err(at)
        }
        "test" => {
            let expected = value()?;
            let actual = get(document, &tokens).map_err(at)?;
            if json_equal(actual, &expected) {
                Ok(())
            } else {
                Err(at(format!(
                    "test failed: the value is {actual}, not {expected}"
                )))
            }
        }
        other => Err(OpError::Malformed(format!("unknown op \"{other}\""))),
    }
}

/// Splits a JSON Pointer into its reference tokens (RFC 6901); "" is the whole document.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("a JSON pointer must be empty or start with '/'".into());
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(format!(
                            "bad escape in \"{token}\": '~' must be followed by '0' or '1'"
                        ))
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// An existing array index: digits only, no leading zero, below `len`.
fn array_index(token: &str, len: usize) -> Result<usize, String> {
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    let index = if valid {
        token.parse::<usize>().ok()
    } else {
        None
    };
    match index {
        Some(i) if i < len => Ok(i),
        Some(i) => Err(format!("index {i} is out of range for a list of {len}")),
        None => Err(format!("\"{token}\" is not a list index")),
    }
}

fn get<'a>(document: &'a Value, tokens: &[String]) -> Result<&'a Value, String> {
    let mut current = document;
    for token in tokens {
        current = match current {
            Value::Object(map) => map
                .get(token)
                .ok_or_else(|| format!("no member \"{token}\""))?,
            Value::Array(items) => &items[array_index(token, items.len())?],
            _ => {
                return Err(format!(
                    "cannot look up \"{token}\" in a {}",
                    type_name(current)
                ))
            }
        };
    }
    Ok(current)
}

fn get_mut<'a>(document: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, String> {
    let mut current = document;
    for token in tokens {
        let kind = type_name(current);
        current = match current {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| format!("no member \"{token}\""))?,
            Value::Array(items) => {
                let i = array_index(token, items.len())?;
                &mut items[i]
            }
            _ => return Err(format!("cannot look up \"{token}\" in a {kind}")),
        };
    }
    Ok(current)
}

fn add(document: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        *document = value;
        return Ok(());
    };
    let parent = get_mut(document, parent_tokens)?;
    match parent {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
            } else {
                // Inserting at `len` appends, so the index may equal the length.
                let i = array_index(last, items.len() + 1)?;
                items.insert(i, value);
            }
            Ok(())
        }
        other => Err(format!("cannot add \"{last}\" to a {}", type_name(other))),
    }
}

fn remove(document: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    let parent = get_mut(document, parent_tokens)?;
    match parent {
        Value::Object(map) => map
            .remove(last)
            .ok_or_else(|| format!("no member \"{last}\"")),
        Value::Array(items) => {
            let i = array_index(last, items.len())?;
            Ok(items.remove(i))
        }
        other => Err(format!(
            "cannot remove \"{last}\" from a {}",
            type_name(other)
        )),
    }
}

/// JSON equality as RFC 6902's `test` defines it: numbers compare by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y)) if x == y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(target: Value, patch: Value) -> Result<Value, String> {
        let mut target = target;
        json_patch(&mut target, &patch)?;
        Ok(target)
    }

    #[test]
    fn add_sets_members_inserts_and_appends() {
        let doc = json!({"spec": {"ports": [1, 3]}});
        let got = patched(
            doc,
            json!([
                {"op": "add", "path": "/spec/ports/1", "value": 2},
                {"op": "add", "path": "/spec/ports/-", "value": 4},
                {"op": "add", "path": "/spec/ports/4", "value": 5},
                {"op": "add", "path": "/spec/type", "value": "NodePort"},
                {"op": "add", "path": "/metadata", "value": {"name": "x"}}
            ]),
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"spec": {"ports": [1, 2, 3, 4, 5], "type": "NodePort"}, "metadata": {"name": "x"}})
        );
        assert_eq!(
            patched(
                json!({"a": 1}),
                json!([{"op": "add", "path": "", "value": [1]}])
            )
            .unwrap(),
            json!([1])
        );
    }

    #[test]
    fn remove_and_replace_need_an_existing_target() {
        let doc = json!({"a": {"b": 1, "c": [1, 2]}});
        let got = patched(
            doc.clone(),
            json!([
                {"op": "remove", "path": "/a/b"},
                {"op": "replace", "path": "/a/c/0", "value": 9}
            ]),
        )
        .unwrap();
        assert_eq!(got, json!({"a": {"c": [9, 2]}}));
        let err = patched(doc.clone(), json!([{"op": "remove", "path": "/a/x"}])).unwrap_err();
        assert_eq!(
            err,
            "JSON patch operation 0 (remove at \"/a/x\"): no member \"x\""
        );
        let err = patched(
            doc.clone(),
            json!([{"op": "replace", "path": "/a/c/2", "value": 0}]),
        )
        .unwrap_err();
        assert_eq!(err, "JSON patch operation 0 (replace at \"/a/c/2\"): index 2 is out of range for a list of 2");
        assert!(patched(doc.clone(), json!([{"op": "remove", "path": "/a/c/-"}])).is_err());
        assert!(
            patched(doc, json!([{"op": "remove", "path": "/a/c/01"}])).is_err(),
            "no leading zeros"
        );
    }

    #[test]
    fn move_and_copy() {
        let doc = json!({"a": {"b": 1}, "l": [1, 2, 3]});
        let got = patched(
            doc.clone(),
            json!([
                {"op": "move", "from": "/a/b", "path": "/c"},
                {"op": "copy", "from": "/l/0", "path": "/l/-"},
                {"op": "move", "from": "/l/0", "path": "/l/2"}
            ]),
        )
        .unwrap();
        assert_eq!(got, json!({"a": {}, "c": 1, "l": [2, 3, 1, 1]}));
        let err =
            patched(doc, json!([{"op": "move", "from": "/a", "path": "/a/b/c"}])).unwrap_err();
        assert!(
            err.contains("cannot move \"/a\" into one of its own children"),
            "{err}"
        );
    }

    #[test]
    fn test_compares_values_and_numbers_by_value() {
        let doc = json!({"n": 1, "o": {"x": [1, "a"]}});
        assert!(patched(
            doc.clone(),
            json!([{"op": "test", "path": "/n", "value": 1.0}])
        )
        .is_ok());
        assert!(patched(
            doc.clone(),
            json!([{"op": "test", "path": "/o", "value": {"x": [1, "a"]}}])
        )
        .is_ok());
        let err = patched(doc, json!([{"op": "test", "path": "/n", "value": 2}])).unwrap_err();
        assert_eq!(
            err,
            "JSON patch operation 0 (test at \"/n\"): test failed: the value is 1, not 2"
        );
    }

    #[test]
    fn pointer_escapes_name_slashes_and_tildes() {
        let doc = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web", "a~b": "x"}}});
        let got = patched(doc, json!([
            {"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "db"},
            {"op": "remove", "path": "/metadata/labels/a~0b"}
        ]))
        .unwrap();
        assert_eq!(
            got,
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "db"}}})
        );
        assert!(patched(
            json!({}),
            json!([{"op": "add", "path": "/a~2", "value": 1}])
        )
        .is_err());
        assert!(patched(json!({}), json!([{"op": "add", "path": "a", "value": 1}])).is_err());
    }

    #[test]
    fn a_failing_operation_leaves_the_target_unchanged() {
        let mut doc = json!({"a": 1});
        let err = json_patch(
            &mut doc,
            &json!([
                {"op": "replace", "path": "/a", "value": 2},
                {"op": "add", "path": "/x/y", "value": 3}
            ]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "JSON patch operation 1 (add at \"/x/y\"): no member \"x\""
        );
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn malformed_patches_are_rejected() {
        let mut doc = json!({});
        assert!(json_patch(&mut doc, &json!({"op": "add"}))
            .unwrap_err()
            .contains("list of operations"));
        assert_eq!(
            json_patch(&mut doc, &json!([{"path": "/a"}])).unwrap_err(),
            "JSON patch operation 0: missing \"op\""
        );
        assert_eq!(
            json_patch(&mut doc, &json!([{"op": "frob", "path": "/a"}])).unwrap_err(),
            "JSON patch operation 0: unknown op \"frob\""
        );
        assert!(json_patch(&mut doc, &json!([{"op": "add", "path": "/a"}]))
            .unwrap_err()
            .contains("missing \"value\""));
        assert!(json_patch(&mut doc, &json!([{"op": "copy", "path": "/a"}]))
            .unwrap_err()
            .contains("missing \"from\""));
        let ok = json_patch(
            &mut doc,
            &json!([{"op": "add", "path": "/a", "value": null}]),
        );
        assert!(ok.is_ok(), "null is a value");
        assert_eq!(doc, json!({"a": null}));
    }
}
