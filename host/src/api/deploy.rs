//! Receiving a DeployComponent upload: the header, then the bytes, into a
//! file beside the stored components, bounded and checked for truncation.

use std::io::Write as _;

use tonic::Status;

use super::pb;
use super::pb::deploy_chunk::Part;
use super::services::check_sets;
use crate::engine::{Deploy, Engine};

/// Largest data message.
const MAX_CHUNK: usize = 1 << 20;

/// Reads the upload into a file; the deploy it asks for (its `by` and
/// `operator` still to be set by the caller).
pub async fn receive(engine: &Engine, mut stream: tonic::Streaming<pb::DeployChunk>) -> Result<Deploy, Status> {
    let first =
        stream.message().await?.ok_or_else(|| Status::invalid_argument("empty upload: send the header first"))?;
    let Some(Part::Header(h)) = first.part else {
        return Err(Status::invalid_argument("the first message of an upload must be its header"));
    };
    if h.activity_type.is_empty() {
        return Err(Status::invalid_argument("header.activity_type is required"));
    }
    check_sets(&h.set)?;
    let max = engine.max_component() as u64;
    if h.size == 0 {
        return Err(Status::invalid_argument("header.size is required: the component's size in bytes"));
    }
    if h.size > max {
        return Err(Status::resource_exhausted(format!(
            "the component is {} bytes, over the limit of {max} (sandbox.max_component_size)",
            h.size
        )));
    }
    let path = engine.upload_path();
    let result = write(&path, &mut stream, h.size).await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(Deploy {
        activity_type: h.activity_type,
        file: path,
        label: Some(h.version).filter(|v| !v.is_empty()),
        queue: Some(h.task_queue).filter(|q| !q.is_empty()),
        set: h.set,
        by: if h.deployed_by.is_empty() { "unknown".into() } else { h.deployed_by },
        operator: false,
    })
}

async fn write(
    path: &std::path::Path,
    stream: &mut tonic::Streaming<pb::DeployChunk>,
    size: u64,
) -> Result<(), Status> {
    let internal = |e: std::io::Error| Status::internal(format!("cannot write the upload: {e}"));
    let mut file = std::fs::File::create(path).map_err(internal)?;
    let mut written = 0u64;
    loop {
        let chunk = match stream.message().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                return Err(Status::invalid_argument(format!(
                    "the upload broke off after {written} of {size} bytes: {}",
                    e.message()
                )));
            }
        };
        let Some(Part::Data(data)) = chunk.part else {
            return Err(Status::invalid_argument("only the first message of an upload may be a header"));
        };
        if data.len() > MAX_CHUNK {
            return Err(Status::invalid_argument(format!("a data message is over {MAX_CHUNK} bytes")));
        }
        written += data.len() as u64;
        if written > size {
            return Err(Status::invalid_argument(format!(
                "the upload is longer than its header's size ({size} bytes)"
            )));
        }
        // Written off the async workers (the page cache may throttle).
        file = tokio::task::spawn_blocking(move || file.write_all(&data).map(|()| file))
            .await
            .map_err(|e| Status::internal(format!("cannot write the upload: {e}")))?
            .map_err(internal)?;
    }
    if written < size {
        return Err(Status::invalid_argument(format!("the upload is truncated: {written} of {size} bytes arrived")));
    }
    tokio::task::spawn_blocking(move || file.sync_all())
        .await
        .map_err(|e| Status::internal(format!("cannot write the upload: {e}")))?
        .map_err(internal)
}
