//! Compiles the crate's `.proto` files in pure Rust (protox), so no `protoc`
//! binary is needed, then generates prost messages and tonic client/server stubs,
//! and serde implementations (pbjson) following grpc-gateway's JSON conventions
//! for the etcd packages, which the JSON gateway speaks.

use std::error::Error;

use prost::Message;

const PROTO_ROOT: &str = "proto";

const PROTO_FILES: &[&str] = &[
    "proto/etcd/mvccpb/kv.proto",
    "proto/etcd/authpb/auth.proto",
    "proto/etcd/etcdserverpb/rpc.proto",
    "proto/etcd/v3lock/v3lock.proto",
    "proto/etcd/v3election/v3election.proto",
    "proto/meridian/raftpb.proto",
    "proto/grpc/health/v1/health.proto",
];

/// The packages the JSON gateway serves (Meridian's own peer protocol has no JSON form).
const JSON_PACKAGES: &[&str] = &[".mvccpb", ".authpb", ".etcdserverpb", ".v3lockpb", ".v3electionpb"];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");

    let fds = protox::compile(PROTO_FILES, [PROTO_ROOT])?;
    let descriptors = fds.encode_to_vec();

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;

    // etcd's gateway (grpc-gateway v1 with `OrigName`) names fields as the .proto does, and ignores fields it
    // does not know (observed against etcd 3.4); pbjson already writes 64-bit integers as strings, bytes in
    // standard base64, enums by name, and omits zero values.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(JSON_PACKAGES)?;

    Ok(())
}
