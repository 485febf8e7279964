//! `skiff up`: a one-machine control plane in one process — a store member
//! (serving etcd's API to outside clients too) and the API server reading and
//! writing it with no network hop — until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use skiff_apiserver::{LocalStorage, Registry};
use skiff_store::grpc::Advertised;
use skiff_store::{server::parse_url, Store, StoreConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::apiserver::{registry_config, stop_on_signal};
use crate::cli::UpArgs;

/// Opens the store, starts both servers and waits for a signal.
pub fn run(args: UpArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        serve(args, shutdown).await
    })
}

async fn serve(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let registry_config = registry_config(&args.ranges)?;
    let mut store_listeners = Vec::new();
    for url in &args.listen_client_urls {
        let addr = parse_url(url)?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for store clients on {addr}"))?;
        store_listeners.push(listener);
    }
    let api_listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen for API clients on {}", args.listen))?;
    let store = Store::open(StoreConfig {
        data_dir: args.data_dir.clone(),
        ..StoreConfig::default()
    })
    .await
    .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    tracing::info!(data_dir = %args.data_dir.display(), "store open");
    let advertised = Advertised {
        client_urls: args.listen_client_urls.clone(),
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
        skiff_apiserver::server::serve(api_listener, registry.clone(), shutdown.clone())
            .await
            .context("the API server")
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
