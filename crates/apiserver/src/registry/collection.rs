//! deletecollection: every object a list selects, deleted one by one, as
//! Kubernetes' generic store `DeleteCollection` does.
//!
//! Each object goes through [`Registry::delete`], so finalizers, grace
//! periods and propagation policies apply to each as to a single delete.
//! The answer is a list of the objects deleted, as Kubernetes answers: an
//! object that stays a while (finalizers, a grace period) as the delete left
//! it, one that is gone as it was last listed.
//!
//! # Caveats
//! Not atomic (neither is Kubernetes'): objects created after the list are
//! kept, and a failure midway leaves the earlier objects deleted. Objects are
//! deleted in list order, one at a time.

use serde_json::{json, Value};
use skiff_api::resources::Resource;
use skiff_api::status::{ApiError, Reason};

use super::{DeleteOptions, ListOptions, Registry};
use crate::object::meta_str;

impl Registry {
    /// Deletes every object of `resource` in `namespace` (all namespaces when
    /// empty) that the label and field selectors of `selection` match.
    pub async fn delete_collection(
        &self,
        resource: &'static Resource,
        namespace: &str,
        selection: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let selection = ListOptions {
            label_selector: selection.label_selector.clone(),
            field_selector: selection.field_selector.clone(),
            ..Default::default()
        };
        let listed = self.list(resource, namespace, &selection).await?;
        let mut deleted = Vec::new();
        for item in listed["items"].as_array().into_iter().flatten() {
            let (item_namespace, name) = (meta_str(item, "namespace"), meta_str(item, "name"));
            match self.delete(resource, item_namespace, name, options).await {
                Ok(reply) if reply.object["kind"] == "Status" => deleted.push(item.clone()),
                Ok(reply) => deleted.push(reply.object),
                // Deleted by someone else meanwhile: not ours to report.
                Err(err) if err.reason == Reason::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(json!({
            "kind": resource.list_kind(),
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"].clone()},
            "items": deleted,
        }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::registry::tests::{config_map, pod, r, Fixture};
    use crate::registry::{DeleteOptions, ListOptions, WriteOptions};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deletes_what_the_selectors_match_and_lists_it() {
        let f = Fixture::new().await;
        let registry = &f.registry;
        for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
            let mut cm = config_map(name, 1);
            cm["metadata"]["labels"] = json!({"tier": tier});
            let body = serde_json::to_vec(&cm).unwrap();
            registry
                .create(r("configmaps"), "default", &body, &WriteOptions::default())
                .await
                .unwrap();
        }
        let selection = ListOptions {
            label_selector: "tier=web".into(),
            ..Default::default()
        };
        let gone = registry
            .delete_collection(
                r("configmaps"),
                "default",
                &selection,
                &DeleteOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(gone["kind"], "ConfigMapList");
        let names: Vec<&str> = gone["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let left = registry
            .list(r("configmaps"), "default", &ListOptions::default())
            .await
            .unwrap();
        assert_eq!(left["items"].as_array().unwrap().len(), 1);
        assert_eq!(left["items"][0]["metadata"]["name"], "c");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn objects_that_stay_are_answered_as_the_delete_left_them() {
        let f = Fixture::new().await;
        let registry = &f.registry;
        let mut cm = config_map("kept", 1);
        cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
        let body = serde_json::to_vec(&cm).unwrap();
        registry
            .create(r("configmaps"), "default", &body, &WriteOptions::default())
            .await
            .unwrap();
        let body = serde_json::to_vec(&pod("web")).unwrap();
        registry
            .create(r("pods"), "default", &body, &WriteOptions::default())
            .await
            .unwrap();
        let gone = registry
            .delete_collection(
                r("configmaps"),
                "",
                &ListOptions::default(),
                &DeleteOptions::default(),
            )
            .await
            .unwrap();
        let kept = &gone["items"][0];
        assert_eq!(kept["metadata"]["name"], "kept");
        assert!(kept["metadata"]["deletionTimestamp"].is_string());
        let pods = registry
            .list(r("pods"), "default", &ListOptions::default())
            .await
            .unwrap();
        assert_eq!(
            pods["items"].as_array().unwrap().len(),
            1,
            "other kinds stay"
        );
    }
}
