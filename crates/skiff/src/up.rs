//! `skiff up`: a whole one-machine cluster in one process — a store member
//! (data in `--data-dir`, serving etcd's API to outside clients too), the API
//! server reading and writing it with no network hop, the scheduler, the
//! controller manager and one kubelet named after the host — until Ctrl-C or
//! SIGTERM. The next `skiff up` over the same data directory resumes the same
//! cluster: the store reopens its log, and the kubelet (its files under
//! `<data-dir>/kubelet`) adopts the pods still running.
//!
//! The kubelet's runtime is `--runtime`: by default containerd when its
//! socket answers and we are root, else plain processes (see `kubelet`).
//! Once everything is ready, `skiff up` prints where it listens and the next
//! commands to try on stdout; its log goes to stderr.
//!
//! # The client config file
//! Once the API server listens, `skiff up` writes `$HOME/.skiff/config` so
//! that client commands find it without flags, as `kubectl` reads
//! `~/.kube/config`. The file is TOML with one key:
//!
//! ```toml
//! # Where skiff's client commands find the API server (written by `skiff up`).
//! server = "http://127.0.0.1:6443"
//! ```
//!
//! `server` is the gRPC address of the `skiff.api.v1.Api` service. An
//! unspecified listen address (`0.0.0.0`, `::`) is written as the loopback
//! address. The file is replaced on each start (written to a temporary file,
//! then renamed) and left in place on exit. Without `$HOME` it is not written.
//!
//! # Caveats
//! One server per file: a second `skiff up` on the same machine takes it over.
//! No leader election among the components: each is the only one. A
//! component that fails is logged when the cluster stops, not at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use skiff_apiserver::{LocalStorage, Registry};
use skiff_store::grpc::Advertised;
use skiff_store::{server::parse_url, Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::apiserver::registry_config;
use crate::cli::{Component, UpArgs};
use crate::kubelet;
use crate::shutdown::cancel_on_signal;

/// Opens the store, starts both servers and waits for a signal.
pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async { serve(args, cancel_on_signal()).await })
}

async fn serve(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let registry_config = registry_config(&args.ranges)?;
    let mut store_listeners = Vec::new();
    let mut store_urls = Vec::new();
    for url in &args.listen_client_urls {
        let addr = parse_url(url)?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for store clients on {addr}"))?;
        let bound = listener
            .local_addr()
            .context("reading the store listener's address")?;
        store_urls.push(server_url(bound));
        store_listeners.push(listener);
    }
    let api_listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen for API clients on {}", args.listen))?;
    let api_addr = api_listener
        .local_addr()
        .context("reading the API listener's address")?;
    let pki_dir = args.data_dir.join("pki");
    let pki = skiff_apiserver::server::pki::ensure(
        &pki_dir,
        &serving_hosts(api_addr, args.node_name.as_deref()),
    )
    .context("preparing the cluster's certificates")?;
    let admin = skiff_apiserver::server::pki::ensure_client(
        &pki_dir,
        "admin",
        "kubernetes-admin",
        &["system:masters"],
    )
    .context("preparing the admin's client certificate")?;
    let (config_file, kubeconfig) = match std::env::var_os("HOME") {
        Some(home) => (
            Some(write_client_config(Path::new(&home), api_addr)?),
            Some(crate::kubeconfig::write(
                Path::new(&home),
                &rest_url(api_addr),
                &crate::kubeconfig::Credentials {
                    ca_cert: &pki.ca_cert,
                    client_cert: &admin.cert,
                    client_key: &admin.key,
                },
            )?),
        ),
        None => {
            tracing::warn!("HOME is not set; not writing the client config files");
            (None, None)
        }
    };
    let serve_options = skiff_apiserver::server::ServeOptions {
        tls: Some(skiff_apiserver::server::TlsFiles {
            cert_file: pki.cert.clone(),
            key_file: pki.key.clone(),
            client_ca_file: Some(pki.ca_cert.clone()),
        }),
        insecure: false,
    };
    let store = Store::open(StoreConfig {
        data_dir: args.data_dir.clone(),
        preallocate_wal_from_start: true,
        ..StoreConfig::default()
    })
    .await
    .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    tracing::info!(data_dir = %args.data_dir.display(), "store open");
    let advertised = Advertised {
        client_urls: store_urls.clone(),
        peer_urls: vec!["http://127.0.0.1:2380".into()],
    };
    let store_server = tokio::spawn(skiff_store::server::serve(
        store_listeners,
        store.clone(),
        advertised,
        shutdown.clone(),
    ));
    let registry = Arc::new(Registry::new(
        Arc::new(LocalStorage::new(store.clone())),
        registry_config,
    ));
    let api_result = async {
        registry
            .bootstrap()
            .await
            .map_err(|e| anyhow::anyhow!("preparing the API server: {e}"))?;
        let ready = Ready {
            api_server: server_url(api_addr),
            store_clients: store_urls,
            data_dir: args.data_dir.clone(),
            config_file,
            kubeconfig,
        };
        let components = start_components(&args, &registry, &shutdown).await?;
        print!("{}", ready.banner());
        let served = skiff_apiserver::server::serve(
            api_listener,
            registry.clone(),
            &serve_options,
            shutdown.clone(),
        )
        .await
        .context("the API server");
        shutdown.cancel();
        stop_components(components).await;
        served
    }
    .await;
    // Whatever ended the API server ends the store server too.
    shutdown.cancel();
    // Store clients with open watches keep their connections; stop waiting after the grace period.
    let store_result = tokio::select! {
        result = store_server => result,
        _ = skiff_apiserver::server::drain_deadline(&shutdown) => {
            tracing::warn!("store clients still connected after the grace period; closing them");
            Ok(Ok(()))
        }
    };
    drop(registry);
    store.close().await;
    api_result?;
    match store_result {
        Ok(result) => result.context("the store server"),
        Err(join) => Err(anyhow::anyhow!("the store server task failed: {join}")),
    }
}

/// Starts the scheduler, the controller manager and one kubelet as tasks,
/// each with its own in-process connection to the API server. None elects a
/// leader: this process is the only one of each. `--disable` leaves any of
/// them out.
async fn start_components(
    args: &UpArgs,
    registry: &Arc<Registry>,
    shutdown: &CancellationToken,
) -> anyhow::Result<JoinSet<anyhow::Result<()>>> {
    let mut tasks = JoinSet::new();
    let scheduler = skiff_scheduler::Config {
        leader_election: false,
        ..skiff_scheduler::Config::default()
    };
    if !args.disable.contains(&Component::Scheduler) {
        let (client, token) = (in_process_client(registry).await?, shutdown.clone());
        tasks.spawn(async move {
            skiff_scheduler::run(scheduler, client, token)
                .await
                .context("the scheduler")
        });
    }
    let controllers = skiff_controllers::Config {
        leader_election: None,
        ..skiff_controllers::Config::default()
    };
    if !args.disable.contains(&Component::ControllerManager) {
        let (client, token) = (in_process_client(registry).await?, shutdown.clone());
        tasks.spawn(async move {
            skiff_controllers::run(controllers, client, token)
                .await
                .context("the controller manager")
        });
    }
    if args.disable.contains(&Component::Kubelet) {
        return Ok(tasks);
    }
    let kubelet = kubelet::Start {
        config: skiff_kubelet::Config {
            node_name: args
                .node_name
                .clone()
                .unwrap_or_else(crate::component::host_name),
            root_dir: args.data_dir.join("kubelet"),
            listen: (args.kubelet_port != 0)
                .then(|| SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), args.kubelet_port)),
            ..skiff_kubelet::Config::default()
        },
        runtime: kubelet::choose_on_host(args.runtime, &args.containerd_socket).await,
        containerd_socket: args.containerd_socket.clone(),
        image_dir: None,
    };
    let (client, token) = (in_process_client(registry).await?, shutdown.clone());
    tasks.spawn(kubelet::start(kubelet, client, token));
    Ok(tasks)
}

/// A client of `registry` over an in-process connection of its own.
async fn in_process_client(registry: &Arc<Registry>) -> anyhow::Result<skiff_client::Client> {
    let channel = skiff_apiserver::grpc::in_process_channel(registry.clone())
        .await
        .context("connecting to the API server in process")?;
    Ok(skiff_client::Client::new(channel))
}

/// Waits for the components to stop (their token is cancelled), logging
/// any that failed.
async fn stop_components(mut tasks: JoinSet<anyhow::Result<()>>) {
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!("{err:#}"),
            Err(join) => tracing::error!("a component's task failed: {join}"),
        }
    }
}

/// Where a started `skiff up` can be reached, printed once it is ready.
struct Ready {
    /// The API server's URL.
    api_server: String,
    /// The URLs serving etcd's API.
    store_clients: Vec<String>,
    /// The store's data directory.
    data_dir: PathBuf,
    /// The client config file written, if `$HOME` is set.
    config_file: Option<PathBuf>,
    /// The kubeconfig written, if `$HOME` is set.
    kubeconfig: Option<PathBuf>,
}

impl Ready {
    /// The plain text `skiff up` prints on stdout when ready: where it
    /// listens, then the next commands to try.
    fn banner(&self) -> String {
        let written = |file: &Option<PathBuf>| match file {
            Some(path) => path.display().to_string(),
            None => "not written ($HOME is not set)".to_string(),
        };
        let (config_file, kubeconfig) = (written(&self.config_file), written(&self.kubeconfig));
        let export = match &self.kubeconfig {
            Some(path) => format!("\n  export KUBECONFIG={}", path.display()),
            None => String::new(),
        };
        format!(
            "skiff is up.\n\
             \n  API server:     {api}\
             \n  store clients:  {store}\
             \n  data directory: {data}\
             \n  client config:  {config_file}\
             \n  kubeconfig:     {kubeconfig}\
             \n\
             \nTry:\
             \n  skiff get nodes\
             {export}\
             \n  kubectl get nodes\
             \n  skiff apply -f examples/\
             \n  skiff get pods -w\
             \n  skiff get deployments,jobs,cronjobs\
             \n\
             \nCtrl-C stops the cluster; the next `skiff up` with the same data directory resumes it.\n",
            api = self.api_server,
            store = self.store_clients.join(", "),
            data = self.data_dir.display(),
        )
    }
}

/// Where the client config file lives under `home`: `.skiff/config`.
pub fn client_config_path(home: &Path) -> PathBuf {
    home.join(".skiff").join("config")
}

/// The URL clients use for an API server listening on `addr`.
pub fn server_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The URL of the REST API for an API server listening on `addr`: https.
pub fn rest_url(addr: SocketAddr) -> String {
    server_url(addr).replacen("http://", "https://", 1)
}

/// The names the serving certificate carries: the loopback address,
/// `localhost`, the listen address when it is a specific one, and the node's name.
fn serving_hosts(addr: SocketAddr, node_name: Option<&str>) -> Vec<String> {
    let mut hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
        hosts.push(addr.ip().to_string());
    }
    let node = node_name.map_or_else(crate::component::host_name, str::to_string);
    if !hosts.contains(&node) {
        hosts.push(node);
    }
    hosts
}

/// The client config file's text for an API server at `server`.
pub fn client_config_text(server: &str) -> String {
    // A JSON string of a URL is also a valid TOML basic string.
    let quoted = serde_json::Value::String(server.to_string()).to_string();
    format!(
        "# Where skiff's client commands find the API server (written by `skiff up`).\nserver = {quoted}\n"
    )
}

/// Writes `<home>/.skiff/config` for an API server listening on `addr`,
/// replacing it whole (temporary file, then rename); answers its path.
pub fn write_client_config(home: &Path, addr: SocketAddr) -> anyhow::Result<PathBuf> {
    let path = client_config_path(home);
    crate::kubeconfig::replace_file(&path, &client_config_text(&server_url(addr)))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `server` from a client config file's text.
    fn parse_client_config(text: &str) -> Option<String> {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            if key.trim() != "server" {
                return None;
            }
            serde_json::from_str::<String>(value.trim()).ok()
        })
    }

    #[test]
    fn the_client_config_names_the_servers_grpc_address() {
        let home = tempfile::tempdir().unwrap();
        let path = write_client_config(home.path(), "127.0.0.1:6443".parse().unwrap()).unwrap();
        assert_eq!(path, home.path().join(".skiff/config"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("server = \"http://127.0.0.1:6443\"\n"),
            "{text}"
        );
        assert_eq!(
            parse_client_config(&text).as_deref(),
            Some("http://127.0.0.1:6443")
        );
        // Written again, it is replaced whole.
        write_client_config(home.path(), "0.0.0.0:7000".parse().unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            parse_client_config(&text).as_deref(),
            Some("http://127.0.0.1:7000")
        );
        assert_eq!(
            text.matches("server").count(),
            2,
            "one comment, one key: {text}"
        );
    }

    #[test]
    fn the_ready_banner_says_where_it_listens_and_what_to_try() {
        let ready = Ready {
            api_server: "http://127.0.0.1:6443".into(),
            store_clients: vec![
                "http://127.0.0.1:2379".into(),
                "http://127.0.0.1:2479".into(),
            ],
            data_dir: PathBuf::from("./skiff-data"),
            config_file: Some(PathBuf::from("/home/me/.skiff/config")),
            kubeconfig: Some(PathBuf::from("/home/me/.skiff/kubeconfig")),
        };
        let banner = ready.banner();
        for line in [
            "  API server:     http://127.0.0.1:6443",
            "  store clients:  http://127.0.0.1:2379, http://127.0.0.1:2479",
            "  data directory: ./skiff-data",
            "  client config:  /home/me/.skiff/config",
            "  kubeconfig:     /home/me/.skiff/kubeconfig",
            "  skiff get nodes",
            "  export KUBECONFIG=/home/me/.skiff/kubeconfig",
            "  kubectl get nodes",
            "  skiff apply -f examples/",
            "  skiff get pods -w",
        ] {
            assert!(banner.lines().any(|l| l == line), "{line:?} in\n{banner}");
        }
        assert!(!banner.contains('\u{1b}'), "no terminal codes: {banner:?}");
        let without_home = Ready {
            config_file: None,
            kubeconfig: None,
            ..ready
        }
        .banner();
        assert!(
            without_home.contains("client config:  not written"),
            "{without_home}"
        );
        assert!(
            !without_home.contains("export KUBECONFIG"),
            "{without_home}"
        );
    }

    #[test]
    fn the_serving_certificate_names_loopback_the_listen_address_and_the_node() {
        let specific: SocketAddr = "10.1.2.3:6443".parse().unwrap();
        assert_eq!(
            serving_hosts(specific, Some("node-a")),
            ["127.0.0.1", "localhost", "10.1.2.3", "node-a"]
        );
        let any: SocketAddr = "0.0.0.0:6443".parse().unwrap();
        assert_eq!(
            serving_hosts(any, Some("localhost")),
            ["127.0.0.1", "localhost"]
        );
        assert_eq!(rest_url(any), "https://127.0.0.1:6443");
    }

    #[test]
    fn unspecified_addresses_become_loopback() {
        assert_eq!(
            server_url("[::]:6443".parse().unwrap()),
            "http://[::1]:6443"
        );
        assert_eq!(
            server_url("10.0.0.5:6443".parse().unwrap()),
            "http://10.0.0.5:6443"
        );
    }
}
