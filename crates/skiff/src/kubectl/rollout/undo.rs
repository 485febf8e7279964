//! `skiff rollout undo [--to-revision N]`: puts an old revision's pod
//! template back into the Deployment, as kubectl's `DeploymentRollbacker`.
//! The controller then finds that template's ReplicaSet, scales it up again
//! and gives it the newest revision number: a rollback is a rollout.
//!
//! Without `--to-revision` the target is the second-newest revision. The
//! template is the ReplicaSet's without its `pod-template-hash` label, and
//! the Deployment's annotations become the ReplicaSet's (a change-cause
//! comes back with its template), keeping only the Deployment's own
//! bookkeeping ones.

use std::collections::BTreeMap;
use std::io::Write;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use skiff_client::PostParams;
use skiff_controllers::deployment::revision;

use super::Named;
use crate::kubectl::{emit, Error, Session};

/// Annotations a rollback neither copies from the ReplicaSet nor drops from
/// the Deployment (kubectl's `annotationsToSkip`).
const KEPT_ANNOTATIONS: [&str; 6] = [
    crate::kubectl::apply::LAST_APPLIED,
    revision::REVISION,
    "deployment.kubernetes.io/revision-history",
    revision::DESIRED_REPLICAS,
    revision::MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// How often a rollback that lost a race with another writer is tried again.
const ATTEMPTS: usize = 5;

/// What rolling back does.
#[derive(Debug, PartialEq)]
pub(crate) enum Undo {
    /// Nothing: the Deployment already runs that template.
    Skipped,
    /// The Deployment's new template and annotations.
    Rollback {
        /// The old revision's template, without its pod-template-hash.
        template: Box<PodTemplateSpec>,
        /// The Deployment's annotations after the rollback.
        annotations: BTreeMap<String, String>,
    },
}

/// What rolling `deployment` back to `to_revision` (0: the previous one)
/// does, given the ReplicaSets it owns; kubectl's error when it cannot.
pub(crate) fn undo(
    deployment: &Deployment,
    owned: &[ReplicaSet],
    to_revision: i64,
) -> Result<Undo, String> {
    if to_revision < 0 {
        return Err(not_found(to_revision));
    }
    let spec = deployment
        .spec
        .as_ref()
        .ok_or("the Deployment has no spec")?;
    if spec.paused == Some(true) {
        return Err(
            "you cannot rollback a paused deployment; resume it first with 'skiff \
                    rollout resume' and try again"
                .into(),
        );
    }
    let target = revision_set(deployment, owned, to_revision)?;
    if revision::is_new(deployment, target) {
        return Ok(Undo::Skipped);
    }
    let template = target
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .map(revision::without_hash)
        .unwrap_or_default();
    let own = deployment.metadata.annotations.clone().unwrap_or_default();
    let copied = target.metadata.annotations.clone().unwrap_or_default();
    let kept = |key: &String| KEPT_ANNOTATIONS.contains(&key.as_str());
    let annotations = own
        .into_iter()
        .filter(|(k, _)| kept(k))
        .chain(copied.into_iter().filter(|(k, _)| !kept(k)))
        .collect();
    Ok(Undo::Rollback {
        template: Box::new(template),
        annotations,
    })
}

/// The ReplicaSet of `to_revision`, or with 0 that of the second-newest
/// revision (kubectl's `deploymentRevision`).
fn revision_set<'a>(
    deployment: &Deployment,
    owned: &'a [ReplicaSet],
    to_revision: i64,
) -> Result<&'a ReplicaSet, String> {
    if to_revision > 0 {
        return owned
            .iter()
            .find(|rs| revision::revision(rs) == to_revision)
            .ok_or_else(|| not_found(to_revision));
    }
    let mut numbered: Vec<&ReplicaSet> = owned
        .iter()
        .filter(|rs| revision::revision(rs) > 0)
        .collect();
    numbered.sort_by_key(|rs| std::cmp::Reverse(revision::revision(rs)));
    let name = deployment.metadata.name.as_deref().unwrap_or("");
    numbered
        .get(1)
        .copied()
        .ok_or_else(|| format!("no rollout history found for deployment {name:?}"))
}

fn not_found(revision: i64) -> String {
    format!("unable to find specified revision {revision} in history")
}

/// Rolls `named` back and prints kubectl's line for it.
pub(crate) async fn run(
    session: &Session,
    named: &Named,
    to_revision: i64,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut tries = 0;
    let rolled_back = loop {
        tries += 1;
        match attempt(session, named, to_revision).await {
            Err(Error::Server(status))
                if status.reason.as_str() == "Conflict" && tries < ATTEMPTS => {}
            result => break result?,
        }
    };
    let line = if rolled_back {
        "rolled back".to_string()
    } else {
        format!("skipped rollback (current template already matches revision {to_revision})")
    };
    emit(out, &format!("{} {line}\n", named.object_name()));
    Ok(())
}

/// One read, compute, replace round: whether it rolled back (not skipped).
async fn attempt(session: &Session, named: &Named, to_revision: i64) -> Result<bool, Error> {
    let mut deployment = named.get(session).await?;
    let owned = named.owned_sets(session, &deployment).await?;
    let Undo::Rollback {
        template,
        annotations,
    } = undo(&deployment, &owned, to_revision).map_err(Error::Usage)?
    else {
        return Ok(false);
    };
    if let Some(spec) = deployment.spec.as_mut() {
        spec.template = *template;
    }
    deployment.metadata.annotations = Some(annotations);
    named
        .api
        .replace(&named.name, &PostParams::default(), &deployment)
        .await
        .map_err(|e| session.error(e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;
    use crate::kubectl::fixtures;

    fn template(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let template = fixtures::template("web", image);
        match hash {
            Some(hash) => fixtures::with_hash(template, hash),
            None => template,
        }
    }

    /// A ReplicaSet of `revision` running `image`, with a change-cause.
    fn set(revision: i64, image: &str) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([
                    (revision::REVISION.to_string(), revision.to_string()),
                    (revision::DESIRED_REPLICAS.to_string(), "3".into()),
                    (
                        "kubernetes.io/change-cause".to_string(),
                        format!("image {image}"),
                    ),
                ])),
                owner_references: Some(vec![OwnerReference::default()]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                template: Some(template(image, Some(&format!("h{revision}")))),
                ..Default::default()
            }),
            status: None,
        }
    }

    /// Deployment "web" running `image`, with its own annotations.
    fn web(image: &str, paused: bool) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                annotations: Some(BTreeMap::from([
                    (revision::REVISION.to_string(), "3".into()),
                    ("team".to_string(), "payments".into()),
                ])),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                paused: Some(paused),
                template: template(image, None),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn rollback(image: &str, annotations: &[(&str, &str)]) -> Undo {
        Undo::Rollback {
            template: Box::new(template(image, None)),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn undo_goes_to_the_second_newest_revision_or_the_one_asked_for() {
        let owned = [
            set(1, "nginx:1.23"),
            set(3, "nginx:1.25"),
            set(2, "nginx:1.24"),
        ];
        let d = web("nginx:1.25", false);
        // The template comes back without its hash; the annotations are the
        // ReplicaSet's, but for the Deployment's own revision.
        assert_eq!(
            undo(&d, &owned, 0),
            Ok(rollback(
                "nginx:1.24",
                &[
                    (revision::REVISION, "3"),
                    ("kubernetes.io/change-cause", "image nginx:1.24"),
                ]
            ))
        );
        assert!(matches!(
            undo(&d, &owned, 1),
            Ok(Undo::Rollback { template: back, .. }) if *back == template("nginx:1.23", None)
        ));
        assert_eq!(undo(&d, &owned, 3), Ok(Undo::Skipped));
    }

    #[test]
    fn undo_refuses_as_kubectl_does() {
        let owned = [set(1, "nginx:1.23"), set(2, "nginx:1.24")];
        let d = web("nginx:1.24", false);
        for (d, owned, to, message) in [
            (
                &d,
                &owned[..],
                7,
                "unable to find specified revision 7 in history",
            ),
            (
                &d,
                &owned[..],
                -1,
                "unable to find specified revision -1 in history",
            ),
            (
                &d,
                &owned[1..],
                0,
                "no rollout history found for deployment \"web\"",
            ),
            (
                &web("nginx:1.24", true),
                &owned[..],
                1,
                "you cannot rollback a paused deployment; resume it first with 'skiff rollout \
                 resume' and try again",
            ),
        ] {
            assert_eq!(undo(d, owned, to), Err(message.to_string()), "{to}");
        }
    }
}
