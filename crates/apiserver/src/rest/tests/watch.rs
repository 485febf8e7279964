//! Watch streams: one JSON event per line, flushed as it happens.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::{config_map, Server, CONFIGMAPS};
use crate::registry::RegistryConfig;
use crate::rest::RestBody;

/// Reads the next event of a watch stream; `None` when it has ended.
async fn next_event(body: &mut RestBody) -> Option<Value> {
    loop {
        let frame = body.frame().await?.expect("a watch frame");
        if let Ok(data) = frame.into_data() {
            assert!(data.ends_with(b"\n"), "one event per line");
            return Some(serde_json::from_slice(&data).expect("an event is JSON"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_streams_added_modified_and_deleted_events() {
    let s = Server::new().await;
    let created = s
        .write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await
        .json();
    let response = s
        .send("GET", &format!("{CONFIGMAPS}?watch=1"), &[], "")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut body = response.into_body();
    let added = next_event(&mut body).await.unwrap();
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["metadata"]["name"], "a");
    let mut next = created.clone();
    next["data"]["k"] = json!("w");
    s.write("PUT", &format!("{CONFIGMAPS}/a"), &next).await;
    let modified = next_event(&mut body).await.unwrap();
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["data"]["k"], "w");
    s.delete(&format!("{CONFIGMAPS}/a")).await;
    assert_eq!(next_event(&mut body).await.unwrap()["type"], "DELETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_resource_version_sends_only_later_changes_until_its_timeout() {
    let s = Server::new().await;
    let a = s
        .write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await
        .json();
    let rv = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    s.write("POST", CONFIGMAPS, &config_map("b", json!({})))
        .await;
    let uri = format!("{CONFIGMAPS}?watch=true&resourceVersion={rv}&timeoutSeconds=1");
    let mut body = s.send("GET", &uri, &[], "").await.into_body();
    let added = next_event(&mut body).await.unwrap();
    assert_eq!(added["object"]["metadata"]["name"], "b");
    assert!(
        next_event(&mut body).await.is_none(),
        "the stream ends at its timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_of_one_object_sees_only_it_also_through_the_legacy_path() {
    let s = Server::new().await;
    let mut body = s
        .send(
            "GET",
            "/api/v1/watch/namespaces/default/configmaps/b",
            &[],
            "",
        )
        .await
        .into_body();
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    s.write("POST", CONFIGMAPS, &config_map("b", json!({})))
        .await;
    let event = next_event(&mut body).await.unwrap();
    assert_eq!(event["object"]["metadata"]["name"], "b");
    let mut by_selector = s
        .send(
            "GET",
            &format!("{CONFIGMAPS}?watch=1&fieldSelector=metadata.name%3Da"),
            &[],
            "",
        )
        .await
        .into_body();
    let event = next_event(&mut by_selector).await.unwrap();
    assert_eq!(event["object"]["metadata"]["name"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_resource_version_the_cache_dropped_ends_with_a_410_error_event() {
    let s = Server::with_config(RegistryConfig {
        watch_cache_size: 1,
        watch_cache_fresh: Duration::ZERO,
        ..Default::default()
    })
    .await;
    let first = s
        .write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await
        .json();
    for name in ["b", "c", "d"] {
        s.write("POST", CONFIGMAPS, &config_map(name, json!({})))
            .await;
    }
    let rv = first["metadata"]["resourceVersion"].as_str().unwrap();
    let response = s
        .send(
            "GET",
            &format!("{CONFIGMAPS}?watch=1&resourceVersion={rv}"),
            &[],
            "",
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "the stream opens, then says why it ends"
    );
    let mut body = response.into_body();
    let error = next_event(&mut body).await.unwrap();
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["kind"], "Status");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        next_event(&mut body).await.is_none(),
        "nothing follows an ERROR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_watch_sends_one_row_tables_with_columns_only_first() {
    let s = Server::new().await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let mut body = s
        .send(
            "GET",
            &format!("{CONFIGMAPS}?watch=1"),
            &[("accept", accept)],
            "",
        )
        .await
        .into_body();
    s.write("POST", CONFIGMAPS, &config_map("a", json!({})))
        .await;
    s.write("POST", CONFIGMAPS, &config_map("b", json!({})))
        .await;
    let first = next_event(&mut body).await.unwrap();
    assert_eq!(first["object"]["kind"], "Table");
    assert_eq!(first["object"]["rows"][0]["cells"][0], "a");
    assert!(first["object"]["columnDefinitions"].is_array());
    let second = next_event(&mut body).await.unwrap();
    assert_eq!(second["object"]["rows"][0]["cells"][0], "b");
    assert!(second["object"].get("columnDefinitions").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_selectors_refuse_the_watch_before_it_starts() {
    let s = Server::new().await;
    let answer = s
        .call(
            "GET",
            &format!("{CONFIGMAPS}?watch=1&fieldSelector=spec.x%3D1"),
            &[],
            "",
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["kind"], "Status");
}
