//! managedFields and server-side apply through the registry.

use serde_json::{json, Value};
use skiff_api::status::{ApiError, Reason};

use super::fixture::{scenarios, Backend};
use super::patch::{deployment, patch};
use super::{config_map, r, Fixture};
use crate::registry::write::PatchType;
use crate::registry::WriteOptions;

scenarios!(
    writes_with_a_field_manager_record_managed_fields,
    writes_without_a_field_manager_record_nothing,
    apply_creates_then_removes_what_it_no_longer_sets,
    apply_conflicts_with_another_manager_until_forced,
    a_dry_run_apply_stores_nothing,
    apply_reads_yaml_and_checks_the_name,
);

fn by(manager: &str) -> WriteOptions {
    WriteOptions {
        field_manager: manager.into(),
        ..WriteOptions::default()
    }
}

/// The entry of `manager`, or Null.
fn entry<'a>(object: &'a Value, manager: &str) -> &'a Value {
    object["metadata"]["managedFields"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["manager"] == manager))
        .unwrap_or(&Value::Null)
}

async fn apply(f: &Fixture, body: &Value, options: &WriteOptions) -> Result<Value, ApiError> {
    let name = body["metadata"]["name"].as_str().expect("a name");
    let yaml = serde_yaml::to_string(body).expect("a Value encodes as YAML");
    f.registry
        .patch(
            r("deployments"),
            "default",
            name,
            "",
            PatchType::Apply,
            yaml.as_bytes(),
            options,
        )
        .await
        .map(|reply| reply.object)
}

fn intent(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"team": "a", "tier": "front"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
            },
        },
    })
}

async fn writes_with_a_field_manager_record_managed_fields(backend: Backend) {
    let f = Fixture::on(backend).await;
    let body = serde_json::to_vec(&deployment("d")).unwrap();
    let created = f
        .registry
        .create(r("deployments"), "default", &body, &by("kubectl-create"))
        .await
        .unwrap()
        .object;
    let e = entry(&created, "kubectl-create");
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    let fields = &e["fieldsV1"];
    assert!(fields["f:spec"]["f:replicas"].is_object());
    let web = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
    assert_eq!(web["."], json!({}));
    assert!(
        web["f:imagePullPolicy"].is_object(),
        "defaults are owned by the creator"
    );
    assert!(fields["f:metadata"].get("f:uid").is_none());
    assert!(fields.get("f:status").is_none());

    let scale = json!({"spec": {"replicas": 3}});
    let scaled = patch(&f, "deployments", "d", PatchType::Merge, &scale, &by("hpa"))
        .await
        .unwrap();
    assert_eq!(
        entry(&scaled, "hpa")["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(entry(&scaled, "kubectl-create")["fieldsV1"]["f:spec"]
        .get("f:replicas")
        .is_none());

    let mut labelled = scaled.clone();
    labelled["metadata"]["labels"] = json!({"x": "y"});
    let updated = f
        .registry
        .update(
            r("deployments"),
            "default",
            "d",
            "",
            &serde_json::to_vec(&labelled).unwrap(),
            &by("editor"),
        )
        .await
        .unwrap()
        .object;
    assert_eq!(
        entry(&updated, "editor")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:x": {}}}})
    );
    assert_eq!(
        updated["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

async fn writes_without_a_field_manager_record_nothing(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("cm", "default", config_map("c", 1)).await;
    assert!(created["metadata"].get("managedFields").is_none());
    let body = json!({"data": {"count": "2"}});
    let written = f
        .registry
        .patch(
            r("cm"),
            "default",
            "c",
            "",
            PatchType::Merge,
            &serde_json::to_vec(&body).unwrap(),
            &by("m"),
        )
        .await
        .unwrap()
        .object;
    let again = json!({"data": {"count": "3"}});
    let unrecorded = f
        .registry
        .patch(
            r("cm"),
            "default",
            "c",
            "",
            PatchType::Merge,
            &serde_json::to_vec(&again).unwrap(),
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    assert_eq!(
        unrecorded["metadata"]["managedFields"], written["metadata"]["managedFields"],
        "a write without a manager keeps the entries as they were"
    );
}

async fn apply_creates_then_removes_what_it_no_longer_sets(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = apply(&f, &intent(2), &by("kubectl")).await.unwrap();
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["spec"]["replicas"], 2);
    assert_eq!(
        created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let e = entry(&created, "kubectl");
    assert_eq!(e["operation"], "Apply");
    assert!(e["fieldsV1"]["f:metadata"]["f:labels"]["f:tier"].is_object());
    assert!(
        e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            .get("f:imagePullPolicy")
            .is_none(),
        "an applier owns its intent, not the defaults"
    );

    let mut fewer = intent(2);
    fewer["metadata"]["labels"] = json!({"team": "a"});
    let reapplied = apply(&f, &fewer, &by("kubectl")).await.unwrap();
    assert_eq!(
        reapplied["metadata"]["labels"],
        json!({"team": "a"}),
        "tier is removed"
    );
    assert!(rv(&reapplied) > rv(&created));
    let unchanged = apply(&f, &fewer, &by("kubectl")).await.unwrap();
    assert_eq!(
        rv(&unchanged),
        rv(&reapplied),
        "the same intent again writes nothing"
    );
}

fn rv(object: &Value) -> i64 {
    super::rv(object)
}

async fn apply_conflicts_with_another_manager_until_forced(backend: Backend) {
    let f = Fixture::on(backend).await;
    let body = serde_json::to_vec(&intent(1)).unwrap();
    f.registry
        .create(
            r("deployments"),
            "default",
            &body,
            &by("kubectl-client-side-apply"),
        )
        .await
        .unwrap();
    let mut only_replicas = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 5}});
    let err = apply(&f, &only_replicas, &by("kubectl")).await.unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    let details = err.details.as_ref().expect("details");
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].reason, "FieldManagerConflict");
    assert_eq!(details.causes[0].field, ".spec.replicas");
    assert_eq!(
        f.get("deployments", "default", "d").await.unwrap()["spec"]["replicas"],
        1
    );

    let forced = apply(
        &f,
        &only_replicas,
        &WriteOptions {
            force: true,
            ..by("kubectl")
        },
    )
    .await
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert!(entry(&forced, "kubectl")["fieldsV1"]["f:spec"]["f:replicas"].is_object());
    let other = &entry(&forced, "kubectl-client-side-apply")["fieldsV1"];
    assert!(other["f:spec"].get("f:replicas").is_none());
    assert!(
        other["f:spec"]["f:template"].is_object(),
        "only the conflicting field moved"
    );

    // Now the applier owns replicas: the same value from it is no conflict.
    only_replicas["spec"]["replicas"] = json!(5);
    apply(&f, &only_replicas, &by("kubectl")).await.unwrap();
}

async fn a_dry_run_apply_stores_nothing(backend: Backend) {
    let f = Fixture::on(backend).await;
    let dry = WriteOptions {
        dry_run: true,
        ..by("kubectl")
    };
    let answered = apply(&f, &intent(2), &dry).await.unwrap();
    assert_eq!(entry(&answered, "kubectl")["operation"], "Apply");
    assert_eq!(
        f.get("deployments", "default", "d")
            .await
            .unwrap_err()
            .reason,
        Reason::NotFound
    );
    let created = apply(&f, &intent(2), &by("kubectl")).await.unwrap();
    let answered = apply(&f, &intent(4), &dry).await.unwrap();
    assert_eq!(answered["spec"]["replicas"], 4);
    assert_eq!(f.get("deployments", "default", "d").await.unwrap(), created);
}

async fn apply_reads_yaml_and_checks_the_name(backend: Backend) {
    let f = Fixture::on(backend).await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: \"1\"\n";
    let apply_cm = |name: &'static str, options: WriteOptions| {
        let registry = &f.registry;
        async move {
            registry
                .patch(
                    r("cm"),
                    "default",
                    name,
                    "",
                    PatchType::Apply,
                    yaml.as_bytes(),
                    &options,
                )
                .await
        }
    };
    let created = apply_cm("c", by("m")).await.unwrap().object;
    assert_eq!(created["data"], json!({"a": "1"}));
    let err = apply_cm("other", by("m")).await.unwrap_err();
    assert_eq!(err.reason, Reason::BadRequest);
    assert_eq!(
        err.message,
        "the name of the object (c) does not match the name on the URL (other)"
    );
    let err = apply_cm("c", WriteOptions::default()).await.unwrap_err();
    assert_eq!(err.reason, Reason::BadRequest);
    assert!(
        err.message.contains("fieldManager: Required value"),
        "{}",
        err.message
    );
}
