//! What the workloads share: the namespace, pod JSON, the list of existing pods
//! and closed-loop creates.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use skiff_client::{Api, Client, ClientConfig, ListParams, PostParams};
use tonic::transport::Channel;

use super::super::common::{
    bounded, error_chain, merge_clients, BenchError, Budget, ErrorLog, Gaps, Stop, Tally,
    REQUEST_TIMEOUT,
};
use super::report::Config;

/// The annotation every write of the watch workload carries: `<run id>/<nanoseconds since
/// the run began>`.
pub(crate) const SENT_ANNOTATION: &str = "bench.skiff.dev/sent";

/// The pods of `namespace` through `channel`, with no bound on the size of an answer
/// (a list of a hundred thousand pods is beyond the client's default 64 MiB).
pub(super) fn pods(channel: &Channel, namespace: &str) -> Api<Pod> {
    Api::namespaced(client(channel), namespace)
}

fn client(channel: &Channel) -> Client {
    let config = ClientConfig {
        max_message_bytes: usize::MAX,
        ..ClientConfig::default()
    };
    Client::with_config(channel.clone(), &config)
}

/// A small pod as JSON: one container, and the send-time annotation when given.
pub(super) fn pod_json(name: &str, sent: Option<&str>) -> Vec<u8> {
    let annotations = match sent {
        Some(sent) => format!(r#","annotations":{{"{SENT_ANNOTATION}":"{sent}"}}"#),
        None => String::new(),
    };
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"{annotations}}},"spec":{{"containers":[{{"name":"app","image":"registry.k8s.io/pause:3.9"}}]}}}}"#
    )
    .into_bytes()
}

/// A name no earlier run used, so creates never collide with leftovers.
pub(super) fn run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Creates the namespace unless it exists.
pub(super) async fn ensure_namespace(channel: &Channel, config: &Config) -> Result<(), BenchError> {
    let namespaces = Api::<Namespace>::all(client(channel));
    let namespace = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": config.namespace},
    });
    let (params, object) = (PostParams::default(), serde_json::to_vec(&namespace)?);
    let create = namespaces.create_bytes(&params, object);
    match tokio::time::timeout(REQUEST_TIMEOUT, create).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) if err.is_already_exists() => Ok(()),
        Ok(Err(err)) => Err(setup(
            config,
            format!(
                "cannot create namespace {}: {}",
                config.namespace,
                error_chain(&err)
            ),
        )),
        Err(_) => Err(setup(
            config,
            format!("no answer to creating a namespace in {REQUEST_TIMEOUT:?}"),
        )),
    }
}

pub(super) fn setup(config: &Config, reason: String) -> BenchError {
    BenchError::ApiSetup {
        workload: config.workload.to_string(),
        reason,
    }
}

/// The names of the namespace's pods and the list's resourceVersion.
pub(super) async fn list_names(
    pods: &Api<Pod>,
    config: &Config,
) -> Result<(HashSet<String>, String), BenchError> {
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default)]
        name: String,
        #[serde(default, rename = "resourceVersion")]
        resource_version: String,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        metadata: Meta,
    }
    #[derive(serde::Deserialize)]
    struct List {
        metadata: Meta,
        #[serde(default)]
        items: Vec<Item>,
    }
    let params = ListParams::default();
    let list = pods.list_bytes(&params);
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, list)
        .await
        .map_err(|_| {
            setup(
                config,
                format!("no answer to a list in {REQUEST_TIMEOUT:?}"),
            )
        })?
        .map_err(|err| setup(config, format!("cannot list pods: {}", error_chain(&err))))?;
    let list: List = serde_json::from_slice(&answer)
        .map_err(|err| setup(config, format!("the pod list is not a list: {err}")))?;
    let names = list.items.into_iter().map(|i| i.metadata.name).collect();
    Ok((names, list.metadata.resource_version))
}

/// The name of the pod a create with a sequence number makes.
pub(super) type Names = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// Runs `config.clients` closed-loop clients creating pods named by `names` until `stop`;
/// returns their merged tally and the longest gap between successful creates.
pub(super) async fn create_pods(
    config: &Config,
    channels: &[Channel],
    stop: Stop,
    names: Names,
) -> (Tally, Duration) {
    let budget = Arc::new(Budget::new(stop));
    let errors = Arc::new(ErrorLog::default());
    let gaps = Arc::new(Gaps::new(Instant::now()));
    let tasks: Vec<_> = (0..config.clients)
        .map(|index| {
            tokio::spawn(create_loop(
                pods(&channels[index % channels.len()], &config.namespace),
                names.clone(),
                budget.clone(),
                errors.clone(),
                gaps.clone(),
            ))
        })
        .collect();
    let total = merge_clients(tasks, &errors).await;
    (total, gaps.longest())
}

/// One client: claims a sequence number, creates that pod, records how long it took.
async fn create_loop(
    pods: Api<Pod>,
    names: Names,
    budget: Arc<Budget>,
    errors: Arc<ErrorLog>,
    gaps: Arc<Gaps>,
) -> Tally {
    let mut tally = Tally::default();
    let params = PostParams::default();
    while let Some(seq) = budget.next(Instant::now()) {
        let create = pods.create_bytes(&params, pod_json(&names(seq), None));
        let started = Instant::now();
        let describe = |err: &skiff_client::Error| error_chain(err);
        if bounded("create", &errors, &mut tally.errors, describe, create)
            .await
            .is_some()
        {
            tally.record_ok(started.elapsed());
            gaps.success();
        }
    }
    tally
}
