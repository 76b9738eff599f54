//! Compiles the gRPC contract with protox (no system protoc needed): the
//! tonic services, and serde impls in the proto3 JSON mapping (pbjson) for
//! the HTTP API. The descriptor set is kept for the OpenAPI document.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["sluice/v1/sluice.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = fds.encode_to_vec();
    std::fs::write(out.join("sluice_descriptor.bin"), &descriptors)?;
    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;
    // Payload has its own JSON form (api::payload_json): JSON payloads as JSON.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .emit_fields()
        .exclude([".sluice.v1.Payload"])
        .build(&[".sluice.v1"])?;
    temporal_frontend()?;
    Ok(())
}

/// The server side of Temporal's `WorkflowService`, generated from the
/// descriptors `temporalio-protos` compiled (it exports their path): only
/// the service's file, its messages taken from that crate. Every RPC the
/// frontend does not implement answers UNIMPLEMENTED (default stubs).
fn temporal_frontend() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")?;
    println!("cargo:rerun-if-changed={path}");
    let mut fds = prost_types::FileDescriptorSet::decode(&*std::fs::read(&path)?)?;
    fds.file.retain(|f| f.name() == "temporal/api/workflowservice/v1/service.proto");
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_well_known_types(true)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .extern_path(".google.protobuf", "::prost_wkt_types")
        .compile_fds(fds)?;
    Ok(())
}
