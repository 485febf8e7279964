//! `skiff rollout status`: the Deployment's progress, printed at every change
//! until the rollout completes, as kubectl's `DeploymentStatusViewer`.
//!
//! The line itself comes from the Deployment's status alone
//! ([`skiff_controllers::deployment::rollout_status`], shared with the
//! benchmarks): the spec not yet observed; updated, old and available
//! replicas short of the spec; or done. A `Progressing` condition with reason
//! `ProgressDeadlineExceeded` fails the command.

use std::io::Write;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use skiff_client::ResourceExt;
use skiff_controllers::deployment::revision;

use super::Named;
use crate::cli::RolloutStatusArgs;
use crate::kubectl::follow::{Follower, Seen};
use crate::kubectl::{emit, Error, Session};

/// What kubectl prints for `deployment` now, and whether the rollout is
/// done; an error when it failed. With `revision` above 0 the rollout must be
/// of that revision (`running` is the Deployment's).
pub(crate) fn progress(
    deployment: &Deployment,
    revision: i64,
    running: i64,
) -> Result<(String, bool), String> {
    if revision > 0 && revision != running {
        return Err(format!(
            "desired revision ({revision}) is different from the running revision ({running})"
        ));
    }
    let (line, done) = skiff_controllers::deployment::rollout_status(deployment)?;
    Ok((format!("{line}\n"), done))
}

/// The revision `deployment` runs: its own revision annotation, else that
/// of the newest ReplicaSet running its template; 0 when there is none.
pub(crate) fn running_revision(deployment: &Deployment, owned: &[ReplicaSet]) -> i64 {
    let annotated = deployment
        .annotations()
        .get(revision::REVISION)
        .and_then(|r| r.parse().ok());
    annotated.unwrap_or_else(|| {
        owned
            .iter()
            .filter(|rs| revision::is_new(deployment, rs))
            .map(revision::revision)
            .max()
            .unwrap_or(0)
    })
}

/// Prints the progress of `named` at once and after every change until the
/// rollout is done (or once, without `--watch`); gives up after `--timeout`
/// when it is not zero.
pub(crate) async fn watch(
    session: &Session,
    named: &Named,
    args: &RolloutStatusArgs,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let follow = follow(session, named, args, out);
    if args.timeout.is_zero() {
        return follow.await;
    }
    match tokio::time::timeout(args.timeout, follow).await {
        Ok(result) => result,
        Err(_) => Err(Error::Usage("timed out waiting for the condition".into())),
    }
}

async fn follow(
    session: &Session,
    named: &Named,
    args: &RolloutStatusArgs,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut deployment = named.get(session).await?;
    let resource_version = deployment.resource_version().unwrap_or_default();
    let mut follower = Follower::after(
        named.api.clone(),
        &named.name,
        resource_version,
        &session.server,
    );
    loop {
        let running = if args.revision > 0 {
            running_revision(&deployment, &named.owned_sets(session, &deployment).await?)
        } else {
            0
        };
        let (line, done) = progress(&deployment, args.revision, running).map_err(Error::Usage)?;
        emit(out, &line);
        if done || !args.watch {
            return Ok(());
        }
        deployment = match follower.next().await? {
            Seen::Now(deployment) => deployment,
            // Recreated under the same name, it would be another rollout.
            Seen::Gone => return Err(Error::Usage("object has been deleted".into())),
        };
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    /// A Deployment "web" of `replicas` at `generation`, with this status.
    fn web(replicas: i32, generation: i64, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    /// Status counts: observed generation, replicas, updated, available.
    fn counts(observed: i64, replicas: i32, updated: i32, available: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            ..Default::default()
        }
    }

    #[test]
    fn each_stage_of_a_rollout_reads_as_kubectl_prints_it() {
        let waiting = "Waiting for deployment \"web\" rollout to finish: ";
        for (status, generation, line, done) in [
            (
                counts(1, 3, 3, 3),
                2,
                "Waiting for deployment spec update to be observed...\n".to_string(),
                false,
            ),
            (
                counts(2, 4, 1, 3),
                2,
                format!("{waiting}1 out of 3 new replicas have been updated...\n"),
                false,
            ),
            (
                counts(2, 4, 3, 3),
                2,
                format!("{waiting}1 old replicas are pending termination...\n"),
                false,
            ),
            (
                counts(2, 3, 3, 2),
                2,
                format!("{waiting}2 of 3 updated replicas are available...\n"),
                false,
            ),
            (
                counts(2, 3, 3, 3),
                2,
                "deployment \"web\" successfully rolled out\n".to_string(),
                true,
            ),
        ] {
            let deployment = web(3, generation, status.clone());
            assert_eq!(progress(&deployment, 0, 0), Ok((line, done)), "{status:?}");
        }
    }

    #[test]
    fn a_missed_progress_deadline_fails_the_rollout() {
        let mut status = counts(2, 3, 1, 2);
        status.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            ..Default::default()
        }]);
        assert_eq!(
            progress(&web(3, 2, status), 0, 0),
            Err("deployment \"web\" exceeded its progress deadline".into())
        );
    }

    #[test]
    fn a_revision_asked_for_must_be_the_running_one() {
        let deployment = web(3, 1, counts(1, 3, 3, 3));
        assert_eq!(
            progress(&deployment, 2, 3),
            Err("desired revision (2) is different from the running revision (3)".into())
        );
        assert!(progress(&deployment, 3, 3).unwrap().1);
    }

    #[test]
    fn the_running_revision_is_the_annotations_else_the_new_replica_sets() {
        use k8s_openapi::api::apps::v1::ReplicaSetSpec;
        let mut deployment = web(1, 1, counts(1, 1, 1, 1));
        let set = |revision: &str, image: &str| {
            let template = crate::kubectl::fixtures::template("web", image);
            ReplicaSet {
                metadata: ObjectMeta {
                    annotations: Some([(revision::REVISION.into(), revision.into())].into()),
                    ..Default::default()
                },
                spec: Some(ReplicaSetSpec {
                    template: Some(template),
                    ..Default::default()
                }),
                status: None,
            }
        };
        let (old, new) = (set("1", "nginx:1.24"), set("2", "nginx:1.25"));
        let spec = deployment.spec.as_mut().unwrap();
        spec.template = new.spec.as_ref().unwrap().template.clone().unwrap();
        assert_eq!(running_revision(&deployment, &[old.clone(), new]), 2);
        assert_eq!(running_revision(&deployment, &[old]), 0);
        deployment.metadata.annotations = Some([(revision::REVISION.into(), "7".into())].into());
        assert_eq!(running_revision(&deployment, &[]), 7);
    }
}
