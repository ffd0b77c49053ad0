//! Compiles the crate's `.proto` files in pure Rust (protox), so no `protoc`
//! binary is needed, then generates prost messages and tonic client/server stubs.

use std::error::Error;

const PROTO_ROOT: &str = "proto";

const PROTO_FILES: &[&str] = &[
    "proto/etcd/mvccpb/kv.proto",
    "proto/etcd/authpb/auth.proto",
    "proto/etcd/etcdserverpb/rpc.proto",
    "proto/etcd/v3lock/v3lock.proto",
    "proto/etcd/v3election/v3election.proto",
    "proto/meridian/raftpb.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let fds = protox::compile(PROTO_FILES, [PROTO_ROOT])?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;

    Ok(())
}
