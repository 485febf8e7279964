//! `skiff delete`: delete objects named on the command line or in manifests,
//! printing `pod "web" deleted` for each as kubectl does, then waiting until
//! they are gone.
//!
//! Deleting an object that owns others (through their ownerReferences) also
//! decides what happens to them, kubectl's `--cascade` carried to the server
//! as DeleteOptions' `propagationPolicy`; the garbage collector
//! (`skiff_controllers::garbagecollector`) does the rest:
//! - `background` (the default): the owner goes at once, its dependents
//!   after it;
//! - `foreground`: the owner stays, with a `foregroundDeletion` finalizer,
//!   until its blocking dependents are gone;
//! - `orphan`: the owner stays, with an `orphan` finalizer, until its
//!   dependents' ownerReferences to it are removed; they live on.
//!
//! `--grace-period`, `--now` and `--force` set `gracePeriodSeconds` (how long
//! a pod's containers get to stop). With `--wait` (the default) the command
//! returns once every deleted object is gone, followed by watch
//! ([`super::follow`]).
//! See <https://kubernetes.io/docs/concepts/architecture/garbage-collection/>.
//!
//! # Layout
//! - this file: the command, object by object.
//! - [`options`]: the flags turned into DeleteOptions, with kubectl's rules
//!   and warnings.
//! - [`wait`]: waiting until the deleted objects are gone.
//!
//! # Caveats
//! No `--field-selector`, `--dry-run`, `--raw` or `--interactive`. An
//! object recreated under the same name while waiting counts as gone (its
//! uid differs), as in kubectl.

pub(crate) mod options;
pub(crate) mod wait;

use std::io::Write;

use skiff_client::{Api, DynamicObject, Either, ListParams, ResourceExt, Served};

use super::{apply, manifest, resolve, targets, Error, Session, Target};
use crate::cli::DeleteArgs;
use wait::Pending;

/// Runs `skiff delete`.
pub(crate) async fn run(args: DeleteArgs) -> Result<(), Error> {
    let named = match &args.kind {
        Some(kind) => Some(targets(kind, &args.names)?),
        None => None,
    };
    check_arguments(&args, named.as_deref())?;
    let options = options::Options::from_args(&args)?;
    for warning in &options.warnings {
        eprintln!("{warning}");
    }
    let session = Session::connect(args.server.server.as_deref()).await?;
    execute(&session, &args, &options, &mut std::io::stdout()).await
}

/// Deletes what `args` name over `session`, writing kubectl's lines to
/// `out` (errors go to standard error as they happen), then waits as
/// `--wait` asks.
pub(crate) async fn execute(
    session: &Session,
    args: &DeleteArgs,
    options: &options::Options,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let named = match &args.kind {
        Some(kind) => Some(targets(kind, &args.names)?),
        None => None,
    };
    let mut failed = false;
    let mut pending = Vec::new();
    let mut one = |result: Result<Option<Deleted>, Error>, out: &mut dyn Write| match result {
        Ok(Some(deleted)) => {
            super::emit(out, &format!("{}\n", deleted.line));
            pending.extend(deleted.pending);
        }
        Ok(None) => {}
        Err(err) => {
            eprintln!("{err}");
            failed = true;
        }
    };
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
                list_names(session, resource, &namespace, selector).await?
            } else {
                target.names.clone()
            };
            found += names.len();
            for name in &names {
                let object = Object {
                    resource,
                    namespace: &namespace,
                    name,
                };
                one(
                    delete_one(session, &object, options, args.ignore_not_found).await,
                    out,
                );
            }
        }
        if by_selector && found == 0 {
            // kubectl says so on standard output, and succeeds.
            super::emit(out, "No resources found\n");
        }
    } else {
        for document in manifest::read_all(&args.files) {
            let deleted = match apply::target(session, &document, args.namespace.as_deref()) {
                Ok(t) => {
                    let object = Object {
                        resource: &t.resource,
                        namespace: &t.namespace,
                        name: &t.name,
                    };
                    delete_one(session, &object, options, args.ignore_not_found).await
                }
                Err(err) => Err(err),
            };
            one(deleted, out);
        }
    }
    if args.wait {
        wait::all_gone(session, pending, args.timeout).await?;
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
    session: &Session,
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
        .map(|item| skiff_api::printers::object::text(item, &["metadata", "name"]))
        .collect())
}

/// One object to delete.
struct Object<'a> {
    resource: &'a Served,
    namespace: &'a str,
    name: &'a str,
}

/// One object deleted: the line to print, and the object still to wait for
/// when the server kept it (finalizers, a grace period).
struct Deleted {
    line: String,
    pending: Option<Pending>,
}

/// Deletes one object; none for an ignored NotFound.
async fn delete_one(
    session: &Session,
    object: &Object<'_>,
    options: &options::Options,
    ignore_not_found: bool,
) -> Result<Option<Deleted>, Error> {
    let api: Api<DynamicObject> = session.api(object.resource, object.namespace);
    let line = deleted_line(object.resource, object.name, options.force_deleted());
    match api.delete(object.name, &options.params).await {
        Ok(Either::Left(kept)) => Ok(Some(Deleted {
            line,
            pending: Some(Pending {
                name: object.name.to_string(),
                uid: kept.uid().unwrap_or_default(),
                resource_version: kept.resource_version().unwrap_or_default(),
                resource: object.resource.clone(),
                api,
            }),
        })),
        Ok(Either::Right(_)) => Ok(Some(Deleted {
            line,
            pending: None,
        })),
        Err(err) if ignore_not_found && err.is_not_found() => Ok(None),
        Err(err) => Err(session.error(err)),
    }
}

/// `pod "web" deleted`, `deployment.apps "web" deleted`; `force deleted`
/// with no grace period.
pub(crate) fn deleted_line(resource: &Served, name: &str, force: bool) -> String {
    let done = if force { "force deleted" } else { "deleted" };
    format!("{} \"{name}\" {done}", resolve::kind_prefix(resource))
}

#[cfg(test)]
mod tests;
