//! Compiles the gRPC services in `proto/` with a vendored `protoc`, so a build needs no
//! system protobuf compiler.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure().compile_protos(
        &[
            "proto/cluster.proto",
            "proto/replication.proto",
            "proto/migration.proto",
        ],
        &["proto"],
    )?;
    Ok(())
}
