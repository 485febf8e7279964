//! `skiff delete`'s argument rules, and `--cascade`/`--wait` against a whole
//! in-process cluster whose garbage collector acts on the propagation
//! policy and whose hollow kubelets stop the pods.

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
    assert_eq!(deleted_line(pods, "web", false), "pod \"web\" deleted");
    assert_eq!(deleted_line(pods, "web", true), "pod \"web\" force deleted");
    let deploy = &served("deploy");
    assert_eq!(
        deleted_line(deploy, "web", false),
        "deployment.apps \"web\" deleted"
    );
}

#[test]
fn flags_default_as_kubectls() {
    let plain = args(&["po", "web"]);
    assert_eq!(plain.cascade, "background");
    assert_eq!(plain.grace_period, -1);
    assert!(plain.wait && !plain.now && !plain.force);
    assert!(plain.timeout.is_zero());
    let bare = args(&[
        "po",
        "web",
        "--cascade",
        "--wait=false",
        "--grace-period",
        "5",
    ]);
    assert_eq!(bare.cascade, "background");
    assert!(!bare.wait);
    assert_eq!(bare.grace_period, 5);
    assert_eq!(args(&["po", "web", "--cascade=orphan"]).cascade, "orphan");
    let options =
        options::Options::from_args(&args(&["po", "web", "--cascade=false", "--force"])).unwrap();
    assert_eq!(
        format!("{:?}", options.params.propagation_policy),
        "Some(Orphan)"
    );
    assert!(options.force_deleted());
    assert_eq!(options.warnings.len(), 2, "{:?}", options.warnings);
}

mod cluster {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use skiff_client::{Api, PostParams};
    use skiff_testing::eventually;

    use crate::kubectl::fixtures::{cluster, ok, pods, replica_set};
    use crate::kubectl::Session;

    fn sets(session: &Session) -> Api<ReplicaSet> {
        Api::namespaced(session.client.clone(), "default")
    }

    /// A ReplicaSet `web` of two pods, once both exist.
    async fn web_with_two_pods(session: &Session) {
        sets(session)
            .create(&PostParams::default(), &replica_set("web", 2, "nginx:1.24"))
            .await
            .expect("the ReplicaSet is created");
        eventually("two pods of web", || async {
            let count = pods(session, "web").await.len();
            (count == 2).then_some(()).ok_or(format!("{count} pods"))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn orphan_leaves_the_pods_without_their_owner_reference() {
        let (_cluster, session) = cluster(1).await;
        web_with_two_pods(&session).await;
        assert_eq!(
            ok(&session, &["delete", "rs/web", "--cascade=orphan"]).await,
            "replicaset.apps \"web\" deleted\n"
        );
        // --wait: the ReplicaSet is gone once the command returns.
        assert!(sets(&session).get_opt("web").await.unwrap().is_none());
        let left = pods(&session, "web").await;
        assert_eq!(left.len(), 2);
        for pod in &left {
            assert!(pod.metadata.deletion_timestamp.is_none(), "{pod:?}");
            assert_eq!(
                pod.metadata.owner_references.as_deref().unwrap_or_default(),
                []
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foreground_deletes_the_pods_before_their_owner() {
        let (_cluster, session) = cluster(1).await;
        web_with_two_pods(&session).await;
        assert_eq!(
            ok(
                &session,
                &[
                    "delete",
                    "replicaset",
                    "web",
                    "--cascade=foreground",
                    "--wait=false"
                ]
            )
            .await,
            "replicaset.apps \"web\" deleted\n"
        );
        // The owner waits for its dependents, marked (unless the collector
        // was already done).
        if let Some(marked) = sets(&session).get_opt("web").await.unwrap() {
            assert!(marked.metadata.deletion_timestamp.is_some());
            let finalizers = marked.metadata.finalizers.unwrap_or_default();
            assert!(
                finalizers.contains(&"foregroundDeletion".to_string())
                    || pods(&session, "web").await.is_empty(),
                "{finalizers:?}"
            );
        }
        eventually("the owner gone, and its pods before it", || async {
            let owner = sets(&session)
                .get_opt("web")
                .await
                .map_err(|e| e.to_string())?;
            let left = pods(&session, "web").await.len();
            assert!(
                owner.is_some() || left == 0,
                "the owner went first: {left} pods left"
            );
            owner
                .is_none()
                .then_some(())
                .ok_or(format!("{left} pods left"))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_removes_the_owner_at_once_and_the_pods_after() {
        let (_cluster, session) = cluster(1).await;
        web_with_two_pods(&session).await;
        assert_eq!(
            ok(&session, &["delete", "rs/web", "--wait=false"]).await,
            "replicaset.apps \"web\" deleted\n"
        );
        assert!(sets(&session).get_opt("web").await.unwrap().is_none());
        eventually("the pods collected", || async {
            let left = pods(&session, "web").await.len();
            (left == 0).then_some(()).ok_or(format!("{left} pods left"))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_gives_up_after_the_timeout_on_an_object_kept_by_a_finalizer() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (_cluster, session) = cluster(0).await;
        let maps: Api<ConfigMap> = Api::namespaced(session.client.clone(), "default");
        let mut kept = ConfigMap::default();
        kept.metadata.name = Some("kept".into());
        kept.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        maps.create(&PostParams::default(), &kept).await.unwrap();
        let (result, out) = crate::kubectl::fixtures::skiff(
            &session,
            &["delete", "configmap", "kept", "--timeout=100ms"],
        )
        .await;
        assert_eq!(out, "configmap \"kept\" deleted\n");
        assert_eq!(
            result.unwrap_err().to_string(),
            "error: timed out waiting for the condition on configmaps/kept"
        );
        let held = maps.get("kept").await.unwrap();
        assert!(held.metadata.deletion_timestamp.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_returns_once_a_terminating_pod_is_gone() {
        let (_cluster, session) = cluster(1).await;
        web_with_two_pods(&session).await;
        ok(&session, &["delete", "rs/web", "--cascade=orphan"]).await;
        let names: Vec<String> = pods(&session, "web")
            .await
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        let mut line = vec!["delete", "pods", "--grace-period", "30"];
        line.extend(names.iter().map(String::as_str));
        assert_eq!(
            ok(&session, &line).await,
            names
                .iter()
                .map(|n| format!("pod \"{n}\" deleted\n"))
                .collect::<String>()
        );
        assert_eq!(
            pods(&session, "web").await.len(),
            0,
            "gone when delete returned"
        );
    }
}
