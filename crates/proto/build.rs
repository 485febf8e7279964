//! Compiles the .proto files in `proto/` with protox (a protobuf compiler
//! written in Rust), so building skiff needs no system `protoc`.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "etcd/mvccpb/kv.proto",
    "etcd/etcdserverpb/rpc.proto",
    "skiff/store/v1/store.proto",
    "skiff/raft/v1/raft.proto",
    "skiff/api/v1/api.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let descriptors = protox::compile(PROTOS, [&root])?;

    // Kept for gRPC server reflection.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The API server sends one shared encoding of an object to every
        // watcher: `Bytes` lets the message point at it instead of copying.
        .bytes(".skiff.api.v1.WatchEvent.object")
        .compile_fds(descriptors)?;
    Ok(())
}
