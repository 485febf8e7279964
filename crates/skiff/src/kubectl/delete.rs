//! `skiff delete`: delete objects named on the command line or in manifests,
//! printing `pod "web" deleted` for each as kubectl does.
//!
//! # Caveats
//! The command returns once the server accepted the deletion; it does not
//! wait for finalizers or graceful pod termination (kubectl's `--wait`). No
//! `--all`, `-l`, `--cascade` or `--grace-period`.

use skiff_proto::api::{ApiResource, DeleteRequest};

use super::{apply, manifest, print, reference, resolve, targets, Error, Session};
use crate::cli::DeleteArgs;

/// Runs `skiff delete`.
pub(crate) async fn run(args: DeleteArgs) -> Result<(), Error> {
    let named = match &args.kind {
        Some(kind) => Some(targets(kind, &args.names)?),
        None => None,
    };
    match (&named, args.files.is_empty()) {
        (Some(_), false) => {
            return Err(Error::Usage(
                "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form or with -f".into(),
            ))
        }
        (None, true) => {
            return Err(Error::Usage(
                "you must provide one or more resources by argument or filename".into(),
            ))
        }
        (Some(targets), true) if targets.iter().any(|t| t.names.is_empty()) => {
            return Err(Error::Usage(
                "resource(s) were provided, but no name was specified".into(),
            ))
        }
        _ => {}
    }
    let mut session = Session::connect(args.server.server.as_deref()).await?;
    let mut failed = false;
    if let Some(targets) = named {
        let namespace = super::namespace_or_default(&args.namespace);
        let mut resources = Vec::new();
        for target in &targets {
            resources.push(session.resource(&target.typed)?);
        }
        for (target, resource) in targets.iter().zip(&resources) {
            for name in &target.names {
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
    resource: &ApiResource,
    namespace: &str,
    name: &str,
    ignore_not_found: bool,
) -> Result<Option<String>, Error> {
    let deleted = session
        .client
        .delete(DeleteRequest {
            r#ref: Some(reference(resource, namespace, name)),
            ..Default::default()
        })
        .await;
    match deleted {
        Ok(_) => Ok(Some(deleted_line(resource, name))),
        Err(status) if ignore_not_found && status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(session.rpc_error(status)),
    }
}

/// `pod "web" deleted`, `deployment.apps "web" deleted`.
pub(crate) fn deleted_line(resource: &ApiResource, name: &str) -> String {
    format!("{} \"{name}\" deleted", resolve::kind_prefix(resource))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubectl::resolve::tests::served;

    #[test]
    fn deleted_lines_name_the_kind_as_kubectl_does() {
        let served = served();
        let pods = resolve::by_name(&served, "po").unwrap();
        assert_eq!(deleted_line(pods, "web"), "pod \"web\" deleted");
        let deploy = resolve::by_name(&served, "deploy").unwrap();
        assert_eq!(
            deleted_line(deploy, "web"),
            "deployment.apps \"web\" deleted"
        );
    }
}
