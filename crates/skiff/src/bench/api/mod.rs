//! `skiff bench api`: load through the API server's gRPC service, as Kubernetes clients
//! put it on kube-apiserver.
//!
//! `skiff bench kv` measures the store; this measures everything above it too: decoding,
//! defaulting and validating an object, the etcd transaction, the watch cache's fan-out
//! and encoding JSON for every watcher. Three workloads, each in its own namespace
//! (`bench-<workload>` unless `--namespace` says otherwise), created first if absent:
//! - `create`: `--clients` closed-loop clients (as in [`super::kv`]) each create distinct
//!   small pods until `--duration` ends. This is the write path of a Deployment scaling up.
//! - `watch`: `--watchers` watch streams on the namespace's pods, spread over the
//!   connections, and one writer patching pods at `--rate` per second. Every
//!   write carries its run, sequence number and send time in an annotation
//!   ([`pods::SENT_ANNOTATION`]); the writer notes when each write was answered, so each watcher
//!   measures the time from the write's answer to its event (the fan-out alone) and from
//!   sending the write (fan-out plus the write). This is the traffic of a cluster of
//!   informers (kubelets, controllers) watching pods.
//! - `list`: `--pods` pods are created once (not measured; existing ones are kept), then
//!   `--repetitions` full lists of the namespace are timed, as a controller's informer
//!   lists when it starts.
//!
//! # Layout
//! - this module: running a workload; the create and list workloads.
//! - [`report`]: the configuration ([`Config`], [`Workload`]) and the [`ApiReport`].
//! - [`pods`]: what the workloads share (the namespace, pod JSON, the list of existing
//!   pods, closed-loop creates).
//! - [`watch`]: the watch workload, its paced writer and its receivers.
//!
//! Imports run one way: this module uses its children, `watch` uses `pods` and `report`,
//! `pods` uses `report`; none imports this module.
//!
//! The run of the watch workload:
//! 1. create the `watch::WATCH_PODS` pods the writer patches unless they exist (not measured),
//!    and list the namespace for the resourceVersion to start from;
//! 2. open every watch from that resourceVersion, so no event of the measured writes can
//!    be missed however late a stream starts;
//! 3. write at the requested pace until `--duration`, in an open loop (a write is sent
//!    on time even while the one before is unanswered): each write merge-patches the
//!    stamp of the next pod, round-robin;
//! 4. tell the watchers how many writes succeeded and let them drain their events, giving
//!    up `watch::DRAIN_GRACE` after the writer stops; whatever is still missing is reported.
//!
//! # Caveats
//! - Created pods are not deleted: the `create` namespace grows with every run.
//! - An event can reach a watcher before the writer has the write's answer; it counts
//!   as zero latency from the answer, and the report says how many did
//!   (`before-response`).
//! - The writer cycles over `watch::WATCH_PODS` pods; a write slower than one lap (a second at
//!   the default rate) overlaps the next write to the same pod, and events of one pod may
//!   then arrive in either order (both are counted).
//! - List latency ends when the whole answer is received; decoding it on the client (to
//!   count the items) is not timed.
//! - One process generates the load, on the same machine as the server in most runs;
//!   parsing a thousand watch streams costs the client CPU the server then lacks.

mod pods;
mod report;
mod watch;

use std::sync::Arc;
use std::time::Instant;

use tonic::transport::Channel;

use skiff_client::ListParams;

use super::common::{bounded, connect, error_chain, BenchError, ErrorLog, Stop, Tally};
use pods::{create_pods, ensure_namespace, list_names, pods, run_id, setup};
use report::ListCounts;
pub use report::{ApiReport, Config, Workload};

/// Runs the configured workload and reports on it.
pub(crate) async fn run(config: &Config) -> Result<ApiReport, BenchError> {
    let channels = connect(std::slice::from_ref(&config.server), config.conns).await?;
    ensure_namespace(&channels[0], config).await?;
    match config.workload {
        Workload::Create => run_create(config, &channels).await,
        Workload::Watch => watch::run(config, &channels).await,
        Workload::List => run_list(config, &channels).await,
    }
}

// ---------------------------------------------------------------------------------------
// create

async fn run_create(config: &Config, channels: &[Channel]) -> Result<ApiReport, BenchError> {
    let run = run_id();
    let start = Instant::now();
    let stop = Stop::At(start + config.duration);
    let names = Arc::new(move |seq: u64| format!("bench-{run}-{seq}"));
    let (tally, gaps) = create_pods(config, channels, stop, names).await;
    let mut report = ApiReport::new(config, config.clients, &tally, start.elapsed());
    report.longest_gap_ms = Some(gaps.as_secs_f64() * 1000.0);
    Ok(report)
}

// ---------------------------------------------------------------------------------------
// list

async fn run_list(config: &Config, channels: &[Channel]) -> Result<ApiReport, BenchError> {
    let pods = pods(&channels[0], &config.namespace);
    let (existing, _) = list_names(&pods, config).await?;
    let missing: Vec<String> = (0..config.pods)
        .map(|index| format!("list-{index:06}"))
        .filter(|name| !existing.contains(name))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "prepare: creating {} pods in namespace {} (not measured)",
            missing.len(),
            config.namespace
        );
        let started = Instant::now();
        let stop = Stop::After(missing.len() as u64);
        let missing = Arc::new(missing);
        let names = Arc::new(move |seq: u64| missing[seq as usize].clone());
        let (tally, _) = create_pods(config, channels, stop, names).await;
        eprintln!(
            "prepare: created {} pods in {:.1}s, {} errors",
            tally.ops,
            started.elapsed().as_secs_f64(),
            tally.errors
        );
        if tally.errors > 0 {
            return Err(setup(
                config,
                format!("{} of the pods to list could not be created", tally.errors),
            ));
        }
    }

    let errors = ErrorLog::default();
    let mut tally = Tally::default();
    let mut items = 0;
    let start = Instant::now();
    let params = ListParams {
        resource_version: Some(config.resource_version.clone()).filter(|rv| !rv.is_empty()),
        ..ListParams::default()
    };
    for _ in 0..config.repetitions {
        let started = Instant::now();
        let list = pods.list_bytes(&params);
        let describe = |err: &skiff_client::Error| error_chain(err);
        let answer = bounded("list", &errors, &mut tally.errors, describe, list).await;
        let elapsed = started.elapsed();
        match answer.map(|answer: Vec<u8>| count_items(&answer)) {
            None => {}
            Some(Ok(count)) if count >= config.pods => {
                tally.record_ok(elapsed);
                items = count;
            }
            Some(Ok(count)) => {
                tally.errors += 1;
                errors.note(&format!(
                    "a list returned {count} items, fewer than the {} pods created",
                    config.pods
                ));
            }
            Some(Err(err)) => {
                tally.errors += 1;
                errors.note(&format!("the pod list is not a list: {err}"));
            }
        }
    }
    let mut report = ApiReport::new(config, 1, &tally, start.elapsed());
    report.list = Some(ListCounts {
        pods: config.pods,
        items,
        resource_version: config.resource_version.clone(),
    });
    Ok(report)
}

/// The number of items in a list object, without decoding them.
fn count_items(list: &[u8]) -> Result<u64, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Items {
        #[serde(default)]
        items: Vec<serde::de::IgnoredAny>,
    }
    let items: Items = serde_json::from_slice(list)?;
    Ok(items.items.len() as u64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::common::{Latency, OutputFormat};
    use super::report::WatchCounts;
    use super::*;

    #[test]
    fn items_are_counted_without_decoding_them() {
        let list = br#"{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[{"a":1},{"b":[2]},{}]}"#;
        assert_eq!(count_items(list).unwrap(), 3);
        assert_eq!(
            count_items(br#"{"kind":"PodList","metadata":{}}"#).unwrap(),
            0
        );
        assert!(count_items(b"not json").is_err());
    }

    #[test]
    fn watchers_are_spread_about_a_hundred_to_a_connection() {
        assert_eq!(Config::default_conns(Workload::Watch, 64, 1000), 10);
        assert_eq!(Config::default_conns(Workload::Watch, 64, 5), 1);
        assert_eq!(Config::default_conns(Workload::Watch, 64, 100_000), 16);
        assert_eq!(Config::default_conns(Workload::Create, 64, 1000), 8);
        assert_eq!(Config::default_conns(Workload::List, 2, 1000), 2);
    }

    #[test]
    fn configurations_that_measure_nothing_are_refused() {
        let ok = Config::default();
        assert!(ok.validate().is_ok());
        let cases = [
            (
                Config {
                    clients: 0,
                    ..ok.clone()
                },
                "--clients",
            ),
            (
                Config {
                    workload: Workload::Watch,
                    watchers: 0,
                    ..ok.clone()
                },
                "--watchers",
            ),
            (
                Config {
                    workload: Workload::Watch,
                    rate: 0,
                    ..ok.clone()
                },
                "--rate",
            ),
            (
                Config {
                    workload: Workload::List,
                    pods: 0,
                    ..ok.clone()
                },
                "--pods",
            ),
            (
                Config {
                    duration: Duration::ZERO,
                    ..ok.clone()
                },
                "--duration",
            ),
        ];
        for (config, flag) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
        let list_ignores_duration = Config {
            workload: Workload::List,
            duration: Duration::ZERO,
            ..ok
        };
        assert!(list_ignores_duration.validate().is_ok());
    }

    fn sample(workload: Workload) -> ApiReport {
        ApiReport {
            workload,
            namespace: Config::default_namespace(workload),
            clients: 64,
            conns: 8,
            duration_s: 10.0,
            ops: 51_234,
            errors: 0,
            throughput: 5_123.4,
            latency: Latency {
                p50_us: 11_200,
                p90_us: 15_000,
                p99_us: 21_300,
                p999_us: 40_100,
                max_us: 52_000,
                mean_us: 11_500.0,
            },
            longest_gap_ms: None,
            watch: None,
            list: None,
        }
    }

    #[test]
    fn the_create_report_reads_like_the_kv_one() {
        let mut report = sample(Workload::Create);
        report.longest_gap_ms = Some(40.1);
        assert_eq!(
            report.to_text(),
            "workload=create namespace=bench-create clients=64 conns=8 duration=10.0s\n\
             creates=51234 errors=0 throughput=5123.4 creates/s\n\
             latency p50=11.2ms p90=15.0ms p99=21.3ms p99.9=40.1ms max=52.0ms\n\
             longest gap between successes=40.1ms\n"
        );
    }

    #[test]
    fn watch_and_list_reports_add_their_counts() {
        let mut watch = sample(Workload::Watch);
        watch.watch = Some(WatchCounts {
            watchers: 64,
            rate: 100,
            writes: 1000,
            expected: 64_000,
            missed: 0,
            before_response: 3,
            latency_from_send: watch.latency,
            write_latency: watch.latency,
        });
        let text = watch.to_text();
        assert!(text.starts_with("workload=watch namespace=bench-watch watchers=64 "));
        assert!(text.contains("\nevents=51234 errors=0 throughput=5123.4 events/s\n"));
        assert!(text.contains(
            "\nwatch rate=100/s writes=1000 expected=64000 missed=0 before-response=3\n"
        ));
        assert!(text.contains("\nlatency from send p50=11.2ms "));
        assert!(text
            .ends_with("write latency p50=11.2ms p90=15.0ms p99=21.3ms p99.9=40.1ms max=52.0ms\n"));

        let mut list = sample(Workload::List);
        list.list = Some(ListCounts {
            pods: 10_000,
            items: 10_000,
            resource_version: String::new(),
        });
        assert!(list
            .to_text()
            .ends_with("list pods=10000 items=10000 resource-version=\"\"\n"));
        let json: serde_json::Value =
            serde_json::from_str(&list.render(OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(json["workload"], "list");
        assert_eq!(json["list"]["items"], 10_000);
        assert!(json.get("watch").is_none(), "absent counts are left out");
    }
}
