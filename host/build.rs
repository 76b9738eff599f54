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
    Ok(())
}
