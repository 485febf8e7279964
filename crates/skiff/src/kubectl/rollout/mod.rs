//! `skiff rollout status|history|undo|pause|resume|restart`: kubectl's
//! commands for a Deployment's rollout.
//!
//! A Deployment rolls its pod template out through ReplicaSets, one per
//! template, each carrying the revision it was rolled out as in its
//! `deployment.kubernetes.io/revision` annotation (the Deployment controller,
//! `skiff_controllers::deployment`). These commands only read that state or
//! change the Deployment's spec; the controller does the rest:
//! - `status` watches the Deployment until its status says the rollout is
//!   complete, printing kubectl's progress lines;
//! - `history` lists the owned ReplicaSets' revisions;
//! - `undo` copies an old ReplicaSet's template back into the Deployment;
//! - `pause` and `resume` set `spec.paused`, which stops the controller
//!   from rolling out template changes;
//! - `restart` stamps the template with `kubectl.kubernetes.io/restartedAt`,
//!   a template change that the controller rolls out as any other.
//!
//! See <https://kubernetes.io/docs/concepts/workloads/controllers/deployment/>.
//!
//! # Layout
//! - this file: which Deployments the arguments name, their ReplicaSets,
//!   and the dispatch.
//! - [`status`]: the progress line of a Deployment's status, and the watch.
//! - [`history`]: the revision table and one revision's pod template.
//! - [`undo`]: what rolling back to a revision writes.
//! - [`patch`]: pause, resume and restart as merge patches.
//!
//! # Where to start
//! [`execute`]; each subcommand's pure function is table-tested beside it,
//! the commands end to end against an in-process cluster in `tests.rs`.
//!
//! # Caveats
//! Deployments only: kubectl's DaemonSet and StatefulSet viewers and
//! rollbackers are not here, nor `-l`, `-f` or `-o`. `status` reads the
//! running revision from the new ReplicaSet when the Deployment carries no
//! revision annotation. `undo` replaces the Deployment (with its
//! resourceVersion, retried on a conflict) where kubectl sends a JSON patch.

pub(crate) mod history;
pub(crate) mod patch;
pub(crate) mod status;
pub(crate) mod undo;

#[cfg(test)]
mod tests;

use std::io::Write;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use skiff_client::{Api, ListParams};

use super::{namespace_or_default, targets, Error, Session};
use crate::cli::{RolloutArgs, RolloutCommand};

/// Runs `skiff rollout …` against the server its flags name.
pub(crate) async fn run(command: RolloutCommand) -> Result<(), Error> {
    let server = target_args(&command).server.server.clone();
    let session = Session::connect(server.as_deref()).await?;
    execute(&session, &command, &mut std::io::stdout()).await
}

/// Runs one rollout command over `session`, writing what kubectl prints on
/// standard output to `out`.
pub(crate) async fn execute(
    session: &Session,
    command: &RolloutCommand,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let named = deployments(session, target_args(command))?;
    match command {
        RolloutCommand::Status(args) => {
            let [one] = &named[..] else {
                return Err(Error::Usage(format!(
                    "rollout status is only supported on individual resources and resource \
                     collections - {} resources were found",
                    named.len()
                )));
            };
            status::watch(session, one, args, out).await
        }
        RolloutCommand::History(args) => {
            for deployment in &named {
                history::run(session, deployment, args.revision, out).await?;
            }
            Ok(())
        }
        RolloutCommand::Undo(args) => {
            for deployment in &named {
                undo::run(session, deployment, args.to_revision, out).await?;
            }
            Ok(())
        }
        RolloutCommand::Pause(_) => patch::run(session, &named, patch::Change::Pause, out).await,
        RolloutCommand::Resume(_) => patch::run(session, &named, patch::Change::Resume, out).await,
        RolloutCommand::Restart(_) => {
            let change = patch::Change::Restart(std::time::SystemTime::now());
            patch::run(session, &named, change, out).await
        }
    }
}

/// The arguments naming the Deployments, common to every subcommand.
fn target_args(command: &RolloutCommand) -> &RolloutArgs {
    match command {
        RolloutCommand::Status(args) => &args.target,
        RolloutCommand::History(args) => &args.target,
        RolloutCommand::Undo(args) => &args.target,
        RolloutCommand::Pause(args)
        | RolloutCommand::Resume(args)
        | RolloutCommand::Restart(args) => args,
    }
}

/// One Deployment named on the command line.
pub(crate) struct Named {
    /// Its name.
    pub name: String,
    /// The Deployments of its namespace.
    pub api: Api<Deployment>,
    /// The ReplicaSets of its namespace.
    pub replica_sets: Api<ReplicaSet>,
}

impl Named {
    /// kubectl's name for it in messages: `deployment.apps/web`.
    pub fn object_name(&self) -> String {
        format!("deployment.apps/{}", self.name)
    }

    /// The Deployment as stored now.
    pub async fn get(&self, session: &Session) -> Result<Deployment, Error> {
        self.api.get(&self.name).await.map_err(|e| session.error(e))
    }

    /// The ReplicaSets `deployment` controls (by controller ownerReference).
    pub async fn owned_sets(
        &self,
        session: &Session,
        deployment: &Deployment,
    ) -> Result<Vec<ReplicaSet>, Error> {
        let list = self
            .replica_sets
            .list(&ListParams::default())
            .await
            .map_err(|e| session.error(e))?;
        Ok(list
            .items
            .into_iter()
            .filter(|rs| controlled_by(rs, deployment))
            .collect())
    }
}

/// Whether `deployment` is `rs`'s controller.
pub(crate) fn controlled_by(rs: &ReplicaSet, deployment: &Deployment) -> bool {
    let Some(uid) = deployment.metadata.uid.as_deref() else {
        return false;
    };
    rs.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.controller == Some(true) && owner.uid == uid)
}

/// The Deployments `TYPE NAME…` or `TYPE/NAME…` name; any other kind is
/// refused as kubectl refuses a kind it has no rollout support for.
fn deployments(session: &Session, args: &RolloutArgs) -> Result<Vec<Named>, Error> {
    let namespace = namespace_or_default(&args.namespace);
    let mut named = Vec::new();
    for target in targets(&args.kind, &args.names)? {
        let resource = session.resource(&target.typed)?;
        let served = &resource.resource;
        if served.group != "apps" || served.kind != "Deployment" {
            let group_kind = if served.group.is_empty() {
                served.kind.clone()
            } else {
                format!("{}.{}", served.kind, served.group)
            };
            return Err(Error::Usage(format!(
                "no rollout support has been implemented for {group_kind}"
            )));
        }
        if target.names.is_empty() {
            return Err(Error::Usage(
                "resource(s) were provided, but no name was specified".to_string(),
            ));
        }
        for name in target.names {
            named.push(Named {
                name,
                api: Api::namespaced(session.client.clone(), &namespace),
                replica_sets: Api::namespaced(session.client.clone(), &namespace),
            });
        }
    }
    Ok(named)
}
