//! Every failure is a Kubernetes Status with its HTTP code and message.

use serde_json::json;

use super::{config_map, Server, CONFIGMAPS};
use crate::rest::MAX_REQUEST_BYTES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_and_paths_are_404_as_kube_apiserver_words_it() {
    let s = Server::new().await;
    for path in [
        "/api/v1/namespaces/default/widgets",
        "/apis/example.com/v1/widgets",
        "/apis/example.com/v1",
        "/nothing/here",
        "/api/v1/namespaces/default/nodes/n1",
        "/api/v1/namespaces/default/configmaps/a/status",
    ] {
        let answer = s.get(path).await;
        assert_eq!(answer.status, 404, "{path}");
        let status = answer.json();
        assert_eq!(status["kind"], "Status", "{path}");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(
            status["message"],
            "the server could not find the requested resource"
        );
    }
    let missing = s.get(&format!("{CONFIGMAPS}/nope")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "configmaps \"nope\" not found");
    assert_eq!(
        missing.json()["details"],
        json!({"name": "nope", "kind": "configmaps"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verb_the_resource_does_not_serve_is_405() {
    let s = Server::new().await;
    for (method, path) in [
        ("POST", format!("{CONFIGMAPS}/a")),
        ("PUT", CONFIGMAPS.to_string()),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods/p/binding".to_string(),
        ),
        ("OPTIONS", CONFIGMAPS.to_string()),
    ] {
        let answer = s.call(method, &path, &[], "").await;
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.json()["reason"], "MethodNotAllowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_3_mib_is_413_and_stores_nothing() {
    let s = Server::new().await;
    let mut cm = config_map("big", json!({}));
    cm["data"]["k"] = json!("x".repeat(MAX_REQUEST_BYTES));
    let answer = s.write("POST", CONFIGMAPS, &cm).await;
    assert_eq!(answer.status, 413);
    let status = answer.json();
    assert_eq!(status["reason"], "RequestEntityTooLarge");
    assert_eq!(
        status["message"],
        "Request entity too large: limit is 3145728"
    );
    assert_eq!(s.get(&format!("{CONFIGMAPS}/big")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415_and_an_unservable_accept_406() {
    let s = Server::new().await;
    let body = serde_json::to_vec(&config_map("a", json!({}))).unwrap();
    let answer = s
        .call(
            "POST",
            CONFIGMAPS,
            &[("content-type", "application/vnd.kubernetes.protobuf")],
            body,
        )
        .await;
    assert_eq!(answer.status, 415);
    assert_eq!(answer.json()["reason"], "UnsupportedMediaType");
    assert_eq!(s.get(&format!("{CONFIGMAPS}/a")).await.status, 404);
    let patch = s
        .patch(&format!("{CONFIGMAPS}/a"), "text/plain", "{}")
        .await;
    assert_eq!(patch.status, 415);
    let answer = s
        .call(
            "GET",
            CONFIGMAPS,
            &[("accept", "application/vnd.kubernetes.protobuf")],
            "",
        )
        .await;
    assert_eq!(answer.status, 406);
    assert_eq!(answer.json()["reason"], "NotAcceptable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_and_patches_are_400_or_422_and_store_nothing() {
    let s = Server::new().await;
    let answer = s
        .call(
            "POST",
            CONFIGMAPS,
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(answer.status, 400);
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    let uri = format!("{CONFIGMAPS}/a");
    let bad = s.patch(&uri, "application/merge-patch+json", "{oops").await;
    assert_eq!(bad.status, 400);
    let bad = s
        .patch(
            &uri,
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/data/missing"}]"#,
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(s.get(&uri).await.json()["data"]["k"], "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_422_with_kubernetes_messages() {
    let s = Server::new().await;
    let answer = s
        .get(&format!("{CONFIGMAPS}?resourceVersionMatch=Exact"))
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(
        answer.json()["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
    );
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    let apply = s
        .patch(
            &format!("{CONFIGMAPS}/a"),
            "application/apply-patch+yaml",
            "kind: ConfigMap\n",
        )
        .await;
    assert_eq!(apply.status, 422);
    assert_eq!(
        apply.json()["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let bad_selector = s.get(&format!("{CONFIGMAPS}?labelSelector=a%20in")).await;
    assert_eq!(bad_selector.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_create_is_409_already_exists() {
    let s = Server::new().await;
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    let again = s
        .write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["reason"], "AlreadyExists");
    assert_eq!(again.json()["message"], "configmaps \"a\" already exists");
    let invalid = s
        .write(
            "POST",
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}),
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid.json()["details"]["causes"].is_array());
}
