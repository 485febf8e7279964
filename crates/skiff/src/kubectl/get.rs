//! `skiff get`: list or read objects of one or more types and print them as
//! kubectl does — tables, YAML, JSON, names, JSONPath or custom columns;
//! with `-w`, keep printing rows as watch events arrive.
//!
//! Like kubectl, `get po,svc` and `get po/web svc/api` print one table per
//! type, separated by a blank line, and when objects of more than one type
//! are shown each NAME says its type (`pod/web`, `service/api`). YAML, JSON
//! and JSONPath see a `List` unless exactly one object was named.
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
use super::table::{render_row, Table};
use super::{age, print, printers, resolve, targets, Error, Session};
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
    /// The objects, with `apiVersion` and `kind` filled in.
    pub objects: Vec<Value>,
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
    };
    match &view.output {
        Some(GetOutput::JsonPath(template)) => drop(Template::parse(template)?),
        Some(GetOutput::CustomColumns(spec)) => drop(CustomColumns::parse(spec)?),
        _ => {}
    }
    let sort_by = args.sort_by.as_deref().map(SortBy::parse).transpose()?;
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
        if target.names.is_empty() {
            let params = ListParams {
                label_selector: args.selector.clone(),
                field_selector: args.field_selector.clone(),
                ..ListParams::default()
            };
            let list = api.list_raw(&params).await.map_err(|e| session.error(e))?;
            resource_version = printers::text(&list, &["metadata", "resourceVersion"]);
            objects = list
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
        }
        for name in &target.names {
            match api.get_raw(name).await {
                Ok(object) => objects.push(object),
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
        if let Some(sort_by) = &sort_by {
            sort_by.sort(&mut objects);
        }
        match groups.last_mut() {
            Some(last) if last.resource.resource == resource.resource => {
                last.objects.extend(objects)
            }
            _ => groups.push(Group {
                resource: resource.clone(),
                objects,
            }),
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
    let shown = render(&groups, &view, age::now())?;
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

/// Formats the groups for output.
pub(crate) fn render(groups: &[Group], view: &View, now: i64) -> Result<Shown, Error> {
    let objects = || groups.iter().flat_map(|g| g.objects.iter());
    // The object itself when exactly one was named, otherwise a List.
    let data = || match (view.single, objects().count()) {
        (true, 1) => objects().next().cloned().unwrap_or_default(),
        _ => json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": objects().cloned().collect::<Vec<_>>(),
            "metadata": {"resourceVersion": ""},
        }),
    };
    let text = match &view.output {
        None | Some(GetOutput::Wide) | Some(GetOutput::CustomColumns(_)) => {
            return table_groups(groups, view, now).map(Shown::Tables)
        }
        Some(GetOutput::Name) => groups
            .iter()
            .flat_map(|g| {
                g.objects.iter().map(|o| {
                    let name = printers::text(o, &["metadata", "name"]);
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
fn table_groups(groups: &[Group], view: &View, now: i64) -> Result<Vec<Table>, Error> {
    let kinds = {
        let mut kinds: Vec<String> = groups
            .iter()
            .filter(|g| !g.objects.is_empty())
            .map(|g| resolve::kind_prefix(&g.resource))
            .collect();
        kinds.dedup();
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
        let table = match &columns {
            Some(columns) => Table {
                headers: columns.headers.clone(),
                rows: group.objects.iter().map(|o| columns.row(o)).collect(),
            },
            None => {
                let mut table = Table {
                    headers: headers(&group.resource, view),
                    rows: Vec::new(),
                };
                let name_column = table.headers.iter().position(|h| h == "NAME");
                for object in &group.objects {
                    let mut row = table_row(&group.resource, object, now, view);
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

/// The header row of `resource`'s table.
fn headers(resource: &Served, view: &View) -> Vec<String> {
    let wide = view.output == Some(GetOutput::Wide);
    let mut headers: Vec<String> = printers::headers(&resource.resource.kind, wide)
        .into_iter()
        .map(str::to_string)
        .collect();
    if view.all_namespaces && resource.namespaced() {
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

fn table_row(resource: &Served, object: &Value, now: i64, view: &View) -> Vec<String> {
    let wide = view.output == Some(GetOutput::Wide);
    let mut row = printers::row(&resource.resource.kind, object, now, wide);
    if view.all_namespaces && resource.namespaced() {
        row.insert(0, printers::text(object, &["metadata", "namespace"]));
    }
    let labels = printers::at(object, &["metadata", "labels"]).and_then(Value::as_object);
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
    let Some(labels) = printers::at(object, &["metadata", "labels"]).and_then(Value::as_object)
    else {
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
    let mut stream = session
        .api(resource, &namespace)
        .watch_raw(&params, resource_version)
        .await
        .map_err(|e| session.error(e))?;
    let one = View {
        output: view.output.clone(),
        single: true,
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
        fill_type_meta(&mut object, resource);
        let group = [Group {
            resource: resource.clone(),
            objects: vec![object],
        }];
        match &view.output {
            None | Some(GetOutput::Wide) | Some(GetOutput::CustomColumns(_)) => {
                let Shown::Tables(tables) = render(&group, view, age::now())? else {
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
                if let Shown::Text(text) = render(&group, &one, age::now())? {
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
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        fill_type_meta(&mut object, resource);
        object
    }

    fn group(resource: &Served, names: &[&str]) -> Group {
        Group {
            resource: resource.clone(),
            objects: names
                .iter()
                .map(|n| object(resource, n, "default"))
                .collect(),
        }
    }

    fn text(groups: &[Group], view: &View) -> String {
        match render(groups, view, 0).unwrap() {
            Shown::Text(text) => text,
            Shown::Tables(_) => panic!("tables"),
        }
    }

    fn tables(groups: &[Group], view: &View) -> String {
        match render(groups, view, 0).unwrap() {
            Shown::Tables(tables) => render_tables(&tables, view.no_headers),
            Shown::Text(_) => panic!("text"),
        }
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
            Group {
                resource: pods.clone(),
                objects: vec![object(&pods, "a", "prod")],
            },
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
        let groups = [Group {
            resource: pods.clone(),
            objects: vec![labelled, object(&pods, "bare", "default")],
        }];
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
