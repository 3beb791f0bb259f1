//! Compiles the .proto files with protox (there is no protoc) and writes the descriptor set
//! that server reflection serves.

use prost::Message;
use std::path::PathBuf;

const FILES: &[&str] = &[
    "hcrm/type/v1/types.proto",
    "hcrm/patients/v1/patients.proto",
    "hcrm/patients/v1/organizations.proto",
    "hcrm/patients/v1/audit.proto",
    "hcrm/patients/v1/segments.proto",
    "hcrm/patients/v1/directory.proto",
    "hcrm/patients/v1/fhir.proto",
    "hcrm/patients/v1/appointments.proto",
    "hcrm/patients/v1/guide.proto",
    "hcrm/followup/v1/followup.proto",
    "hcrm/feedback/v1/feedback.proto",
    "hcrm/opinion/v1/opinion.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=hcrm");
    println!("cargo:rerun-if-changed=google");
    let fds = protox::compile(FILES, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("hcrm_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
