//! kubectl's JSONPath templates (`-o jsonpath=…`) and custom columns
//! (`-o custom-columns=…`), for the forms people use every day.
//!
//! A template is text with actions in braces: `{.metadata.name}`,
//! `{.items[*].status.podIP}`, `{range .items[*]}{.metadata.name}{"\n"}{end}`,
//! `{.items[?(@.status.phase=="Running")].metadata.name}`. Several results
//! of one action are joined by a space; strings print raw, anything else as
//! compact JSON; a missing field prints nothing, as with kubectl's default
//! `--allow-missing-template-keys=true`.
//! See <https://kubernetes.io/docs/reference/kubectl/jsonpath/>.
//!
//! # Caveats
//! No recursive descent (`..name`), slices (`[1:3]`), unions (`[a,b]`),
//! `len` or comparisons other than `==` and `!=` in filters.

use serde_json::Value;

use super::Error;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `[*]` or `.*`: every element or value.
    All,
    /// `[n]`, counting from the end when negative.
    Index(i64),
    /// `[?(@.path == "x")]` (or `!=`): the elements for which it holds.
    Filter {
        path: Vec<Step>,
        equal: bool,
        literal: Value,
    },
}

/// A parsed piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

/// A parsed `-o jsonpath` template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `text`; errors name what kubectl users would look for.
    pub(crate) fn parse(text: &str) -> Result<Template, Error> {
        let mut stack: Vec<(Vec<Step>, Vec<Node>)> = Vec::new();
        let mut nodes = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                nodes.push(Node::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_string()));
            }
            let close = action_end(&rest[open..]).ok_or_else(|| {
                template_error(text, format!("unclosed action in {:?}", &rest[open..]))
            })?;
            let action = rest[open + 1..open + close].trim();
            rest = &rest[open + close + 1..];
            if let Some(path) = action.strip_prefix("range ") {
                stack.push((parse_path(path.trim(), text)?, std::mem::take(&mut nodes)));
            } else if action == "end" {
                let (path, outer) = stack
                    .pop()
                    .ok_or_else(|| template_error(text, "{end} without {range}".into()))?;
                let body = std::mem::replace(&mut nodes, outer);
                nodes.push(Node::Range(path, body));
            } else if action.starts_with('"') {
                nodes.push(Node::Text(unquote(action, text)?));
            } else {
                nodes.push(Node::Path(parse_path(action, text)?));
            }
        }
        if !stack.is_empty() {
            return Err(template_error(text, "{range} without {end}".into()));
        }
        Ok(Template { nodes })
    }

    /// The template's text over `data`.
    pub(crate) fn render(&self, data: &Value) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, data, &mut out);
        out
    }
}

fn render_nodes(nodes: &[Node], data: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Path(path) => {
                let shown: Vec<String> = select(data, path).into_iter().map(show).collect();
                out.push_str(&shown.join(" "));
            }
            Node::Range(path, body) => {
                for item in select(data, path) {
                    // A range over a list walks its elements.
                    match item {
                        Value::Array(items) => {
                            items.iter().for_each(|i| render_nodes(body, i, out))
                        }
                        other => render_nodes(body, other, out),
                    }
                }
            }
        }
    }
}

/// A result as kubectl prints it: strings raw, the rest as compact JSON.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values `path` reaches from `data`.
fn select<'a>(data: &'a Value, path: &[Step]) -> Vec<&'a Value> {
    let mut current = vec![data];
    for step in path {
        let mut next = Vec::new();
        for value in current {
            match (step, value) {
                (Step::Field(name), Value::Object(map)) => next.extend(map.get(name)),
                (Step::All, Value::Array(items)) => next.extend(items),
                (Step::All, Value::Object(map)) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    next.extend(keys.into_iter().map(|k| &map[k.as_str()]));
                }
                (Step::Index(i), Value::Array(items)) => {
                    let at = if *i < 0 {
                        items.len().checked_sub(i.unsigned_abs() as usize)
                    } else {
                        Some(*i as usize)
                    };
                    next.extend(at.and_then(|at| items.get(at)));
                }
                (
                    Step::Filter {
                        path,
                        equal,
                        literal,
                    },
                    Value::Array(items),
                ) => next.extend(items.iter().filter(|item| {
                    let found = select(item, path);
                    let matches = found.contains(&literal);
                    !found.is_empty() && matches == *equal
                })),
                _ => {}
            }
        }
        current = next;
    }
    current
}

/// Where the action starting at `text[0] == '{'` ends, skipping quoted text.
fn action_end(text: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '}') => return Some(i),
            _ => {}
        }
        escaped = false;
    }
    None
}

/// Parses `.a.b[0]['c'][*][?(@.x=="y")]` (a leading `$` or `@` allowed).
fn parse_path(text: &str, template: &str) -> Result<Vec<Step>, Error> {
    let bad = |why: &str| template_error(template, format!("{why} in {text:?}"));
    let mut steps = Vec::new();
    let mut rest = text.trim_start_matches(['$', '@']);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            if after.starts_with('.') {
                return Err(bad("recursive descent (..) is not supported"));
            }
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            match name {
                "" => {}
                "*" => steps.push(Step::All),
                _ => steps.push(Step::Field(name.to_string())),
            }
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let close = action_close(after).ok_or_else(|| bad("an unclosed ["))?;
            let inside = after[..close].trim();
            rest = &after[close + 1..];
            steps.push(if inside == "*" {
                Step::All
            } else if let Some(filter) = inside.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
            {
                parse_filter(filter, template)?
            } else if inside.starts_with(['\'', '"']) {
                Step::Field(unquote(inside, template)?)
            } else {
                Step::Index(
                    inside
                        .parse()
                        .map_err(|_| bad("an index that is not a number"))?,
                )
            });
        } else {
            return Err(bad("a path must start with . or ["));
        }
    }
    Ok(steps)
}

/// The index of the `]` closing a bracket, skipping quoted text.
fn action_close(text: &str) -> Option<usize> {
    let mut quote = None;
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ']') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_filter(filter: &str, template: &str) -> Result<Step, Error> {
    let (operator, equal) = if filter.contains("==") {
        ("==", true)
    } else if filter.contains("!=") {
        ("!=", false)
    } else {
        return Err(template_error(
            template,
            format!("the filter {filter:?} is not of the form @.path==value or @.path!=value"),
        ));
    };
    let (left, right) = filter
        .split_once(operator)
        .expect("the operator was found above");
    let right = right.trim();
    let literal = if right.starts_with(['"', '\'']) {
        Value::String(unquote(right, template)?)
    } else {
        serde_json::from_str(right).unwrap_or_else(|_| Value::String(right.to_string()))
    };
    Ok(Step::Filter {
        path: parse_path(left.trim(), template)?,
        equal,
        literal,
    })
}

/// A quoted string in a template, with `\n`, `\t`, `\"` and `\\` escapes.
fn unquote(quoted: &str, template: &str) -> Result<String, Error> {
    let quote = quoted.chars().next().unwrap_or('"');
    let inner = quoted
        .strip_prefix(quote)
        .and_then(|q| q.strip_suffix(quote))
        .ok_or_else(|| template_error(template, format!("unterminated string {quoted}")))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Ok(out)
}

fn template_error(template: &str, why: String) -> Error {
    Error::Usage(format!("error parsing jsonpath {template}: {why}"))
}

/// `-o custom-columns=HEADER:PATH,…`: the headers and each column's path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CustomColumns {
    /// The column headers, as given.
    pub headers: Vec<String>,
    paths: Vec<Vec<Step>>,
}

impl CustomColumns {
    /// Parses the spec; a path may be written with or without braces and
    /// the leading dot (`NAME:metadata.name`).
    pub(crate) fn parse(spec: &str) -> Result<CustomColumns, Error> {
        let mut headers = Vec::new();
        let mut paths = Vec::new();
        for column in spec.split(',') {
            let Some((header, path)) = column.split_once(':') else {
                return Err(Error::Usage(format!(
                    "unexpected custom-columns spec: {column}, expected <header>:<json-path-expr>"
                )));
            };
            headers.push(header.to_string());
            paths.push(field_path(path, column)?);
        }
        Ok(CustomColumns { headers, paths })
    }

    /// One object's cells: several results joined by commas, `<none>` for none.
    pub(crate) fn row(&self, object: &Value) -> Vec<String> {
        self.paths
            .iter()
            .map(|path| {
                let found = select(object, path);
                if found.is_empty() {
                    "<none>".to_string()
                } else {
                    found.into_iter().map(show).collect::<Vec<_>>().join(",")
                }
            })
            .collect()
    }
}

/// A field path as `--sort-by` and custom columns take it: with or without
/// braces and the leading dot (`metadata.name`, `{.metadata.name}`).
fn field_path(text: &str, context: &str) -> Result<Vec<Step>, Error> {
    let path = text.trim_start_matches('{').trim_end_matches('}');
    if path.starts_with(['.', '[']) {
        parse_path(path, context)
    } else {
        parse_path(&format!(".{path}"), context)
    }
}

/// `--sort-by=PATH`: orders objects by the first value the path reaches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortBy {
    path: Vec<Step>,
}

impl SortBy {
    /// Parses the path.
    pub(crate) fn parse(text: &str) -> Result<SortBy, Error> {
        Ok(SortBy {
            path: field_path(text, text)?,
        })
    }

    /// Sorts `items` (stably) on the object each carries (`object`) as
    /// kubectl's sorter does: numbers by value, strings in natural order
    /// (`web-2` before `web-10`); objects without the field first.
    pub(crate) fn sort_by_object<T>(&self, items: &mut [T], object: impl Fn(&T) -> &Value) {
        items.sort_by(|a, b| {
            let (a, b) = (select(object(a), &self.path), select(object(b), &self.path));
            match (a.first(), b.first()) {
                (None, None) => std::cmp::Ordering::Equal,
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => compare(a, b),
            }
        });
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.total_cmp(&y)
        }
        (a, b) => natural_order(&show(a), &show(b)),
    }
}

/// kubectl's natural string order: runs of digits compare by value and
/// sort before other characters, which compare byte by byte.
pub(crate) fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (digit_a, digit_b) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if digit_a != digit_b {
            return if digit_a {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !digit_a {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        // Compare the numbers: skip leading zeros, then the longer is
        // larger, then digit by digit, then fewer zeros first.
        let (zeros_a, zeros_b) = (i, j);
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (start_a, start_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let order = (i - start_a)
            .cmp(&(j - start_b))
            .then_with(|| a[start_a..i].cmp(&b[start_b..j]))
            .then_with(|| (start_a - zeros_a).cmp(&(start_b - zeros_b)));
        if order != Ordering::Equal {
            return order;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn list() -> Value {
        json!({"kind": "List", "items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "web"}},
             "spec": {"containers": [{"image": "nginx"}, {"image": "envoy"}]},
             "status": {"phase": "Running", "podIP": "10.0.0.1"}},
            {"metadata": {"name": "b"}, "spec": {"containers": [{"image": "redis"}]},
             "status": {"phase": "Pending"}},
        ]})
    }

    fn render(template: &str) -> String {
        Template::parse(template).unwrap().render(&list())
    }

    #[test]
    fn paths_print_their_values_joined_by_spaces() {
        assert_eq!(render("{.items[*].metadata.name}"), "a b");
        assert_eq!(render("{.items[0].status.phase}"), "Running");
        assert_eq!(render("{.items[-1].metadata.name}"), "b");
        assert_eq!(render("{$.kind}"), "List");
        assert_eq!(
            render("{.items[*].spec.containers[*].image}"),
            "nginx envoy redis"
        );
        assert_eq!(
            render("{.items[0].metadata.labels['app.kubernetes.io/name']}"),
            "web"
        );
        // Objects print as compact JSON; missing fields print nothing.
        assert_eq!(render("{.items[1].status}"), r#"{"phase":"Pending"}"#);
        assert_eq!(render("ip={.items[1].status.podIP}."), "ip=.");
    }

    #[test]
    fn range_repeats_its_body_per_element() {
        assert_eq!(
            render(r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#),
            "a\tRunning\nb\tPending\n"
        );
    }

    #[test]
    fn filters_keep_the_elements_that_match() {
        assert_eq!(
            render(r#"{.items[?(@.status.phase=="Pending")].metadata.name}"#),
            "b"
        );
        assert_eq!(
            render(r#"{.items[?(@.status.phase!="Pending")].metadata.name}"#),
            "a"
        );
    }

    #[test]
    fn malformed_templates_are_errors() {
        for bad in [
            "{.items",
            "{range .items[*]}x",
            "{end}",
            "{items}",
            "{..name}",
            "{.a[x]}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sort_by_orders_numbers_by_value_and_names_naturally() {
        let mut objects: Vec<Value> = ["web-10", "web-2", "api", "web-02"]
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"metadata": {"name": n}, "n": 10 - i as i64}))
            .chain([json!({"metadata": {}})])
            .collect();
        SortBy::parse("{.metadata.name}")
            .unwrap()
            .sort_by_object(&mut objects, |o| o);
        let names: Vec<String> = objects
            .iter()
            .map(|o| show(&o["metadata"]["name"]))
            .collect();
        assert_eq!(names, ["null", "api", "web-2", "web-02", "web-10"]);
        SortBy::parse("n")
            .unwrap()
            .sort_by_object(&mut objects, |o| o);
        let numbers: Vec<String> = objects.iter().map(|o| show(&o["n"])).collect();
        assert_eq!(numbers, ["null", "7", "8", "9", "10"]);
    }

    #[test]
    fn custom_columns_join_several_values_with_commas() {
        let columns = CustomColumns::parse(
            "NAME:.metadata.name,IMAGES:spec.containers[*].image,IP:{.status.podIP}",
        )
        .unwrap();
        assert_eq!(columns.headers, ["NAME", "IMAGES", "IP"]);
        let items = list()["items"].clone();
        assert_eq!(columns.row(&items[0]), ["a", "nginx,envoy", "10.0.0.1"]);
        assert_eq!(columns.row(&items[1]), ["b", "redis", "<none>"]);
        assert!(CustomColumns::parse("NAME").is_err());
    }
}
