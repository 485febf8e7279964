//! The rollout commands against a whole in-process cluster: the Deployment
//! and ReplicaSet controllers act on what the commands write, hollow
//! kubelets run the pods.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::json;
use skiff_client::{Api, ListParams, Patch, PatchParams, PostParams};
use skiff_controllers::deployment::revision;
use skiff_testing::eventually;

use super::patch::RESTARTED_AT;
use crate::kubectl::fixtures::{cluster, deployment, fails, ok, pods};
use crate::kubectl::Session;

fn deployments(session: &Session) -> Api<Deployment> {
    Api::namespaced(session.client.clone(), "default")
}

async fn create(session: &Session, object: Deployment) {
    deployments(session)
        .create(&PostParams::default(), &object)
        .await
        .expect("the Deployment is created");
}

/// Changes the image of `name`'s one container, as `kubectl set image`.
async fn set_image(session: &Session, name: &str, image: &str) {
    let patch = json!({"spec": {"template": {"spec":
        {"containers": [{"name": "main", "image": image}]}}}});
    deployments(session)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the image is set");
}

fn image_of(template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>) -> String {
    template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// `name`'s ReplicaSets as (revision, image), oldest revision first.
async fn revisions(session: &Session, name: &str) -> Vec<(i64, String)> {
    let sets: Api<ReplicaSet> = Api::namespaced(session.client.clone(), "default");
    let mut found: Vec<(i64, String)> = sets
        .list(&ListParams::default().labels(&format!("app={name}")))
        .await
        .expect("ReplicaSets list")
        .items
        .iter()
        .map(|rs| {
            let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
            (revision::revision(rs), image_of(template))
        })
        .collect();
    found.sort();
    found
}

/// Waits until the Deployment controller has seen `name`'s latest spec.
async fn observed(session: &Session, name: &str) {
    eventually("the controller observing the spec", || async {
        let d = deployments(session)
            .get(name)
            .await
            .map_err(|e| e.to_string())?;
        let seen = d.status.and_then(|s| s.observed_generation);
        (seen == d.metadata.generation)
            .then_some(())
            .ok_or(format!("observed {seen:?} of {:?}", d.metadata.generation))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_a_rollout_until_it_completes() {
    let (_cluster, session) = cluster(2).await;
    create(&session, deployment("web", 3, "nginx:1.24")).await;
    let out = ok(&session, &["rollout", "status", "deployment/web"]).await;
    let lines: Vec<&str> = out.lines().collect();
    let (last, waiting) = lines.split_last().expect("status printed");
    assert_eq!(*last, "deployment \"web\" successfully rolled out", "{out}");
    for line in waiting {
        assert!(
            line.starts_with("Waiting for deployment \"web\" rollout to finish: ")
                || *line == "Waiting for deployment spec update to be observed...",
            "{out}"
        );
    }
    // Once complete, every spelling of the Deployment says so at once.
    for line in [
        &["rollout", "status", "deployment", "web"][..],
        &["rollout", "status", "deploy/web", "-n", "default"],
        &["rollout", "status", "deployments.apps/web", "--watch=false"],
        &["rollout", "status", "deploy/web", "--revision", "1"],
    ] {
        assert_eq!(
            ok(&session, line).await,
            "deployment \"web\" successfully rolled out\n",
            "{line:?}"
        );
    }
    assert_eq!(
        fails(
            &session,
            &["rollout", "status", "deploy/web", "--revision=2"]
        )
        .await,
        "error: desired revision (2) is different from the running revision (1)"
    );
    assert_eq!(
        fails(&session, &["rollout", "status", "deploy/nothing"]).await,
        "Error from server (NotFound): deployments.apps \"nothing\" not found"
    );
    assert_eq!(
        fails(&session, &["rollout", "status", "pods/web"]).await,
        "error: no rollout support has been implemented for Pod"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_fails_once_the_progress_deadline_passes() {
    // No nodes: the pods never run, so the rollout makes no progress.
    let (_cluster, session) = cluster(0).await;
    let mut web = deployment("web", 2, "nginx:1.24");
    web.spec.as_mut().unwrap().progress_deadline_seconds = Some(1);
    create(&session, web).await;
    observed(&session, "web").await;
    let once = ok(
        &session,
        &["rollout", "status", "deploy/web", "--watch=false"],
    )
    .await;
    assert!(
        once.starts_with("Waiting for deployment \"web\" rollout to finish: ")
            && once.lines().count() == 1,
        "{once}"
    );
    assert_eq!(
        fails(&session, &["rollout", "status", "deploy/web"]).await,
        "error: deployment \"web\" exceeded its progress deadline"
    );
    // Within its deadline, a rollout that cannot finish outlasts --timeout.
    create(&session, deployment("slow", 1, "nginx:1.24")).await;
    assert_eq!(
        fails(
            &session,
            &["rollout", "status", "deploy/slow", "--timeout=100ms"]
        )
        .await,
        "error: timed out waiting for the condition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_brings_the_previous_revisions_image_back() {
    let (_cluster, session) = cluster(2).await;
    create(&session, deployment("web", 2, "nginx:1.24")).await;
    ok(&session, &["rollout", "status", "deploy/web"]).await;
    set_image(&session, "web", "nginx:1.25").await;
    ok(&session, &["rollout", "status", "deploy/web"]).await;
    assert_eq!(
        ok(&session, &["rollout", "history", "deploy/web"]).await,
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n"
    );
    let one = ok(
        &session,
        &["rollout", "history", "deploy/web", "--revision=1"],
    )
    .await;
    assert!(
        one.starts_with("deployment.apps/web with revision #1\nPod Template:\n")
            && one.contains("    Image:\tnginx:1.24\n"),
        "{one}"
    );
    assert_eq!(
        fails(
            &session,
            &["rollout", "undo", "deploy/web", "--to-revision=9"]
        )
        .await,
        "error: unable to find specified revision 9 in history"
    );

    assert_eq!(
        ok(&session, &["rollout", "undo", "deployment/web"]).await,
        "deployment.apps/web rolled back\n"
    );
    ok(&session, &["rollout", "status", "deploy/web"]).await;
    let web = deployments(&session).get("web").await.unwrap();
    assert_eq!(
        image_of(web.spec.as_ref().map(|s| &s.template)),
        "nginx:1.24"
    );
    // The old ReplicaSet came back as the newest revision.
    assert_eq!(
        revisions(&session, "web").await,
        [(2, "nginx:1.25".to_string()), (3, "nginx:1.24".to_string())]
    );
    eventually("every pod running nginx:1.24 again", || async {
        let images: Vec<String> = pods(&session, "web")
            .await
            .iter()
            .map(|p| {
                image_of(Some(&k8s_openapi::api::core::v1::PodTemplateSpec {
                    metadata: None,
                    spec: p.spec.clone(),
                }))
            })
            .collect();
        (images == ["nginx:1.24", "nginx:1.24"])
            .then_some(())
            .ok_or(format!("{images:?}"))
    })
    .await;
    assert_eq!(
        ok(
            &session,
            &["rollout", "undo", "deploy/web", "--to-revision", "3"]
        )
        .await,
        "deployment.apps/web skipped rollback (current template already matches revision 3)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_template_changes_until_resume() {
    let (_cluster, session) = cluster(2).await;
    create(&session, deployment("web", 2, "nginx:1.24")).await;
    ok(&session, &["rollout", "status", "deploy/web"]).await;
    assert_eq!(
        ok(&session, &["rollout", "pause", "deployment", "web"]).await,
        "deployment.apps/web paused\n"
    );
    assert_eq!(
        fails(&session, &["rollout", "pause", "deploy/web"]).await,
        "error: deployments.apps \"web\" is already paused"
    );
    assert_eq!(
        fails(&session, &["rollout", "restart", "deploy/web"]).await,
        "error: deployments.apps \"web\" can't restart paused deployment (run rollout resume first)"
    );
    assert!(fails(&session, &["rollout", "undo", "deploy/web"])
        .await
        .starts_with("error: you cannot rollback a paused deployment"));

    set_image(&session, "web", "nginx:1.25").await;
    observed(&session, "web").await;
    assert_eq!(
        revisions(&session, "web").await,
        [(1, "nginx:1.24".to_string())],
        "no rollout while paused"
    );

    assert_eq!(
        ok(&session, &["rollout", "resume", "deploy/web"]).await,
        "deployment.apps/web resumed\n"
    );
    assert_eq!(
        fails(&session, &["rollout", "resume", "deploy/web"]).await,
        "error: deployments.apps \"web\" is not paused"
    );
    ok(&session, &["rollout", "status", "deploy/web"]).await;
    assert_eq!(
        revisions(&session, "web").await,
        [(1, "nginx:1.24".to_string()), (2, "nginx:1.25".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rolls_every_pod_out_through_a_new_replica_set() {
    let (_cluster, session) = cluster(2).await;
    create(&session, deployment("web", 2, "nginx:1.24")).await;
    ok(&session, &["rollout", "status", "deploy/web"]).await;
    let before: Vec<String> = pods(&session, "web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(
        ok(&session, &["rollout", "restart", "deploy/web"]).await,
        "deployment.apps/web restarted\n"
    );
    let web = deployments(&session).get("web").await.unwrap();
    let stamp = web
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(RESTARTED_AT).cloned())
        .expect("the template is stamped");
    assert!(stamp.len() == 20 && stamp.ends_with('Z'), "{stamp}");
    ok(&session, &["rollout", "status", "deploy/web"]).await;
    assert_eq!(
        revisions(&session, "web").await,
        [(1, "nginx:1.24".to_string()), (2, "nginx:1.24".to_string())]
    );
    eventually("every pod replaced", || async {
        let now: Vec<String> = pods(&session, "web")
            .await
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        (now.len() == 2 && now.iter().all(|p| !before.contains(p)))
            .then_some(())
            .ok_or(format!("{before:?} then {now:?}"))
    })
    .await;
}
