//! `skiff image import`: OCI image layout tarballs into containerd, for nodes
//! with no registry to pull from.
//!
//! Each file's blobs are written into containerd's content store, the image
//! record is created under the name in the tarball (`busybox` →
//! `docker.io/library/busybox:latest`), and its layers are unpacked into
//! snapshots, so a pod naming the image starts without a pull. The work is
//! `skiff_kubelet::image::ImageStore`'s; this is its command line.
//!
//! # Caveats
//! Only OCI image layouts (`index.json` at the top), as `docker save` writes
//! since Docker 25 and `ctr image export` writes; a docker-archive is refused
//! with a message saying so.

use std::path::Path;

use anyhow::Context;
use skiff_kubelet::image::ImageStore;

use crate::cli::{ImageCommand, ImageImportArgs};

/// Runs an `image` subcommand.
pub fn run(command: ImageCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        ImageCommand::Import(args) => runtime.block_on(import(args)),
    }
}

/// Imports each file in order, printing each image's name as it is done.
async fn import(args: ImageImportArgs) -> anyhow::Result<()> {
    let images = ImageStore::connect(&args.containerd_socket, &args.namespace)
        .await
        .with_context(|| connect_hint(&args.containerd_socket))?;
    for file in &args.files {
        let name = images
            .import_file(file)
            .await
            .with_context(|| format!("importing {}", file.display()))?;
        println!("imported {name} from {}", file.display());
    }
    Ok(())
}

/// What to say when containerd is not reachable at `socket`.
fn connect_hint(socket: &Path) -> String {
    format!(
        "cannot reach containerd at {} (is it running, and may this user open its socket?)",
        socket.display()
    )
}
