//! Each verb and its query parameters, as a client sees them over REST.

use serde_json::{json, Value};

use super::{config_map, deployment, Server, CONFIGMAPS};

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_answers_201_and_get_reads_it_back_in_json_or_yaml() {
    let s = Server::new().await;
    let created = s
        .write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("content-type"), "application/json");
    assert_eq!(created.json()["metadata"]["namespace"], "default");
    let got = s.get(&format!("{CONFIGMAPS}/a")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["data"]["k"], "v");
    let yaml = s
        .call(
            "GET",
            &format!("{CONFIGMAPS}/a"),
            &[("accept", "application/yaml")],
            "",
        )
        .await;
    assert_eq!(yaml.header("content-type"), "application/yaml");
    let text = String::from_utf8(yaml.body.to_vec()).unwrap();
    assert!(text.contains("kind: ConfigMap"), "{text}");
    let pretty = s.get(&format!("{CONFIGMAPS}/a?pretty=true")).await;
    assert!(pretty.body.starts_with(b"{\n  "), "pretty JSON is indented");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_bodies_are_read_as_json() {
    let s = Server::new().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let created = s
        .call(
            "POST",
            CONFIGMAPS,
            &[("content-type", "application/yaml")],
            yaml,
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(created.json()["data"]["a"], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_selects_by_label_and_field_and_pages_with_continue() {
    let s = Server::new().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let created = s
            .write("POST", CONFIGMAPS, &config_map(name, json!({"tier": tier})))
            .await;
        assert_eq!(created.status, 201);
    }
    let web = s
        .get(&format!("{CONFIGMAPS}?labelSelector=tier%3Dweb"))
        .await
        .json();
    assert_eq!(web["kind"], "ConfigMapList");
    assert_eq!(names(&web), ["a", "b"]);
    let c = s
        .get(&format!("{CONFIGMAPS}?fieldSelector=metadata.name%3Dc"))
        .await
        .json();
    assert_eq!(names(&c), ["c"]);
    let page = s.get(&format!("{CONFIGMAPS}?limit=2")).await.json();
    assert_eq!(names(&page), ["a", "b"]);
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let rest = s
        .get(&format!("{CONFIGMAPS}?limit=2&continue={token}"))
        .await
        .json();
    assert_eq!(names(&rest), ["c"]);
    let everywhere = s.get("/api/v1/configmaps").await.json();
    assert_eq!(names(&everywhere), ["a", "b", "c"]);
    let rv = page["metadata"]["resourceVersion"].as_str().unwrap();
    let exact = s
        .get(&format!(
            "{CONFIGMAPS}?resourceVersion={rv}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(exact.status, 200);
    assert_eq!(names(&exact.json()), ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_gets_answer_tables_and_metadata_when_asked() {
    let s = Server::new().await;
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let table = s.call("GET", CONFIGMAPS, &[("accept", kubectl)], "").await;
    assert_eq!(table.status, 200);
    let table = table.json();
    assert_eq!(table["kind"], "Table");
    assert!(table["metadata"]["resourceVersion"].is_string());
    assert_eq!(table["rows"][0]["cells"][0], "a");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let whole = s
        .call(
            "GET",
            &format!("{CONFIGMAPS}/a?includeObject=Object"),
            &[("accept", kubectl)],
            "",
        )
        .await
        .json();
    assert_eq!(whole["rows"][0]["object"]["kind"], "ConfigMap");
    let meta = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";
    let list = s
        .call("GET", CONFIGMAPS, &[("accept", meta)], "")
        .await
        .json();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["metadata"]["name"], "a");
    assert!(list["items"][0].get("data").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_answers_but_stores_nothing() {
    let s = Server::new().await;
    let dry = s
        .write(
            "POST",
            &format!("{CONFIGMAPS}?dryRun=All"),
            &config_map("a", json!({})),
        )
        .await;
    assert_eq!(dry.status, 201);
    assert_eq!(s.get(&format!("{CONFIGMAPS}/a")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_warn_by_default_fail_under_strict_and_pass_under_ignore() {
    let s = Server::new().await;
    let mut cm = config_map("a", json!({}));
    cm["spec"] = json!({"x": 1});
    let warned = s.write("POST", CONFIGMAPS, &cm).await;
    assert_eq!(warned.status, 201);
    assert_eq!(warned.warnings(), ["299 - \"unknown field \\\"spec\\\"\""]);
    cm["metadata"]["name"] = json!("b");
    let strict = s
        .write("POST", &format!("{CONFIGMAPS}?fieldValidation=Strict"), &cm)
        .await;
    assert_eq!(strict.status, 400);
    assert_eq!(
        strict.json()["message"],
        "strict decoding error: unknown field \"spec\""
    );
    assert_eq!(
        s.get(&format!("{CONFIGMAPS}/b")).await.status,
        404,
        "nothing stored"
    );
    let ignored = s
        .write("POST", &format!("{CONFIGMAPS}?fieldValidation=Ignore"), &cm)
        .await;
    assert_eq!(ignored.status, 201);
    assert!(ignored.warnings().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_replaces_and_a_stale_resource_version_is_409() {
    let s = Server::new().await;
    let created = s
        .write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await
        .json();
    let mut next = created.clone();
    next["data"]["k"] = json!("w");
    let updated = s.write("PUT", &format!("{CONFIGMAPS}/a"), &next).await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json()["data"]["k"], "w");
    let stale = s.write("PUT", &format!("{CONFIGMAPS}/a"), &next).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.json()["reason"], "Conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_and_json_patches_by_content_type() {
    let s = Server::new().await;
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    let uri = format!("{CONFIGMAPS}/a");
    let merged = s
        .patch(
            &uri,
            "application/merge-patch+json",
            r#"{"data":{"m":"1"}}"#,
        )
        .await;
    assert_eq!(merged.status, 200);
    assert_eq!(merged.json()["data"], json!({"k": "v", "m": "1"}));
    let patched = s
        .patch(
            &uri,
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/data/k"}]"#,
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["data"], json!({"m": "1"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_its_own_subresource() {
    let s = Server::new().await;
    let created = s
        .write(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            &deployment("web", 1),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let uri = "/apis/apps/v1/namespaces/default/deployments/web/status";
    let patched = s
        .patch(
            uri,
            "application/merge-patch+json",
            r#"{"status":{"replicas":1},"spec":{"replicas":9}}"#,
        )
        .await;
    assert_eq!(patched.status, 200);
    let patched = patched.json();
    assert_eq!(patched["status"]["replicas"], 1);
    assert_eq!(
        patched["spec"]["replicas"], 1,
        "status writes leave the spec"
    );
    assert_eq!(s.get(uri).await.json()["status"]["replicas"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_reads_and_writes_replicas() {
    let s = Server::new().await;
    s.write(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("web", 2),
    )
    .await;
    let uri = "/apis/apps/v1/namespaces/default/deployments/web/scale";
    let scale = s.get(uri).await.json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    let patched = s
        .patch(
            uri,
            "application/merge-patch+json",
            r#"{"spec":{"replicas":5}}"#,
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["spec"]["replicas"], 5);
    let mut body = scale.clone();
    body["spec"]["replicas"] = json!(3);
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let updated = s.write("PUT", uri, &body).await;
    assert_eq!(
        updated.status,
        200,
        "{}",
        String::from_utf8_lossy(&updated.body)
    );
    let stored = s
        .get("/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .json();
    assert_eq!(stored["spec"]["replicas"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_a_pod_is_a_create_on_its_binding_subresource() {
    let s = Server::new().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    s.write("POST", "/api/v1/namespaces/default/pods", &pod)
        .await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                         "target": {"kind": "Node", "name": "n1"}});
    let bound = s
        .write(
            "POST",
            "/api/v1/namespaces/default/pods/p/binding",
            &binding,
        )
        .await;
    assert_eq!(bound.status, 201);
    assert_eq!(bound.json()["status"], "Success");
    let pod = s.get("/api/v1/namespaces/default/pods/p").await.json();
    assert_eq!(pod["spec"]["nodeName"], "n1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_preconditions_in_the_body_and_options_in_the_query() {
    let s = Server::new().await;
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    let uri = format!("{CONFIGMAPS}/a");
    let wrong =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-it"}});
    let refused = s.write("DELETE", &uri, &wrong).await;
    assert_eq!(
        refused.status,
        409,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let dry = s
        .call("DELETE", &format!("{uri}?dryRun=All"), &[], "")
        .await;
    assert_eq!(dry.status, 200);
    assert_eq!(s.get(&uri).await.status, 200, "a dry-run delete keeps it");
    let gone = s
        .call(
            "DELETE",
            &format!("{uri}?propagationPolicy=Background"),
            &[],
            "",
        )
        .await;
    assert_eq!(gone.status, 200);
    assert_eq!(gone.json()["status"], "Success");
    assert_eq!(s.get(&uri).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletecollection_deletes_what_the_selector_matches_and_lists_it() {
    let s = Server::new().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        s.write("POST", CONFIGMAPS, &config_map(name, json!({"tier": tier})))
            .await;
    }
    let deleted = s
        .delete(&format!("{CONFIGMAPS}?labelSelector=tier%3Dweb"))
        .await;
    assert_eq!(deleted.status, 200);
    let deleted = deleted.json();
    assert_eq!(deleted["kind"], "ConfigMapList");
    assert_eq!(names(&deleted), ["a", "b"]);
    assert_eq!(names(&s.get(CONFIGMAPS).await.json()), ["c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_object_and_cluster_scoped_kinds_have_no_namespace_in_the_path() {
    let s = Server::new().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}});
    assert_eq!(s.write("POST", "/api/v1/namespaces", &ns).await.status, 201);
    let got = s.get("/api/v1/namespaces/prod").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["metadata"]["name"], "prod");
    assert_eq!(
        s.get("/api/v1/namespaces/prod/status").await.json()["kind"],
        "Namespace"
    );
    let in_prod = s
        .write(
            "POST",
            "/api/v1/namespaces/prod/configmaps",
            &config_map("x", json!({})),
        )
        .await;
    assert_eq!(in_prod.status, 201);
    assert_eq!(in_prod.json()["metadata"]["namespace"], "prod");
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                    "metadata": {"name": "high"}, "value": 1000});
    let created = s
        .write("POST", "/apis/scheduling.k8s.io/v1/priorityclasses", &pc)
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(
        s.get("/apis/scheduling.k8s.io/v1/priorityclasses/high")
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_without_a_field_manager_are_managed_by_the_user_agent() {
    let s = Server::new().await;
    let body = serde_json::to_vec(&config_map("a", json!({}))).unwrap();
    let created = s
        .call(
            "POST",
            CONFIGMAPS,
            &[
                ("content-type", "application/json"),
                ("user-agent", "kubectl/v1.32.4 (linux/amd64) kubernetes/abc"),
            ],
            body,
        )
        .await;
    assert_eq!(created.status, 201);
    // managedFields are the patch engineer's; the manager reaches the
    // registry either way, and a long User-Agent is no error.
    let long = "x".repeat(300);
    let body = serde_json::to_vec(&config_map("b", json!({}))).unwrap();
    let created = s
        .call(
            "POST",
            CONFIGMAPS,
            &[("content-type", "application/json"), ("user-agent", &long)],
            body,
        )
        .await;
    assert_eq!(created.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_of_a_pod_no_node_runs_is_refused_by_the_node_proxy() {
    let s = Server::new().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    s.write("POST", "/api/v1/namespaces/default/pods", &pod)
        .await;
    let log = s
        .get("/api/v1/namespaces/default/pods/p/log?container=c&tailLines=5")
        .await;
    assert_eq!(log.status, 400, "{}", String::from_utf8_lossy(&log.body));
    assert_eq!(log.json()["kind"], "Status");
    let missing = s.get("/api/v1/namespaces/default/pods/nope/log").await;
    assert_eq!(missing.status, 404);
    let bad = s
        .get("/api/v1/namespaces/default/pods/p/log?tailLines=x")
        .await;
    assert_eq!(bad.status, 400);
}
