//! `skiff rollout pause`, `resume` and `restart`: one merge patch each to the
//! Deployment's spec, as kubectl's `ObjectPauser`, `ObjectResumer` and
//! `ObjectRestarter`.
//!
//! - pause sets `spec.paused`: the controller keeps the ReplicaSets as they
//!   are, so template changes pile up without a rollout;
//! - resume clears it: the next reconcile rolls out whatever changed;
//! - restart stamps `spec.template.metadata.annotations` with
//!   `kubectl.kubernetes.io/restartedAt`: a new template, hence a new
//!   ReplicaSet whose pods replace every old one.

use std::io::Write;
use std::time::SystemTime;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};
use skiff_client::{Patch, PatchParams};

use super::Named;
use crate::kubectl::{emit, Error, Session};

/// The template annotation `restart` sets.
pub(crate) const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// A change to a Deployment's spec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Change {
    /// Set `spec.paused`.
    Pause,
    /// Clear `spec.paused`.
    Resume,
    /// Restart every pod, stamped with this time.
    Restart(SystemTime),
}

impl Change {
    /// The word kubectl prints after the object: `deployment.apps/web paused`.
    pub fn done(&self) -> &'static str {
        match self {
            Change::Pause => "paused",
            Change::Resume => "resumed",
            Change::Restart(_) => "restarted",
        }
    }
}

/// The merge patch `change` makes to `deployment`, or kubectl's reason why
/// it makes none.
pub(crate) fn patch_for(change: Change, deployment: &Deployment) -> Result<Value, String> {
    let paused = deployment.spec.as_ref().and_then(|s| s.paused) == Some(true);
    match change {
        Change::Pause if paused => Err("is already paused".into()),
        Change::Pause => Ok(json!({"spec": {"paused": true}})),
        Change::Resume if !paused => Err("is not paused".into()),
        // kubectl leaves `paused: false` rather than removing the field.
        Change::Resume => Ok(json!({"spec": {"paused": false}})),
        Change::Restart(_) if paused => {
            Err("can't restart paused deployment (run rollout resume first)".into())
        }
        Change::Restart(at) => {
            let at = rfc3339(at);
            Ok(json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}))
        }
    }
}

/// `time` as Go's `time.RFC3339` prints a UTC time: whole seconds, `Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    match Timestamp::try_from(time) {
        Ok(at) => at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "1970-01-01T00:00:00Z".into(),
    }
}

/// Applies `change` to each Deployment, printing a line for each done and
/// kubectl's error for each refused.
pub(crate) async fn run(
    session: &Session,
    named: &[Named],
    change: Change,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut refused = Vec::new();
    for one in named {
        let deployment = one.get(session).await?;
        match patch_for(change, &deployment) {
            Err(why) => refused.push(Error::Usage(format!(
                "deployments.apps {:?} {why}",
                one.name
            ))),
            Ok(patch) => {
                one.api
                    .patch(&one.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| session.error(e))?;
                emit(out, &format!("{} {}\n", one.object_name(), change.done()));
            }
        }
    }
    match refused.len() {
        0 => Ok(()),
        1 => Err(refused.remove(0)),
        _ => {
            for err in refused {
                eprintln!("{err}");
            }
            Err(Error::Reported)
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DeploymentSpec;

    use super::*;

    fn deployment(paused: Option<bool>) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                paused,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pause_and_resume_flip_spec_paused_or_refuse_as_kubectl() {
        let at = SystemTime::UNIX_EPOCH;
        for (change, paused, expected) in [
            (Change::Pause, None, Ok(json!({"spec": {"paused": true}}))),
            (
                Change::Pause,
                Some(false),
                Ok(json!({"spec": {"paused": true}})),
            ),
            (Change::Pause, Some(true), Err("is already paused")),
            (
                Change::Resume,
                Some(true),
                Ok(json!({"spec": {"paused": false}})),
            ),
            (Change::Resume, None, Err("is not paused")),
            (
                Change::Restart(at),
                Some(true),
                Err("can't restart paused deployment (run rollout resume first)"),
            ),
        ] {
            let got = patch_for(change, &deployment(paused));
            assert_eq!(got, expected.map_err(String::from), "{change:?} {paused:?}");
        }
    }

    #[test]
    fn restart_stamps_the_template_with_the_time_in_rfc3339() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_733_616_000_500);
        assert_eq!(
            patch_for(Change::Restart(at), &deployment(None)),
            Ok(json!({"spec": {"template": {"metadata": {"annotations":
                {"kubectl.kubernetes.io/restartedAt": "2024-12-08T00:00:00Z"}}}}}))
        );
        assert_eq!(Change::Restart(at).done(), "restarted");
    }
}
