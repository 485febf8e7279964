//! YAML exactly as `kubectl get -o yaml` prints it.
//!
//! kubectl turns an object into JSON, reads that JSON back as YAML (so it
//! becomes a map) and writes it with go-yaml v2 (through `sigs.k8s.io/yaml`).
//! The bytes that come out follow from go-yaml's rules, which this module
//! mirrors so that skiff's output can be diffed against kubectl's:
//! - map keys sorted "naturally": letters after other characters, runs of
//!   digits compared as numbers (`a9` before `a10`);
//! - two-space indentation, and a list under a key is *not* indented
//!   further (`containers:` then `- name: c` in the same column);
//! - empty maps and lists as `{}` and `[]`;
//! - a string is written plain unless plain YAML would read it back as
//!   something else (`"80"`, `"true"`, `"null"`, `""`, timestamps such as
//!   `"2024-01-02T03:04:05Z"`) — then double-quoted — or unless it starts or
//!   ends with something YAML treats specially (`'*x'`, `'a: b'`, `'x '`) —
//!   then single-quoted;
//! - strings with a newline as literal blocks (`|`, `|-`, `|+`, `|2`);
//!   strings with characters YAML cannot show raw (tabs, control
//!   characters) double-quoted with escapes;
//! - long plain and quoted strings folded at spaces past column 80.
//!
//! # Layout
//! [`to_yaml`] writes a value; `Emitter` keeps go-yaml's column and
//! indentation state; `analyze` decides which styles a string's characters
//! allow; [`resolve`] says which strings plain YAML would read as something
//! else; `natural_less` orders keys.
//!
//! # Caveats
//! Keys are JSON strings, so go-yaml's ordering of non-string keys is not
//! needed. Digits other than ASCII count as digits only where Rust's
//! `is_ascii_digit` says so, where go-yaml uses Unicode's `IsDigit`.

use serde_json::{Map, Value};

use self::resolve::{is_base60_float, plain_reads_as_string};

pub(crate) mod resolve;

/// The column past which go-yaml folds long scalars at a space.
const BEST_WIDTH: usize = 80;
/// go-yaml's indentation step.
const BEST_INDENT: i64 = 2;
/// Keys longer than this (in bytes) are written as `? key` / `: value`.
const MAX_SIMPLE_KEY: usize = 128;

/// `value` as kubectl's `-o yaml` prints it, ending in a newline.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut emitter = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
    };
    emitter.node(value, -1, false);
    // The document end moves to a fresh line.
    emitter.write_indent(-1);
    emitter.out
}

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

/// The writer's state, named as go-yaml's emitter names it.
struct Emitter {
    out: String,
    /// Characters written on the current line.
    column: usize,
    /// The last thing written was whitespace (or nothing).
    whitespace: bool,
    /// Only indentation has been written on the current line.
    indention: bool,
}

impl Emitter {
    /// Writes a node whose parent sits at `indent` (-1 for the document);
    /// `in_mapping` is true for a mapping's values.
    fn node(&mut self, value: &Value, indent: i64, in_mapping: bool) {
        match value {
            Value::Object(map) if map.is_empty() => self.write_indicator("{}", true, false, false),
            Value::Array(items) if items.is_empty() => {
                self.write_indicator("[]", true, false, false)
            }
            Value::Object(map) => self.mapping(map, indent),
            Value::Array(items) => self.sequence(items, indent, in_mapping),
            Value::String(text) => self.scalar(text, string_style(text), indent, false),
            Value::Null => self.scalar("null", Style::Plain, indent, false),
            Value::Bool(b) => self.scalar(&b.to_string(), Style::Plain, indent, false),
            Value::Number(n) => self.scalar(&yaml_number(n), Style::Plain, indent, false),
        }
    }

    fn mapping(&mut self, map: &Map<String, Value>, indent: i64) {
        let indent = if indent < 0 { 0 } else { indent + BEST_INDENT };
        let mut keys: Vec<&String> = map.keys().collect();
        merge_sort(&mut keys);
        for key in keys {
            let value = &map[key.as_str()];
            self.write_indent(indent);
            let simple = !analyze(key).multiline && key.len() <= MAX_SIMPLE_KEY;
            if simple {
                self.scalar(key, string_style(key), indent, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.scalar(key, string_style(key), indent, false);
                self.write_indent(indent);
                self.write_indicator(":", true, false, true);
            }
            self.node(value, indent, true);
        }
    }

    fn sequence(&mut self, items: &[Value], indent: i64, in_mapping: bool) {
        // A list right after `key:` stays in the key's column.
        let indentless = in_mapping && !self.indention;
        let indent = if indent < 0 {
            0
        } else if indentless {
            indent
        } else {
            indent + BEST_INDENT
        };
        for item in items {
            self.write_indent(indent);
            self.write_indicator("-", true, false, true);
            self.node(item, indent, false);
        }
    }

    /// Writes a scalar in `requested` style, or the style go-yaml falls back
    /// to when the text does not allow it.
    fn scalar(&mut self, text: &str, requested: Style, indent: i64, simple_key: bool) {
        let analysis = analyze(text);
        let mut style = requested;
        if simple_key && analysis.multiline {
            style = Style::DoubleQuoted;
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (text.is_empty() && simple_key))
        {
            style = Style::SingleQuoted;
        }
        if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::DoubleQuoted;
        }
        let indent = if indent < 0 {
            BEST_INDENT
        } else {
            indent + BEST_INDENT
        };
        let chars: Vec<char> = text.chars().collect();
        match style {
            Style::Plain => self.write_plain(&chars, !simple_key, indent),
            Style::SingleQuoted => self.write_single_quoted(&chars, !simple_key, indent),
            Style::DoubleQuoted => self.write_double_quoted(&chars, !simple_key, indent),
            Style::Literal => self.write_literal(&chars, indent),
        }
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// A line break from the text: `\n` as a newline, others as themselves.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    /// Moves to column `indent`, starting a new line unless only
    /// indentation has been written on this one.
    fn write_indent(&mut self, indent: i64) {
        let indent = indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, chars: &[char], allow_breaks: bool, indent: i64) {
        if !self.whitespace {
            self.put(' ');
        }
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, chars: &[char], allow_breaks: bool, indent: i64) {
        self.write_indicator("'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let inner = i > 0 && i + 1 < chars.len() && chars[i + 1] != ' ';
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, chars: &[char], allow_breaks: bool, indent: i64) {
        self.write_indicator("\"", true, false, false);
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\x07' => self.put('a'),
                    '\x08' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\x0b' => self.put('v'),
                    '\x0c' => self.put('f'),
                    '\r' => self.put('r'),
                    '\x1b' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let code = c as u32;
                        let escape = if code <= 0xFF {
                            format!("x{code:02X}")
                        } else if code <= 0xFFFF {
                            format!("u{code:04X}")
                        } else {
                            format!("U{code:08X}")
                        };
                        escape.chars().for_each(|e| self.put(e));
                    }
                }
                spaces = false;
            } else if c == ' ' {
                let inner = i > 0 && i + 1 < chars.len();
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner {
                    // The line break stands for this space; a space after it
                    // is escaped so it is not taken for indentation.
                    self.write_indent(indent);
                    if chars[i + 1] == ' ' {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, chars: &[char], indent: i64) {
        self.write_indicator("|", true, false, false);
        // Text starting with a space or break says how far it is indented.
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        // "-": no final line break to keep; "+": keep all final breaks.
        let chomp = match chars {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., before, _] if is_break(*before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in chars {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                    breaks = false;
                }
                self.put(c);
                self.indention = false;
            }
        }
    }
}

/// The style go-yaml asks for a string: a literal block if it has a
/// newline, plain if plain YAML reads it back as this string, else quoted.
fn string_style(text: &str) -> Style {
    if text.contains('\n') {
        Style::Literal
    } else if plain_reads_as_string(text) && !is_base60_float(text) {
        Style::Plain
    } else {
        Style::DoubleQuoted
    }
}

/// What the characters of a scalar allow, as go-yaml's scalar analysis
/// finds it (block context only: skiff never writes flow collections with
/// content).
#[derive(Debug, PartialEq, Eq)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn analyze(text: &str) -> Analysis {
    if text.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = text.chars().collect();
    let mut block_indicators = text.starts_with("---") || text.starts_with("...");
    let (mut line_breaks, mut special_characters) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let last = i + 1 == chars.len();
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| n == ' ' || n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else if (c == ':' && followed_by_whitespace) || (c == '#' && preceded_by_whitespace) {
            block_indicators = true;
        }
        if !is_printable(c) {
            special_characters = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c) || c == '\0';
    }
    let mut analysis = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        analysis.block_plain_allowed = false;
    }
    if trailing_space {
        analysis.block_allowed = false;
    }
    if break_space {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        analysis.block_plain_allowed = false;
        analysis.single_quoted_allowed = false;
        analysis.block_allowed = false;
    }
    if line_breaks || block_indicators {
        analysis.block_plain_allowed = false;
    }
    analysis
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Characters go-yaml writes as they are (it counts none beyond U+FFFF).
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// A JSON number as kubectl's YAML shows it: integers as they are, other
/// floats as Go's shortest `%g` (`1.5`, `1e-06`, `1.2345675e+06`).
fn yaml_number(n: &serde_json::Number) -> String {
    // kubectl decodes integers beyond int64 as float64.
    if n.is_i64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && (i64::MIN as f64..u64::MAX as f64).contains(&f) {
        // Go's JSON writes integral floats without a fraction, and YAML
        // then reads them as integers when they fit 64 bits.
        return format!("{f}");
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("Rust's {:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if (-4..6).contains(&exponent) {
        format!("{f}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// Sorts keys by [`natural_less`]. That order is not transitive for some
/// keys (`1a` < `9` < `10` < `1a`), where go-yaml's output then depends on
/// Go's map order; a plain merge sort gives some order without the panic
/// the standard sort may raise on such a comparison.
fn merge_sort(keys: &mut Vec<&String>) {
    if keys.len() < 2 {
        return;
    }
    let mut right = keys.split_off(keys.len() / 2);
    merge_sort(keys);
    merge_sort(&mut right);
    let left = std::mem::take(keys);
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        let next = if natural_less(b, a) {
            r.next()
        } else {
            l.next()
        };
        keys.extend(next);
    }
    keys.extend(l);
    keys.extend(r);
}

/// go-yaml's key order: other characters sort before letters, and digit
/// runs compare by value, so `a2` < `a10`, `_x` < `B` and `lead_x` < `lead2`.
fn natural_less(a: &str, b: &str) -> bool {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            // A zero inside a number ("10" vs "1a") is not a leading zero.
            if ar[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .any(|&c| c != '0')
            {
                an = 1;
                bn = 1;
            }
        }
        let run = |chars: &[char], n: &mut i64| {
            let mut end = i;
            while end < chars.len() && chars[end].is_ascii_digit() {
                *n = n
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(chars[end] as u8 - b'0'));
                end += 1;
            }
            end
        };
        let (ai, bi) = (run(&ar, &mut an), run(&br, &mut bn));
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Golden files (in `kubectl/testdata`): each `.json` object next to what kubectl 1.32 prints
    /// for it (`kubectl label --local -f X.json never-set- -o yaml`).
    /// `pod.json` is a typical pod; `tricky.json` collects hard cases by
    /// hand; `fuzz.json` (values) and `keys.json` (keys) are strings drawn
    /// at random from the characters YAML treats specially. Keys whose
    /// natural order is cyclic (`1a`, `9`, `10`) are left out: kubectl's
    /// order for them changes from run to run.
    #[test]
    fn objects_print_byte_for_byte_as_kubectl_prints_them() {
        for (input, expected) in [
            (
                include_str!("../testdata/pod.json"),
                include_str!("../testdata/pod.kubectl.yaml"),
            ),
            (
                include_str!("../testdata/tricky.json"),
                include_str!("../testdata/tricky.kubectl.yaml"),
            ),
            (
                include_str!("../testdata/fuzz.json"),
                include_str!("../testdata/fuzz.kubectl.yaml"),
            ),
            (
                include_str!("../testdata/keys.json"),
                include_str!("../testdata/keys.kubectl.yaml"),
            ),
        ] {
            let value: Value = serde_json::from_str(input).unwrap();
            let printed = to_yaml(&value);
            for (n, (ours, theirs)) in printed.lines().zip(expected.lines()).enumerate() {
                assert_eq!(ours, theirs, "line {}", n + 1);
            }
            assert_eq!(printed, expected);
        }
    }

    #[test]
    fn strings_yaml_would_read_as_other_types_are_double_quoted() {
        for text in [
            "80",
            "-1",
            "+1",
            "1_000",
            "0x1F",
            "0o17",
            "0755",
            "08",
            "1.5",
            ".5",
            "1e3",
            "true",
            "True",
            "yes",
            "y",
            "N",
            "off",
            "null",
            "~",
            "",
            ".inf",
            "-.Inf",
            "12:30",
            "2001-12-14",
            "2024-01-02T03:04:05Z",
            "2024-1-2 3:4:5.5",
        ] {
            assert_eq!(
                to_yaml(&json!({ "k": text })),
                format!("k: \"{text}\"\n"),
                "{text:?}"
            );
        }
        for text in [
            "web",
            "nginx:1.27",
            "0x",
            "1e",
            "1.2.3",
            "v1",
            "~x",
            "yes!",
            "2024-02-30",
            "-x",
            "<<",
            "a:b",
            "a# b",
            "?x",
            "10.0.0.5",
            "500m",
            "x y",
        ] {
            assert_eq!(
                to_yaml(&json!({ "k": text })),
                format!("k: {text}\n"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn strings_starting_or_ending_specially_are_single_quoted() {
        for (text, printed) in [
            ("*x", "'*x'"),
            ("-", "'-'"),
            ("- x", "'- x'"),
            ("a: b", "'a: b'"),
            ("x:", "'x:'"),
            ("a #b", "'a #b'"),
            ("x ", "'x '"),
            (" x", "' x'"),
            ("'x", "'''x'"),
            ("---", "'---'"),
            ("{a}", "'{a}'"),
        ] {
            assert_eq!(to_yaml(&json!({ "k": text })), format!("k: {printed}\n"));
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks_with_kubectls_chomping() {
        let value = json!({"a": "x\ny", "b": "x\n", "c": "x\n\n", "d": " x\n", "e": "x \ny"});
        assert_eq!(
            to_yaml(&value),
            "a: |-\n  x\n  y\nb: |\n  x\nc: |+\n  x\n\nd: |2\n   x\ne: \"x \\ny\"\n"
        );
    }

    #[test]
    fn lists_under_a_key_are_not_indented_and_empty_collections_are_flow() {
        let value = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}],
            "resources": {}, "args": []}], "matrix": [[1, 2], []]}});
        assert_eq!(
            to_yaml(&value),
            "spec:\n  containers:\n  - args: []\n    name: c\n    ports:\n    - containerPort: 80\n    \
             resources: {}\n  matrix:\n  - - 1\n    - 2\n  - []\n"
        );
    }

    #[test]
    fn long_strings_fold_at_a_space_past_column_80() {
        // The space at column 79 stays; the one at column 90 breaks.
        let long = format!("{} {} c", "a".repeat(76), "b".repeat(10));
        assert_eq!(
            to_yaml(&json!({ "k": long })),
            format!("k: {} {}\n  c\n", "a".repeat(76), "b".repeat(10))
        );
        // Under a list item the rest lines up with the item's text.
        assert_eq!(
            to_yaml(&json!({ "k": [long] })),
            format!("k:\n- {} {}\n  c\n", "a".repeat(76), "b".repeat(10))
        );
    }

    #[test]
    fn keys_sort_naturally_with_letters_last() {
        let value =
            json!({"a10": 1, "a9": 1, "B": 1, "b": 1, "_x": 1, "x": {"lead2": 1, "lead_x": 1}});
        assert_eq!(
            to_yaml(&value),
            "_x: 1\nB: 1\na9: 1\na10: 1\nb: 1\nx:\n  lead_x: 1\n  lead2: 1\n"
        );
        // An order that is not transitive still sorts, in some order.
        let cyclic = json!({"1a": 1, "9": 2, "10": 3});
        assert_eq!(to_yaml(&cyclic).lines().count(), 3);
    }

    #[test]
    fn numbers_print_as_kubectl_reads_them_back() {
        let value = json!([
            1,
            -3,
            2.0,
            1.5,
            0.000001,
            1e21,
            1234567.5,
            18446744073709551615u64
        ]);
        assert_eq!(
            to_yaml(&value),
            "- 1\n- -3\n- 2\n- 1.5\n- 1e-06\n- 1e+21\n- 1.2345675e+06\n- 1.8446744073709552e+19\n"
        );
    }
}
