//! `skiff get`: list or read objects and print them as a table, YAML, JSON or
//! names; with `-w`, keep printing rows as watch events arrive.
//!
//! Lists are read whole, then the watch starts from the list's
//! resourceVersion, so no change between the two is missed (kubectl's
//! list-then-watch). The watch ends when the server closes the stream.
//!
//! # Caveats
//! No `--sort-by`, `-L`, `--show-labels`, custom columns, JSONPath or
//! `--output-watch-events`; several kinds in one command (`get po,svc`) are
//! not accepted.

use serde_json::{json, Value};
use skiff_proto::api::{ApiResource, GetRequest, ListRequest, WatchRequest};

use super::table::{render_row, Table};
use super::{age, decode, kind_and_names, print, printers, reference, resolve, Error, Session};
use crate::cli::{GetArgs, GetOutput};

/// Runs `skiff get`.
pub(crate) async fn run(args: GetArgs) -> Result<(), Error> {
    let (kind, names) = kind_and_names(&args.kind, &args.names)?;
    if args.all_namespaces && !names.is_empty() {
        return Err(Error::Usage(
            "a resource cannot be retrieved by name across all namespaces".into(),
        ));
    }
    let mut session = Session::connect(args.server.server.as_deref()).await?;
    let resource = session.resource(&kind)?;
    let all_namespaces = args.all_namespaces && resource.namespaced;
    let namespace = if all_namespaces {
        String::new()
    } else {
        super::namespace_or_default(&args.namespace)
    };

    let mut failed = false;
    let mut objects = Vec::new();
    let mut resource_version = String::new();
    if names.is_empty() {
        let list = session
            .client
            .list(ListRequest {
                r#ref: Some(reference(&resource, &namespace, "")),
                label_selector: args.selector.clone().unwrap_or_default(),
                field_selector: args.field_selector.clone().unwrap_or_default(),
                ..Default::default()
            })
            .await
            .map_err(|e| session.rpc_error(e))?
            .into_inner();
        let list = decode(&list.list)?;
        resource_version = printers::text(&list, &["metadata", "resourceVersion"]);
        objects = list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
    } else {
        for name in &names {
            let got = session
                .client
                .get(GetRequest {
                    r#ref: Some(reference(&resource, &namespace, name)),
                    ..Default::default()
                })
                .await;
            match got {
                Ok(reply) => objects.push(decode(&reply.into_inner().object)?),
                Err(status) => {
                    eprintln!("{}", session.rpc_error(status));
                    failed = true;
                }
            }
        }
    }
    for object in &mut objects {
        fill_type_meta(object, &resource);
    }

    let single = names.len() == 1;
    let shown = render(&resource, &objects, args.output, all_namespaces, single);
    // Watch rows line up under the listed table's columns; with nothing
    // listed, the header comes with the first row.
    let mut header = None;
    let mut widths = Vec::new();
    match shown {
        Shown::Table(table) if table.rows.is_empty() => {
            if !failed && !args.watch {
                eprintln!("{}", no_resources(&resource, &namespace));
            }
            header = Some(table.headers);
        }
        Shown::Table(table) => {
            widths = table.widths();
            print(&table.render(false));
        }
        Shown::Text(text) => print(&text),
    }

    if args.watch {
        watch(
            &mut session,
            &resource,
            &namespace,
            &args,
            &names,
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

/// What `get` prints: a table, or text already formatted.
#[derive(Debug, PartialEq)]
pub(crate) enum Shown {
    /// Rows for the table printer.
    Table(Table),
    /// YAML, JSON or names.
    Text(String),
}

/// Formats `objects` for output; `single` asks for the object itself rather
/// than a List in YAML and JSON, as kubectl does for one named object.
pub(crate) fn render(
    resource: &ApiResource,
    objects: &[Value],
    output: Option<GetOutput>,
    all_namespaces: bool,
    single: bool,
) -> Shown {
    let now = age::now();
    match output {
        None | Some(GetOutput::Wide) => {
            let wide = output == Some(GetOutput::Wide);
            let mut headers: Vec<String> = printers::headers(&resource.kind, wide)
                .into_iter()
                .map(str::to_string)
                .collect();
            if all_namespaces {
                headers.insert(0, "NAMESPACE".into());
            }
            let rows = objects
                .iter()
                .map(|o| table_row(resource, o, now, wide, all_namespaces))
                .collect();
            Shown::Table(Table { headers, rows })
        }
        Some(GetOutput::Name) => Shown::Text(
            objects
                .iter()
                .map(|o| {
                    let name = printers::text(o, &["metadata", "name"]);
                    format!("{}\n", resolve::object_name(resource, &name))
                })
                .collect(),
        ),
        Some(format @ (GetOutput::Json | GetOutput::Yaml)) => {
            let value = match objects {
                [one] if single => one.clone(),
                _ => json!({
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": objects,
                    "metadata": {"resourceVersion": ""},
                }),
            };
            Shown::Text(encode(&value, format))
        }
    }
}

fn table_row(
    resource: &ApiResource,
    object: &Value,
    now: i64,
    wide: bool,
    all_namespaces: bool,
) -> Vec<String> {
    let mut row = printers::row(&resource.kind, object, now, wide);
    if all_namespaces {
        row.insert(0, printers::text(object, &["metadata", "namespace"]));
    }
    row
}

/// An object as `-o json` (four-space indents, as kubectl) or `-o yaml` prints it.
pub(crate) fn encode(value: &Value, format: GetOutput) -> String {
    if format == GetOutput::Yaml {
        return serde_yaml::to_string(value).unwrap_or_else(|e| format!("# not YAML: {e}\n"));
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer).expect("a Value always encodes");
    let mut text = String::from_utf8(out).expect("JSON is UTF-8");
    text.push('\n');
    text
}

/// kubectl's message for an empty list.
pub(crate) fn no_resources(resource: &ApiResource, namespace: &str) -> String {
    if resource.namespaced && !namespace.is_empty() {
        format!("No resources found in {namespace} namespace.")
    } else {
        "No resources found".into()
    }
}

/// List items come without `apiVersion` and `kind`; kubectl shows them with.
pub(crate) fn fill_type_meta(object: &mut Value, resource: &ApiResource) {
    if let Value::Object(map) = object {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(resolve::api_version(resource)));
        map.entry("kind")
            .or_insert_with(|| Value::String(resource.kind.clone()));
    }
}

/// Prints each watch event after the listed state, until the stream ends;
/// table rows use the listed table's column widths, or print `header` first.
async fn watch(
    session: &mut Session,
    resource: &ApiResource,
    namespace: &str,
    args: &GetArgs,
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
    let mut stream = session
        .client
        .watch(WatchRequest {
            r#ref: Some(reference(resource, namespace, "")),
            resource_version: resource_version.to_string(),
            label_selector: args.selector.clone().unwrap_or_default(),
            field_selector,
            ..Default::default()
        })
        .await
        .map_err(|e| session.rpc_error(e))?
        .into_inner();
    let all_namespaces = args.all_namespaces && resource.namespaced;
    loop {
        let event = match stream.message().await {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(()),
            Err(status) => return Err(session.rpc_error(status)),
        };
        match event.r#type.as_str() {
            "BOOKMARK" => continue,
            "ERROR" => {
                let status = decode(&event.object)?;
                let message = printers::text(&status, &["message"]);
                return Err(Error::Usage(format!("the watch ended: {message}")));
            }
            _ => {}
        }
        let mut object = decode(&event.object)?;
        fill_type_meta(&mut object, resource);
        match args.output {
            None | Some(GetOutput::Wide) => {
                let wide = args.output == Some(GetOutput::Wide);
                let row = table_row(resource, &object, age::now(), wide, all_namespaces);
                if let Some(headers) = header.take() {
                    let table = Table {
                        headers,
                        rows: vec![row.clone()],
                    };
                    widths = table.widths();
                    print(&render_row(&table.headers, &widths));
                }
                print(&render_row(&row, &widths));
            }
            Some(format) => {
                if let Shown::Text(text) = render(resource, &[object], Some(format), false, true) {
                    let separator = if format == GetOutput::Yaml {
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

    fn pods() -> ApiResource {
        resolve::by_name(&served(), "pods").unwrap().clone()
    }

    fn pod(name: &str, namespace: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": namespace},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    #[test]
    fn one_named_object_prints_itself_and_several_print_a_list() {
        let resource = pods();
        let mut one = pod("web", "default");
        fill_type_meta(&mut one, &resource);
        let Shown::Text(text) = render(
            &resource,
            &[one.clone()],
            Some(GetOutput::Json),
            false,
            true,
        ) else {
            panic!("json is text")
        };
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), one);
        assert!(text.contains("\n    \"kind\": \"Pod\""), "{text}");
        let Shown::Text(text) = render(
            &resource,
            &[one.clone(), one.clone()],
            Some(GetOutput::Yaml),
            false,
            false,
        ) else {
            panic!("yaml is text")
        };
        let list: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"][1]["metadata"]["name"], "web");
        // A list of one, unnamed, is still a List.
        let Shown::Text(text) = render(&resource, &[one], Some(GetOutput::Json), false, false)
        else {
            panic!("json is text")
        };
        assert!(text.contains("\"kind\": \"List\""), "{text}");
    }

    #[test]
    fn all_namespaces_puts_the_namespace_first_and_names_print_kind_slash_name() {
        let resource = pods();
        let objects = [pod("a", "prod"), pod("b", "dev")];
        let Shown::Table(table) = render(&resource, &objects, None, true, false) else {
            panic!("a table")
        };
        assert_eq!(table.headers[..2], ["NAMESPACE", "NAME"]);
        assert_eq!(table.rows[0][..3], ["prod", "a", "0/1"]);
        assert_eq!(
            render(&resource, &objects, Some(GetOutput::Name), false, false),
            Shown::Text("pod/a\npod/b\n".into())
        );
    }

    #[test]
    fn empty_lists_say_where_nothing_was_found() {
        let resource = pods();
        assert_eq!(
            no_resources(&resource, "default"),
            "No resources found in default namespace."
        );
        assert_eq!(no_resources(&resource, ""), "No resources found");
        let nodes = resolve::by_name(&served(), "nodes").unwrap().clone();
        assert_eq!(no_resources(&nodes, "default"), "No resources found");
    }
}
