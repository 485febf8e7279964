//! Discovery documents as kubectl reads them, and health.

use serde_json::Value;

use super::Server;

fn find<'a>(list: &'a Value, field: &str, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i[field] == name))
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_names_a_kubernetes_release() {
    let s = Server::new().await;
    let version = s.get("/version").await.json();
    assert_eq!(version["major"], "1");
    assert_eq!(version["gitVersion"], "v1.33.0-skiff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_discovery_lists_groups_and_resources_with_their_subresources() {
    let s = Server::new().await;
    let api = s.get("/api").await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"][0], "v1");
    let apis = s.get("/apis").await.json();
    assert_eq!(apis["kind"], "APIGroupList");
    let apps = find(&apis["groups"], "name", "apps");
    assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
    assert_eq!(s.get("/apis/apps").await.json()["kind"], "APIGroup");
    let core = s.get("/api/v1").await.json();
    assert_eq!(core["kind"], "APIResourceList");
    assert_eq!(core["groupVersion"], "v1");
    let pods = find(&core["resources"], "name", "pods");
    assert_eq!(pods["kind"], "Pod");
    assert_eq!(pods["namespaced"], true);
    assert_eq!(pods["shortNames"][0], "po");
    assert_eq!(pods["categories"][0], "all");
    assert!(pods["verbs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "deletecollection"));
    let status = find(&core["resources"], "name", "pods/status");
    assert_eq!(
        status["verbs"],
        serde_json::json!(["get", "patch", "update"])
    );
    let apps = s.get("/apis/apps/v1").await.json();
    let scale = find(&apps["resources"], "name", "deployments/scale");
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["kind"], "Scale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_discovery_is_answered_when_asked_for_first() {
    let s = Server::new().await;
    let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let answer = s.call("GET", "/apis", &[("accept", kubectl)], "").await;
    assert_eq!(
        answer.header("content-type"),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let list = answer.json();
    assert_eq!(list["kind"], "APIGroupDiscoveryList");
    assert_eq!(list["apiVersion"], "apidiscovery.k8s.io/v2");
    let apps = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .expect("apps is served");
    let version = &apps["versions"][0];
    assert_eq!(version["version"], "v1");
    assert_eq!(version["freshness"], "Current");
    let deployments = find(&version["resources"], "resource", "deployments");
    assert_eq!(deployments["scope"], "Namespaced");
    assert_eq!(deployments["responseKind"]["kind"], "Deployment");
    assert_eq!(deployments["singularResource"], "deployment");
    let scale = find(&deployments["subresources"], "subresource", "scale");
    assert_eq!(scale["responseKind"]["kind"], "Scale");
    let core = s
        .call("GET", "/api", &[("accept", kubectl)], "")
        .await
        .json();
    assert_eq!(core["items"][0]["metadata"]["name"], "");
    let plain = s
        .call("GET", "/api", &[("accept", "application/json")], "")
        .await
        .json();
    assert_eq!(plain["kind"], "APIVersions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_answer_ok_and_list_checks_when_verbose() {
    let s = Server::new().await;
    for path in ["/healthz", "/livez", "/readyz"] {
        let answer = s.get(path).await;
        assert_eq!(answer.status, 200);
        assert_eq!(&answer.body[..], b"ok");
    }
    let verbose = s.get("/readyz?verbose").await;
    assert_eq!(
        String::from_utf8_lossy(&verbose.body),
        "[+]ping ok\n[+]etcd ok\nreadyz check passed\n"
    );
    assert_eq!(s.get("/livez/ping").await.status, 200);
    assert_eq!(s.get("/livez/nothing").await.status, 404);
}
