//! `skiff up` as a real process: the API server answers gRPC, the store under
//! it answers etcd clients with Kubernetes' key layout, it writes the client
//! config file under $HOME, Ctrl-C stops it cleanly, and the data is there
//! after a restart.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use skiff_e2e::up::UpProcess;
use skiff_e2e::{free_port, skiff_binary};
use skiff_proto::api::api_client::ApiClient;
use skiff_proto::api::{CreateRequest, GetRequest, ResourceRef};
use tonic::transport::Channel;

/// A `skiff apiserver` process, killed when dropped unless it was stopped.
struct Apiserver {
    child: Child,
}

impl Apiserver {
    /// Sends SIGINT (as Ctrl-C) and waits, a bounded number of times, for a clean exit.
    async fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success(), "kill -INT {pid} failed");
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            // Not a thread sleep: the client's connection tasks run on this runtime.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("skiff apiserver did not stop after SIGINT");
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Connects once the API answers Get for the default namespace (bootstrap done).
async fn connect(api_port: u16) -> ApiClient<Channel> {
    for _ in 0..600 {
        if let Ok(mut client) = ApiClient::connect(format!("http://127.0.0.1:{api_port}")).await {
            let default = GetRequest {
                r#ref: Some(ResourceRef {
                    version: "v1".into(),
                    resource: "namespaces".into(),
                    name: "default".into(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            if client.get(default).await.is_ok() {
                return client;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the API server on port {api_port} never answered");
}

fn config_maps(name: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        version: "v1".into(),
        resource: "configmaps".into(),
        namespace: "default".into(),
        name: name.into(),
        ..Default::default()
    })
}

fn pods(name: &str) -> Option<ResourceRef> {
    Some(ResourceRef {
        version: "v1".into(),
        resource: "pods".into(),
        namespace: "default".into(),
        name: name.into(),
        ..Default::default()
    })
}

// Two workers: `stop` blocks one while the clients' connection tasks close on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_api_over_its_own_store_and_stops_on_ctrl_c() {
    let mut up = UpProcess::start(&[]);
    let mut client = ApiClient::connect(up.server.clone()).await.unwrap();
    // Client commands find the server through $HOME/.skiff/config.
    let config = std::fs::read_to_string(up.home().join(".skiff/config"))
        .expect("skiff up wrote $HOME/.skiff/config");
    assert!(
        config
            .lines()
            .any(|l| l == format!("server = \"{}\"", up.server)),
        "{config}"
    );
    // A ConfigMap, which no component of `skiff up` changes after it is written
    // (a pod would be scheduled and started at once, moving its resourceVersion).
    let settings = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"},
                          "data": {"greeting": "hello"}});
    let created = client
        .create(CreateRequest {
            r#ref: config_maps(""),
            object: serde_json::to_vec(&settings).unwrap(),
            ..Default::default()
        })
        .await
        .expect("the config map is created")
        .into_inner();
    let created: Value = serde_json::from_slice(&created.object).unwrap();

    // The same process serves etcd's API: the object is at Kubernetes' key.
    let mut etcd = etcd_client::Client::connect([up.store.clone()], None)
        .await
        .unwrap();
    let got = etcd
        .get("/registry/configmaps/default/web", None)
        .await
        .unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(
        kv.mod_revision().to_string(),
        created["metadata"]["resourceVersion"].as_str().unwrap()
    );
    drop(etcd);
    drop(client);

    let status = up.stop("INT");
    assert!(status.success(), "skiff up exited with {status}");

    // Restarted on the same data, it still has the object.
    let first_run = up.log().len();
    up.restart();
    let mut client = ApiClient::connect(up.server.clone()).await.unwrap();
    let again = client
        .get(GetRequest {
            r#ref: config_maps("web"),
            ..Default::default()
        })
        .await
        .expect("the config map survived the restart")
        .into_inner();
    let again: Value = serde_json::from_slice(&again.object).unwrap();
    assert_eq!(again, created);
    drop(client);
    assert!(up.stop("INT").success());
    let log = up.log().split_off(first_run);
    assert!(
        !log.contains("still open after the shutdown grace period"),
        "closed connections were waited for: {log}"
    );
}

#[tokio::test]
async fn apiserver_serves_the_api_over_a_remote_store() {
    let store = skiff_e2e::InProcessStore::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("apiserver.log");
    let api_port = free_port();
    let child = Command::new(skiff_binary())
        .args(["apiserver", "--etcd-servers", &store.endpoint])
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("skiff apiserver starts");
    let apiserver = Apiserver { child };
    let mut client = connect(api_port).await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "remote"},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    client
        .create(CreateRequest {
            r#ref: pods(""),
            object: serde_json::to_vec(&pod).unwrap(),
            ..Default::default()
        })
        .await
        .expect("the pod is created");
    // The object is in the remote store under Kubernetes' key.
    let kvs = store
        .store
        .range(&skiff_proto::etcdserverpb::RangeRequest {
            key: b"/registry/pods/default/remote".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .kvs;
    let stored: Value = serde_json::from_slice(&kvs[0].value).unwrap();
    assert_eq!(stored["metadata"]["name"], "remote");
    drop(client);
    assert!(apiserver.interrupt().await.success());
}
