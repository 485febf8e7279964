//! `skiff get`: list or read objects of one or more types and print them as
//! kubectl does — tables, YAML, JSON, names, JSONPath or custom columns;
//! with `-w`, keep printing rows as watch events arrive.
//!
//! Like kubectl, `get po,svc` and `get po/web svc/api` print one table per
//! type, separated by a blank line, and when objects of more than one type
//! are shown each NAME says its type (`pod/web`, `service/api`). YAML, JSON
//! and JSONPath see a `List` unless exactly one object was named.
//!
//! Tables (the default and `-o wide`) are the server's: `skiff get` asks for
//! a meta.k8s.io/v1 Table, whose columns are defined once for every client
//! in `skiff_api::printers`, and prints its priority 0 columns (all of them
//! with `-o wide`), upper-cased as kubectl does, with NAMESPACE first for
//! `-A` and `-L`/`--show-labels` columns last, read from each row's object.
//!
//! Lists are read whole, then the watch starts from the list's
//! resourceVersion, so no change between the two is missed (kubectl's
//! list-then-watch). The watch ends when the server closes the stream.
//!
//! # Caveats
//! `--sort-by` sorts the objects of each type on their own (kubectl sorts
//! across types). No `--output-watch-events`, Go templates or
//! `custom-columns-file`; `-w` watches a single type.

use std::str::FromStr;

use serde_json::{json, Value};
use skiff_client::{ListParams, Served, WatchEvent, WatchParams};
use tokio_stream::StreamExt;

use super::jsonpath::{CustomColumns, SortBy, Template};
use skiff_api::printers::object::{at, text};
use skiff_api::printers::IncludeObject;

use super::table::{render_row, Table};
use super::{print, resolve, targets, Error, Session};
use crate::cli::{GetArgs, GetOutput};

impl FromStr for GetOutput {
    type Err = String;

    /// Parses kubectl's `-o` values: `wide`, `yaml`, `json`, `name`,
    /// `jsonpath=…` and `custom-columns=…`.
    fn from_str(text: &str) -> Result<GetOutput, String> {
        let (format, argument) = match text.split_once('=') {
            Some((format, argument)) => (format, Some(argument)),
            None => (text, None),
        };
        match (format, argument) {
            ("wide", None) => Ok(GetOutput::Wide),
            ("yaml", None) => Ok(GetOutput::Yaml),
            ("json", None) => Ok(GetOutput::Json),
            ("name", None) => Ok(GetOutput::Name),
            ("jsonpath", Some(template)) if !template.is_empty() => {
                Ok(GetOutput::JsonPath(template.to_string()))
            }
            ("custom-columns", Some(spec)) if !spec.is_empty() => {
                Ok(GetOutput::CustomColumns(spec.to_string()))
            }
            ("jsonpath" | "custom-columns", _) => {
                Err("template format specified but no template given".into())
            }
            _ => Err(format!(
                "unable to match a printer suitable for the output format {text:?}, allowed \
                 formats are: custom-columns,json,jsonpath,name,wide,yaml"
            )),
        }
    }
}

/// The objects read for one served resource, in the order asked for.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The resource the objects belong to.
    pub resource: Served,
    /// The objects, with `apiVersion` and `kind` filled in; for a table, the
    /// object each row carries (its metadata, or all of it for `--sort-by`).
    pub objects: Vec<Value>,
    /// For a table: the server's column definitions and each object's cells.
    pub table: Option<ServerTable>,
}

/// What the server's Table says: the kind's columns and one row of cells
/// per object of the group, in the same order.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerTable {
    /// `columnDefinitions`, as the server sent them.
    pub columns: Vec<Value>,
    /// Each row's `cells`.
    pub cells: Vec<Vec<Value>>,
}

impl ServerTable {
    /// Adds the rows of `table` (a meta.k8s.io/v1 Table), answering each
    /// row's object.
    pub(crate) fn extend(&mut self, table: &Value) -> Vec<Value> {
        if let Some(columns) = table["columnDefinitions"].as_array() {
            self.columns = columns.clone();
        }
        let rows = table["rows"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut objects = Vec::new();
        for row in rows {
            self.cells
                .push(row["cells"].as_array().cloned().unwrap_or_default());
            objects.push(row["object"].clone());
        }
        objects
    }
}

/// How the command line asks objects to be shown.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// `-o`; `None` is the default table.
    pub output: Option<GetOutput>,
    /// `-A`: a NAMESPACE column for namespaced resources.
    pub all_namespaces: bool,
    /// Exactly one object was named: YAML and JSON show it, not a List.
    pub single: bool,
    /// `--no-headers`.
    pub no_headers: bool,
    /// `--show-labels`.
    pub show_labels: bool,
    /// `--show-kind`: NAME says the type even for one type.
    pub show_kind: bool,
    /// `-L`: label keys shown as columns.
    pub label_columns: Vec<String>,
    /// `--show-managed-fields`: keep `metadata.managedFields` in YAML, JSON
    /// and JSONPath output (kubectl leaves them out by default).
    pub show_managed_fields: bool,
}

/// Runs `skiff get`.
pub(crate) async fn run(args: GetArgs) -> Result<(), Error> {
    let targets = targets(&args.kind, &args.names)?;
    let named = targets.iter().any(|t| !t.names.is_empty());
    if args.all_namespaces && named {
        return Err(Error::Usage(
            "a resource cannot be retrieved by name across all namespaces".into(),
        ));
    }
    // Check templates before talking to the server.
    let view = View {
        output: args.output.clone(),
        all_namespaces: args.all_namespaces,
        single: matches!(&targets[..], [t] if t.names.len() == 1),
        no_headers: args.no_headers,
        show_labels: args.show_labels,
        show_kind: args.show_kind,
        label_columns: args.label_columns.clone(),
        show_managed_fields: args.show_managed_fields,
    };
    match &view.output {
        Some(GetOutput::JsonPath(template)) => drop(Template::parse(template)?),
        Some(GetOutput::CustomColumns(spec)) => drop(CustomColumns::parse(spec)?),
        _ => {}
    }
    let sort_by = args.sort_by.as_deref().map(SortBy::parse).transpose()?;
    // Tables come from the server, rendered from the one definition of each
    // kind's columns; sorting needs the whole objects alongside.
    let server_table = matches!(view.output, None | Some(GetOutput::Wide));
    let include = match sort_by {
        Some(_) => IncludeObject::Object,
        None => IncludeObject::Metadata,
    };
    let mut session = Session::connect(args.server.server.as_deref()).await?;
    let mut resources = Vec::new();
    for target in &targets {
        resources.push(session.resource(&target.typed)?);
    }
    if args.watch {
        let first = &resources[0].resource;
        let others = resources.iter().filter(|r| r.resource != *first).count();
        if others > 0 {
            return Err(Error::Usage(format!(
                "watch is only supported on individual resources and resource collections, \
                 but {} resources were found",
                others + 1
            )));
        }
    }
    let namespace = super::namespace_or_default(&args.namespace);

    let mut failed = false;
    let mut groups: Vec<Group> = Vec::new();
    let mut resource_version = String::new();
    for (target, resource) in targets.iter().zip(&resources) {
        let namespace = if args.all_namespaces && resource.namespaced() {
            ""
        } else {
            namespace.as_str()
        };
        let api = session.api(resource, namespace);
        let mut objects = Vec::new();
        let mut table = server_table.then(ServerTable::default);
        if target.names.is_empty() {
            let params = ListParams {
                label_selector: args.selector.clone(),
                field_selector: args.field_selector.clone(),
                ..ListParams::default()
            };
            let list = match &table {
                Some(_) => api.list_table(&params, include).await,
                None => api.list_raw(&params).await,
            };
            let list = list.map_err(|e| session.error(e))?;
            resource_version = text(&list, &["metadata", "resourceVersion"]);
            objects = match &mut table {
                Some(table) => table.extend(&list),
                None => list
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            };
        }
        for name in &target.names {
            let got = match &mut table {
                Some(table) => api
                    .get_table(name, include)
                    .await
                    .map(|one| table.extend(&one)),
                None => api.get_raw(name).await.map(|object| vec![object]),
            };
            match got {
                Ok(got) => objects.extend(got),
                Err(err) => match session.error(err) {
                    Error::Server(e) if args.ignore_not_found && e.code == 404 => {}
                    err @ Error::Unreachable { .. } => return Err(err),
                    err => {
                        eprintln!("{err}");
                        failed = true;
                    }
                },
            }
        }
        for object in &mut objects {
            fill_type_meta(object, resource);
        }
        let mut group = Group {
            resource: resource.clone(),
            objects,
            table,
        };
        if let Some(sort_by) = &sort_by {
            group.sort(sort_by);
        }
        match groups.last_mut() {
            Some(last) if last.resource.resource == resource.resource => last.append(group),
            _ => groups.push(group),
        }
    }

    // A single named object that is missing shows nothing but the error;
    // with --ignore-not-found, an empty result shows nothing at all (not
    // even an empty List).
    if view.single && failed {
        return Err(Error::Reported);
    }
    let nothing = groups.iter().all(|g| g.objects.is_empty());
    if nothing && args.ignore_not_found && !args.watch {
        return if failed { Err(Error::Reported) } else { Ok(()) };
    }
    let shown = render(&groups, &view)?;
    let mut header = None;
    let mut widths = Vec::new();
    match shown {
        Shown::Tables(tables) if tables.iter().all(|t| t.rows.is_empty()) => {
            if !failed && !args.watch && !args.ignore_not_found {
                let all_namespaced = resources.iter().all(Served::namespaced);
                eprintln!(
                    "{}",
                    no_resources(all_namespaced && !args.all_namespaces, &namespace)
                );
            }
            header = tables.into_iter().next().map(|t| t.headers);
        }
        Shown::Tables(tables) => {
            if let [table] = &tables[..] {
                widths = table.widths();
            }
            print(&render_tables(&tables, view.no_headers));
        }
        Shown::Text(text) => print(&text),
    }

    if args.watch {
        if view.no_headers {
            header = None;
        }
        watch(
            &mut session,
            &resources[0],
            &args,
            &view,
            &targets[0].names,
            &resource_version,
            (header, widths),
        )
        .await?;
    }
    if failed {
        Err(Error::Reported)
    } else {
        Ok(())
    }
}

/// What `get` prints: tables, or text already formatted.
#[derive(Debug, PartialEq)]
pub(crate) enum Shown {
    /// One table per group of objects of one resource.
    Tables(Vec<Table>),
    /// YAML, JSON, names or a JSONPath template's text.
    Text(String),
}

impl Group {
    /// Sorts the objects (and their rows) on `sort_by`.
    fn sort(&mut self, sort_by: &SortBy) {
        let cells = self.table.as_mut().map(|t| std::mem::take(&mut t.cells));
        let mut rows: Vec<(Value, Vec<Value>)> = match cells {
            Some(cells) => self.objects.drain(..).zip(cells).collect(),
            None => self.objects.drain(..).map(|o| (o, Vec::new())).collect(),
        };
        sort_by.sort_by_object(&mut rows, |(object, _)| object);
        for (object, cells) in rows {
            self.objects.push(object);
            if let Some(table) = &mut self.table {
                table.cells.push(cells);
            }
        }
    }

    /// Adds the objects (and rows) of `other`, of the same resource.
    fn append(&mut self, other: Group) {
        self.objects.extend(other.objects);
        if let (Some(mine), Some(theirs)) = (&mut self.table, other.table) {
            if mine.columns.is_empty() {
                mine.columns = theirs.columns;
            }
            mine.cells.extend(theirs.cells);
        }
    }
}

/// Formats the groups for output.
pub(crate) fn render(groups: &[Group], view: &View) -> Result<Shown, Error> {
    let objects = || groups.iter().flat_map(|g| g.objects.iter());
    let shown = |object: &Value| {
        let mut object = object.clone();
        if !view.show_managed_fields {
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
        object
    };
    // The object itself when exactly one was named, otherwise a List.
    let data = || match (view.single, objects().count()) {
        (true, 1) => objects().next().map(shown).unwrap_or_default(),
        _ => json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": objects().map(shown).collect::<Vec<_>>(),
            "metadata": {"resourceVersion": ""},
        }),
    };
    let text = match &view.output {
        None | Some(GetOutput::Wide) | Some(GetOutput::CustomColumns(_)) => {
            return table_groups(groups, view).map(Shown::Tables)
        }
        Some(GetOutput::Name) => groups
            .iter()
            .flat_map(|g| {
                g.objects.iter().map(|o| {
                    let name = text(o, &["metadata", "name"]);
                    format!("{}\n", resolve::object_name(&g.resource, &name))
                })
            })
            .collect(),
        Some(GetOutput::Json) => super::json::to_json(&data()),
        Some(GetOutput::Yaml) => super::yaml::to_yaml(&data()),
        Some(GetOutput::JsonPath(template)) => Template::parse(template)?.render(&data()),
    };
    Ok(Shown::Text(text))
}

/// One table per group; objects of several kinds name their kind.
fn table_groups(groups: &[Group], view: &View) -> Result<Vec<Table>, Error> {
    let kinds = {
        let mut kinds: Vec<String> = groups
            .iter()
            .filter(|g| !g.objects.is_empty())
            .map(|g| resolve::kind_prefix(&g.resource))
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds.len()
    };
    let columns = match &view.output {
        Some(GetOutput::CustomColumns(spec)) => Some(CustomColumns::parse(spec)?),
        _ => None,
    };
    let mut tables = Vec::new();
    for group in groups {
        let table = match (&columns, &group.table) {
            (Some(columns), _) => Table {
                headers: columns.headers.clone(),
                rows: group.objects.iter().map(|o| columns.row(o)).collect(),
            },
            (None, server) => {
                let server = server.clone().unwrap_or_default();
                let shown = shown_columns(&server.columns, view);
                let mut table = Table {
                    headers: headers(&group.resource, &server.columns, &shown, view),
                    rows: Vec::new(),
                };
                let name_column = shown
                    .iter()
                    .position(|&i| server.columns[i]["format"] == "name");
                let name_column = name_column.map(|i| i + table_offset(&group.resource, view));
                for (object, cells) in group.objects.iter().zip(&server.cells) {
                    let mut row = table_row(&group.resource, object, cells, &shown, view);
                    if let (true, Some(i)) = (kinds > 1 || view.show_kind, name_column) {
                        row[i] = resolve::object_name(&group.resource, &row[i]);
                    }
                    table.rows.push(row);
                }
                table
            }
        };
        tables.push(table);
    }
    Ok(tables)
}

/// The indices of the server's columns shown: priority 0, and with `-o
/// wide` every column, as kubectl chooses them.
fn shown_columns(columns: &[Value], view: &View) -> Vec<usize> {
    let wide = view.output == Some(GetOutput::Wide);
    (0..columns.len())
        .filter(|&i| wide || columns[i]["priority"].as_i64().unwrap_or(0) == 0)
        .collect()
}

/// How many columns come before the server's: NAMESPACE with `-A`.
fn table_offset(resource: &Served, view: &View) -> usize {
    usize::from(view.all_namespaces && resource.namespaced())
}

/// A cell as kubectl prints it: strings as they are, numbers and booleans
/// in their JSON form, nothing for null.
fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The tables as printed: a blank line between tables with headers, none
/// for empty ones.
pub(crate) fn render_tables(tables: &[Table], no_headers: bool) -> String {
    let rendered: Vec<String> = tables
        .iter()
        .filter(|t| !t.rows.is_empty())
        .map(|t| t.render(no_headers))
        .collect();
    rendered.join(if no_headers { "" } else { "\n" })
}

/// The header row of `resource`'s table: the shown columns' names upper-cased.
fn headers(resource: &Served, columns: &[Value], shown: &[usize], view: &View) -> Vec<String> {
    let mut headers: Vec<String> = shown
        .iter()
        .map(|&i| {
            columns[i]["name"]
                .as_str()
                .unwrap_or_default()
                .to_uppercase()
        })
        .collect();
    if table_offset(resource, view) == 1 {
        headers.insert(0, "NAMESPACE".into());
    }
    // `-L app.kubernetes.io/name` is headed NAME, as kubectl heads it.
    for key in &view.label_columns {
        let last = key.rsplit('/').next().unwrap_or(key);
        headers.push(last.to_uppercase());
    }
    if view.show_labels {
        headers.push("LABELS".into());
    }
    headers
}

fn table_row(
    resource: &Served,
    object: &Value,
    cells: &[Value],
    shown: &[usize],
    view: &View,
) -> Vec<String> {
    let mut row: Vec<String> = shown
        .iter()
        .map(|&i| cells.get(i).map(cell_text).unwrap_or_default())
        .collect();
    if table_offset(resource, view) == 1 {
        row.insert(0, text(object, &["metadata", "namespace"]));
    }
    let labels = at(object, &["metadata", "labels"]).and_then(Value::as_object);
    let label = |key: &str| {
        labels
            .and_then(|l| l.get(key))
            .map(super::jsonpath::show)
            .unwrap_or_default()
    };
    for key in &view.label_columns {
        row.push(label(key));
    }
    if view.show_labels {
        row.push(format_labels(object));
    }
    row
}

/// Labels as kubectl's LABELS column shows them: `a=1,b=2` sorted by key,
/// or `<none>`.
pub(crate) fn format_labels(object: &Value) -> String {
    let Some(labels) = at(object, &["metadata", "labels"]).and_then(Value::as_object) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", super::jsonpath::show(v)))
        .collect();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs.join(",")
}

/// kubectl's message for an empty result.
pub(crate) fn no_resources(namespaced: bool, namespace: &str) -> String {
    if namespaced && !namespace.is_empty() {
        format!("No resources found in {namespace} namespace.")
    } else {
        "No resources found".into()
    }
}

/// List items come without `apiVersion` and `kind`; kubectl shows them with.
pub(crate) fn fill_type_meta(object: &mut Value, resource: &Served) {
    if let Value::Object(map) = object {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(resolve::api_version(resource)));
        map.entry("kind")
            .or_insert_with(|| Value::String(resource.resource.kind.clone()));
    }
}

/// Prints each watch event after the listed state, until the stream ends;
/// table rows use the listed table's column widths, or print `header` first.
async fn watch(
    session: &mut Session,
    resource: &Served,
    args: &GetArgs,
    view: &View,
    names: &[String],
    resource_version: &str,
    (mut header, mut widths): (Option<Vec<String>>, Vec<usize>),
) -> Result<(), Error> {
    let mut field_selector = args.field_selector.clone().unwrap_or_default();
    if let [name] = names {
        if !field_selector.is_empty() {
            field_selector.push(',');
        }
        field_selector.push_str(&format!("metadata.name={name}"));
    }
    let namespace = if args.all_namespaces && resource.namespaced() {
        String::new()
    } else {
        super::namespace_or_default(&args.namespace)
    };
    let params = WatchParams {
        label_selector: args.selector.clone(),
        field_selector: Some(field_selector).filter(|s| !s.is_empty()),
        ..WatchParams::default()
    };
    let server_table = matches!(view.output, None | Some(GetOutput::Wide));
    let api = session.api(resource, &namespace);
    let stream = match server_table {
        true => {
            api.watch_table(&params, resource_version, IncludeObject::Metadata)
                .await
        }
        false => api.watch_raw(&params, resource_version).await,
    };
    let mut stream = stream.map_err(|e| session.error(e))?;
    let one = View {
        output: view.output.clone(),
        single: true,
        show_managed_fields: view.show_managed_fields,
        ..View::default()
    };
    loop {
        let mut object = match stream.next().await {
            None => return Ok(()),
            Some(Err(err)) => return Err(session.error(err)),
            Some(Ok(WatchEvent::Bookmark(_))) => continue,
            Some(Ok(WatchEvent::Error(status))) => {
                let message = &status.message;
                return Err(Error::Usage(format!("the watch ended: {message}")));
            }
            Some(Ok(
                WatchEvent::Added(object)
                | WatchEvent::Modified(object)
                | WatchEvent::Deleted(object),
            )) => object,
        };
        let mut table = None;
        if server_table {
            let mut rows = ServerTable::default();
            object = rows.extend(&object).pop().unwrap_or_default();
            table = Some(rows);
        }
        fill_type_meta(&mut object, resource);
        let group = [Group {
            resource: resource.clone(),
            objects: vec![object],
            table,
        }];
        match &view.output {
            None | Some(GetOutput::Wide) | Some(GetOutput::CustomColumns(_)) => {
                let Shown::Tables(tables) = render(&group, view)? else {
                    continue;
                };
                for table in tables {
                    if let Some(headers) = header.take() {
                        let with_header = Table {
                            headers,
                            rows: table.rows.clone(),
                        };
                        widths = with_header.widths();
                        print(&render_row(&with_header.headers, &widths));
                    }
                    for row in &table.rows {
                        print(&render_row(row, &widths));
                    }
                }
            }
            output => {
                if let Shown::Text(text) = render(&group, &one)? {
                    let separator = if output == &Some(GetOutput::Yaml) {
                        "---\n"
                    } else {
                        ""
                    };
                    print(&format!("{separator}{text}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubectl::resolve::tests::served;

    fn resource(name: &str) -> Served {
        served(name)
    }

    fn object(resource: &Served, name: &str, namespace: &str) -> Value {
        let mut object = json!({"metadata": {"name": name, "namespace": namespace},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]},
               "status": {"phase": "Pending"}});
        fill_type_meta(&mut object, resource);
        object
    }

    fn group(resource: &Served, names: &[&str]) -> Group {
        let objects = names
            .iter()
            .map(|n| object(resource, n, "default"))
            .collect();
        with_table(resource, objects)
    }

    /// A group of `objects` with the table the server answers for them.
    fn with_table(resource: &Served, objects: Vec<Value>) -> Group {
        let kind = &resource.resource.kind;
        let server = skiff_api::printers::table(kind, &objects, IncludeObject::Object, 0);
        let mut table = ServerTable::default();
        table.extend(&server);
        Group {
            resource: resource.clone(),
            objects,
            table: Some(table),
        }
    }

    fn text(groups: &[Group], view: &View) -> String {
        match render(groups, view).unwrap() {
            Shown::Text(text) => text,
            Shown::Tables(_) => panic!("tables"),
        }
    }

    fn tables(groups: &[Group], view: &View) -> String {
        match render(groups, view).unwrap() {
            Shown::Tables(tables) => render_tables(&tables, view.no_headers),
            Shown::Text(_) => panic!("text"),
        }
    }

    #[test]
    fn managed_fields_are_left_out_unless_asked_for() {
        let pods = resource("pods");
        let mut one = group(&pods, &["web"]);
        one.objects[0]["metadata"]["managedFields"] =
            json!([{"manager": "kubectl-client-side-apply", "operation": "Update"}]);
        let yaml = View {
            output: Some(GetOutput::Yaml),
            single: true,
            ..View::default()
        };
        let printed = text(std::slice::from_ref(&one), &yaml);
        assert!(!printed.contains("managedFields"), "{printed}");
        assert!(printed.contains("name: web"), "{printed}");
        let shown = View {
            show_managed_fields: true,
            ..yaml
        };
        let printed = text(&[one], &shown);
        assert!(
            printed.contains("manager: kubectl-client-side-apply"),
            "{printed}"
        );
    }

    #[test]
    fn one_named_object_prints_itself_and_anything_else_a_list() {
        let pods = resource("pods");
        let one = group(&pods, &["web"]);
        let single = View {
            output: Some(GetOutput::Json),
            single: true,
            ..View::default()
        };
        let printed = text(std::slice::from_ref(&one), &single);
        assert_eq!(
            serde_json::from_str::<Value>(&printed).unwrap(),
            one.objects[0]
        );
        assert!(printed.starts_with("{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",\n"));
        // A listing of one is still a List, as kubectl prints it.
        let listed = View {
            output: Some(GetOutput::Yaml),
            ..View::default()
        };
        let printed = text(&[one], &listed);
        assert!(printed.starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n"));
        assert!(
            printed.ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"),
            "{printed}"
        );
    }

    #[test]
    fn several_kinds_print_one_table_each_with_kind_slash_name() {
        let (pods, services) = (resource("pods"), resource("services"));
        let groups = [group(&pods, &["web-1"]), group(&services, &["kubernetes"])];
        let printed = tables(&groups, &View::default());
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines[0], "NAME        READY   STATUS    RESTARTS   AGE");
        assert!(lines[1].starts_with("pod/web-1   0/1     "), "{printed}");
        assert_eq!(lines[2], "");
        assert!(
            lines[3].starts_with("NAME                 TYPE"),
            "{printed}"
        );
        assert!(lines[4].starts_with("service/kubernetes   "), "{printed}");
        assert_eq!(lines.len(), 5);
        // With one kind found, names are bare even if two were asked for.
        let groups = [group(&pods, &["web-1"]), group(&services, &[])];
        let printed = tables(&groups, &View::default());
        assert!(printed.lines().nth(1).unwrap().starts_with("web-1 "));
        assert_eq!(printed.lines().count(), 2);
        // Without headers, no blank line either.
        let groups = [group(&pods, &["a"]), group(&services, &["b"])];
        let bare = View {
            no_headers: true,
            ..View::default()
        };
        let printed = tables(&groups, &bare);
        assert_eq!(
            cells(&printed),
            [
                vec!["pod/a", "0/1", "Pending", "0", "<unknown>"],
                vec![
                    "service/b",
                    "ClusterIP",
                    "<none>",
                    "<none>",
                    "<none>",
                    "<unknown>"
                ]
            ]
        );
        // Names and YAML cover every kind.
        let names = View {
            output: Some(GetOutput::Name),
            ..View::default()
        };
        assert_eq!(text(&groups, &names), "pod/a\nservice/b\n");
        // --show-kind names the type with one type too.
        let show_kind = View {
            show_kind: true,
            no_headers: true,
            ..View::default()
        };
        let printed = tables(&[group(&pods, &["a"])], &show_kind);
        assert!(printed.starts_with("pod/a   0/1 "), "{printed}");
    }

    fn cells(text: &str) -> Vec<Vec<&str>> {
        text.lines()
            .map(|l| l.split_whitespace().collect())
            .collect()
    }

    #[test]
    fn all_namespaces_adds_the_namespace_column_to_namespaced_kinds_only() {
        let (pods, nodes) = (resource("pods"), resource("nodes"));
        let groups = [
            with_table(&pods, vec![object(&pods, "a", "prod")]),
            group(&nodes, &["n1"]),
        ];
        let view = View {
            all_namespaces: true,
            ..View::default()
        };
        let printed = tables(&groups, &view);
        let table = cells(&printed);
        assert_eq!(table[0][..2], ["NAMESPACE", "NAME"]);
        assert_eq!(table[1][..3], ["prod", "pod/a", "0/1"]);
        assert_eq!(table[3][..2], ["NAME", "STATUS"]);
        assert_eq!(table[4][0], "node/n1");
    }

    #[test]
    fn label_columns_and_show_labels_come_last() {
        let pods = resource("pods");
        let mut labelled = object(&pods, "web", "default");
        labelled["metadata"]["labels"] =
            json!({"tier": "front", "app.kubernetes.io/name": "web", "app": "web"});
        let groups = [with_table(
            &pods,
            vec![labelled, object(&pods, "bare", "default")],
        )];
        let view = View {
            label_columns: vec!["app.kubernetes.io/name".into(), "tier".into()],
            show_labels: true,
            ..View::default()
        };
        assert_eq!(
            tables(&groups, &view),
            "NAME   READY   STATUS    RESTARTS   AGE         NAME   TIER    LABELS\n\
             web    0/1     Pending   0          <unknown>   web    front   \
             app.kubernetes.io/name=web,app=web,tier=front\n\
             bare   0/1     Pending   0          <unknown>                  <none>\n"
        );
    }

    #[test]
    fn jsonpath_and_custom_columns_read_the_objects() {
        let pods = resource("pods");
        let groups = [group(&pods, &["a", "b"])];
        let view = View {
            output: Some(GetOutput::JsonPath("{.items[*].metadata.name}".into())),
            ..View::default()
        };
        assert_eq!(text(&groups, &view), "a b");
        let view = View {
            output: Some(GetOutput::CustomColumns(
                "NAME:.metadata.name,IMAGE:.spec.containers[*].image".into(),
            )),
            ..View::default()
        };
        assert_eq!(
            tables(&groups, &view),
            "NAME   IMAGE\na      nginx\nb      nginx\n"
        );
    }

    #[test]
    fn output_formats_parse_as_kubectls() {
        assert_eq!("yaml".parse(), Ok(GetOutput::Yaml));
        assert_eq!(
            "jsonpath={.a}".parse(),
            Ok(GetOutput::JsonPath("{.a}".into()))
        );
        assert_eq!(
            "custom-columns=A:.a".parse(),
            Ok(GetOutput::CustomColumns("A:.a".into()))
        );
        assert_eq!(
            "jsonpath".parse::<GetOutput>(),
            Err("template format specified but no template given".into())
        );
        assert!("table"
            .parse::<GetOutput>()
            .unwrap_err()
            .starts_with("unable to match a printer suitable for the output format \"table\""));
    }

    #[test]
    fn empty_results_say_where_nothing_was_found() {
        assert_eq!(
            no_resources(true, "default"),
            "No resources found in default namespace."
        );
        assert_eq!(no_resources(false, "default"), "No resources found");
    }
}
