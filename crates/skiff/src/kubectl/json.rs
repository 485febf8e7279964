//! JSON exactly as `kubectl get -o json` prints it: Go's
//! `json.MarshalIndent(object, "", "    ")` over the object as a map.
//!
//! That means keys in byte order, four-space indentation, `{}` and `[]` for
//! empty collections, and Go's escaping: `<`, `>` and `&` as `\u003c`,
//! `\u003e`, `\u0026` (Go escapes them so JSON can sit inside HTML), U+2028
//! and U+2029 escaped, other control characters as `\u00XX`.
//!
//! # Caveats
//! Numbers are written as Go writes the `int64` or `float64` kubectl decodes
//! them to; integers beyond `int64` become floats there, and here too.

use std::fmt::Write;

use serde_json::{Number, Value};

/// `value` as kubectl's `-o json` prints it, ending in a newline.
pub(crate) fn to_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out.push('\n');
    out
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_value(out, item, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, &map[key], depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n("    ", depth));
}

/// A string with Go's `encoding/json` escapes.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A number as Go's JSON encoder writes the value kubectl decoded it to:
/// an `int64` as is; a `float64` without exponent between 1e-6 and 1e21,
/// and as `1e+21` / `1e-7` outside.
pub(crate) fn go_number(n: &Number) -> String {
    if n.is_i64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{f}");
    }
    let scientific = format!("{f:e}");
    match scientific.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => {
            format!("{mantissa}e+{exponent}")
        }
        _ => scientific,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Golden files: what kubectl 1.32 prints for each `.json` object.
    #[test]
    fn objects_print_byte_for_byte_as_kubectl_prints_them() {
        for (input, expected) in [
            (
                include_str!("testdata/pod.json"),
                include_str!("testdata/pod.kubectl.json"),
            ),
            (
                include_str!("testdata/tricky.json"),
                include_str!("testdata/tricky.kubectl.json"),
            ),
            (
                include_str!("testdata/fuzz.json"),
                include_str!("testdata/fuzz.kubectl.json"),
            ),
            (
                include_str!("testdata/keys.json"),
                include_str!("testdata/keys.kubectl.json"),
            ),
        ] {
            let value: Value = serde_json::from_str(input).unwrap();
            assert_eq!(to_json(&value), expected);
        }
    }

    #[test]
    fn keys_sort_by_bytes_and_collections_indent_by_four() {
        let value = json!({"b": [1, {"z": null, "B": true}], "a": {}, "c": [], "A": "x"});
        assert_eq!(
            to_json(&value),
            "{\n    \"A\": \"x\",\n    \"a\": {},\n    \"b\": [\n        1,\n        {\n            \
             \"B\": true,\n            \"z\": null\n        }\n    ],\n    \"c\": []\n}\n"
        );
    }

    #[test]
    fn strings_escape_as_go_does() {
        let value = json!("<a href=\"x\">&</a>\n\t\u{1}\u{8}\u{c}\u{2028}é😀\\");
        assert_eq!(
            to_json(&value),
            "\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u003c/a\\u003e\\n\\t\\u0001\\b\\f\\u2028é😀\\\\\"\n"
        );
    }

    #[test]
    fn numbers_print_as_go_prints_int64_and_float64() {
        let cases = [
            (json!(-3), "-3"),
            (json!(2.0), "2"),
            (json!(1.5), "1.5"),
            (json!(0.000001), "0.000001"),
            (json!(0.0000001), "1e-7"),
            (json!(1e21), "1e+21"),
            (json!(1.5e300), "1.5e+300"),
            (json!(18446744073709551615u64), "18446744073709552000"),
        ];
        for (value, printed) in cases {
            assert_eq!(to_json(&value), format!("{printed}\n"), "{value}");
        }
    }
}
