//! What the commands' tests against a whole in-process cluster share: a
//! [`TestCluster`] with hollow kubelets, a session over it, a Deployment
//! and a ReplicaSet to act on, and a command line run as `skiff` would run
//! it, its standard output captured.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::{Api, ListParams};
use skiff_testing::workloads::selector;
use skiff_testing::{Runtime, TestCluster};

use super::{Error, Session};

/// A cluster with the scheduler, the controllers and `nodes` hollow
/// kubelets, and a session over it.
pub(crate) async fn cluster(nodes: usize) -> (TestCluster, Session) {
    let cluster = TestCluster::builder()
        .nodes(nodes)
        .runtime(Runtime::Hollow)
        .start()
        .await
        .expect("the test cluster starts");
    let session = Session::over(cluster.test_client().await, "in-process".into())
        .await
        .expect("discovery answers");
    (cluster, session)
}

/// The pod template of the tests: labelled `app: <app>`, one container
/// `main` running the image.
pub(crate) use skiff_testing::workloads::template;

/// `template` as a ReplicaSet's: with a pod-template-hash label.
pub(crate) fn with_hash(mut template: PodTemplateSpec, hash: &str) -> PodTemplateSpec {
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert("pod-template-hash".into(), hash.into());
    template
}

/// A Deployment `name` of `replicas` pods running `image`.
pub(crate) fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: selector(name),
            template: template(name, image),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A ReplicaSet `name` of `replicas` pods running `image`.
pub(crate) fn replica_set(name: &str, replicas: i32, image: &str) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: selector(name),
            template: Some(template(name, image)),
            ..Default::default()
        }),
        status: None,
    }
}

/// The pods labelled `app=<app>` in the default namespace.
pub(crate) async fn pods(session: &Session, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(session.client.clone(), "default");
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("pods list")
        .items
}

/// Parses `skiff LINE…` as the binary does.
pub(crate) fn parse(line: &[&str]) -> crate::cli::Command {
    use clap::Parser;
    crate::cli::Cli::try_parse_from([&["skiff"], line].concat())
        .unwrap_or_else(|e| panic!("skiff {line:?} parses: {e}"))
        .command
}

/// Runs `skiff LINE…` (a rollout, delete or trace command) over `session`: its
/// result and what it wrote to standard output.
pub(crate) async fn skiff(session: &Session, line: &[&str]) -> (Result<(), Error>, String) {
    use crate::cli::Command;
    let mut out = Vec::new();
    let result = match parse(line) {
        Command::Rollout(command) => super::rollout::execute(session, &command, &mut out).await,
        Command::Trace(command) => super::trace::execute(session, &command, &mut out).await,
        Command::Delete(args) => match super::delete::options::Options::from_args(&args) {
            Ok(options) => super::delete::execute(session, &args, &options, &mut out).await,
            Err(err) => Err(err),
        },
        other => panic!("not a command these tests run: {other:?}"),
    };
    (result, String::from_utf8_lossy(&out).into_owned())
}

/// [`skiff`] for a command that must succeed: its standard output.
pub(crate) async fn ok(session: &Session, line: &[&str]) -> String {
    let (result, out) = skiff(session, line).await;
    if let Err(err) = result {
        panic!("skiff {line:?} failed: {err}; printed {out:?}");
    }
    out
}

/// [`skiff`] for a command that must fail: its error as printed.
pub(crate) async fn fails(session: &Session, line: &[&str]) -> String {
    match skiff(session, line).await {
        (Err(err), _) => err.to_string(),
        (Ok(()), out) => panic!("skiff {line:?} succeeded, printing {out:?}"),
    }
}
