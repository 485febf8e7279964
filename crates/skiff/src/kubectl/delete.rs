//! `skiff delete`: delete objects named on the command line or in manifests,
//! printing `pod "web" deleted` for each as kubectl does.
//!
//! # Caveats
//! The command returns once the server accepted the deletion; it does not
//! wait for finalizers or graceful pod termination (kubectl's `--wait`). No
//! `--cascade`, `--grace-period` or `--field-selector`.

use skiff_client::{DeleteParams, ListParams, Served};

use super::{apply, manifest, print, printers, resolve, targets, Error, Session, Target};
use crate::cli::DeleteArgs;

/// Runs `skiff delete`.
pub(crate) async fn run(args: DeleteArgs) -> Result<(), Error> {
    let named = match &args.kind {
        Some(kind) => Some(targets(kind, &args.names)?),
        None => None,
    };
    check_arguments(&args, named.as_deref())?;
    let mut session = Session::connect(args.server.server.as_deref()).await?;
    let mut failed = false;
    if let Some(targets) = named {
        let namespace = super::namespace_or_default(&args.namespace);
        let mut resources = Vec::new();
        for target in &targets {
            resources.push(session.resource(&target.typed)?);
        }
        let by_selector = args.all || args.selector.is_some();
        let mut found = 0;
        for (target, resource) in targets.iter().zip(&resources) {
            let names = if by_selector {
                let selector = args.selector.clone().unwrap_or_default();
                list_names(&mut session, resource, &namespace, selector).await?
            } else {
                target.names.clone()
            };
            found += names.len();
            for name in &names {
                let deleted = delete_one(
                    &mut session,
                    resource,
                    &namespace,
                    name,
                    args.ignore_not_found,
                )
                .await;
                failed |= !report(deleted);
            }
        }
        if by_selector && found == 0 {
            // kubectl says so on standard output, and succeeds.
            print("No resources found\n");
        }
    } else {
        for document in manifest::read_all(&args.files) {
            let target = apply::target(&session, &document, args.namespace.as_deref());
            let deleted = match target {
                Ok(t) => {
                    delete_one(
                        &mut session,
                        &t.resource,
                        &t.namespace,
                        &t.name,
                        args.ignore_not_found,
                    )
                    .await
                }
                Err(err) => Err(err),
            };
            failed |= !report(deleted);
        }
    }
    if failed {
        Err(Error::Reported)
    } else {
        Ok(())
    }
}

/// Refuses argument combinations kubectl refuses, in kubectl's words.
fn check_arguments(args: &DeleteArgs, named: Option<&[Target]>) -> Result<(), Error> {
    let usage = |text: &str| Err(Error::Usage(text.into()));
    let by_selector = args.all || args.selector.is_some();
    if args.all && args.selector.is_some() {
        return usage("cannot set --all and --selector at the same time");
    }
    match (named, args.files.is_empty()) {
        (Some(_), false) => usage(
            "there is no need to specify a resource type as a separate argument when passing \
             arguments in resource/name form or with -f",
        ),
        (None, true) => usage("you must provide one or more resources by argument or filename"),
        (Some(targets), true) if by_selector && targets.iter().any(|t| !t.names.is_empty()) => {
            usage("name cannot be provided when a selector is specified")
        }
        (Some(targets), true) if !by_selector && targets.iter().any(|t| t.names.is_empty()) => {
            usage("resource(s) were provided, but no name was specified")
        }
        _ => Ok(()),
    }
}

/// The names of `resource`'s objects in `namespace` matching `selector`.
async fn list_names(
    session: &mut Session,
    resource: &Served,
    namespace: &str,
    selector: String,
) -> Result<Vec<String>, Error> {
    let params = ListParams::default().labels(&selector);
    let list = session
        .api(resource, namespace)
        .list_raw(&params)
        .await
        .map_err(|e| session.error(e))?;
    Ok(list
        .get("items")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .map(|item| printers::text(item, &["metadata", "name"]))
        .collect())
}

/// Prints the line or the error; whether it went well.
fn report(result: Result<Option<String>, Error>) -> bool {
    match result {
        Ok(Some(line)) => {
            print(&format!("{line}\n"));
            true
        }
        Ok(None) => true,
        Err(err) => {
            eprintln!("{err}");
            false
        }
    }
}

/// Deletes one object; the line to print, or none for an ignored NotFound.
async fn delete_one(
    session: &mut Session,
    resource: &Served,
    namespace: &str,
    name: &str,
    ignore_not_found: bool,
) -> Result<Option<String>, Error> {
    let api = session.api(resource, namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(Some(deleted_line(resource, name))),
        Err(err) if ignore_not_found && err.is_not_found() => Ok(None),
        Err(err) => Err(session.error(err)),
    }
}

/// `pod "web" deleted`, `deployment.apps "web" deleted`.
pub(crate) fn deleted_line(resource: &Served, name: &str) -> String {
    format!("{} \"{name}\" deleted", resolve::kind_prefix(resource))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubectl::resolve::tests::served;

    fn args(line: &[&str]) -> DeleteArgs {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([&["skiff", "delete"], line].concat()).unwrap();
        match cli.command {
            crate::cli::Command::Delete(args) => args,
            _ => panic!("not delete"),
        }
    }

    fn check(line: &[&str]) -> Result<(), String> {
        let args = args(line);
        let named = match &args.kind {
            Some(kind) => Some(targets(kind, &args.names).unwrap()),
            None => None,
        };
        check_arguments(&args, named.as_deref()).map_err(|e| e.to_string())
    }

    #[test]
    fn names_selectors_and_files_combine_only_as_kubectl_allows() {
        assert_eq!(check(&["po", "web"]), Ok(()));
        assert_eq!(check(&["po", "-l", "app=web"]), Ok(()));
        assert_eq!(check(&["po,svc", "--all"]), Ok(()));
        assert_eq!(check(&["-f", "x.yaml"]), Ok(()));
        for (line, message) in [
            (
                &["po"][..],
                "error: resource(s) were provided, but no name was specified",
            ),
            (
                &["po", "web", "-l", "a=b"],
                "error: name cannot be provided when a selector is specified",
            ),
            (
                &["po", "--all", "-l", "a=b"],
                "error: cannot set --all and --selector at the same time",
            ),
            (
                &[],
                "error: you must provide one or more resources by argument or filename",
            ),
        ] {
            assert_eq!(check(line), Err(message.to_string()), "{line:?}");
        }
    }

    #[test]
    fn deleted_lines_name_the_kind_as_kubectl_does() {
        let pods = &served("po");
        assert_eq!(deleted_line(pods, "web"), "pod \"web\" deleted");
        let deploy = &served("deploy");
        assert_eq!(
            deleted_line(deploy, "web"),
            "deployment.apps \"web\" deleted"
        );
    }
}
