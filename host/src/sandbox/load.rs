//! Loading a component file: size and format checks with precise errors,
//! compilation through the cache, and the `InstancePre` that makes each
//! later instantiation cheap.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::types::ComponentItem;

use super::guest::{ACTIVITY_EXPORTS, GuestPre};
use super::{LoadedComponent, Sandbox, bindings};

/// Largest component file accepted by default (Python guests are ~18 MiB).
pub const DEFAULT_MAX_COMPONENT_SIZE: usize = 256 * 1024 * 1024;

/// The export every activity component must provide (0.1.0 components,
/// exporting its earlier version, load too).
pub const ACTIVITY_EXPORT: &str = ACTIVITY_EXPORTS[0];

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read component {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("component {path} is {size} bytes, over the limit of {max} bytes")]
    TooLarge { path: String, size: u64, max: usize },
    #[error("{path} is not a WebAssembly file (it does not start with the `\\0asm` magic bytes)")]
    NotWasm { path: String },
    #[error(
        "{path} is a core WebAssembly module, not a component; build it for wasm32-wasip2 \
         or wrap it with `wasm-tools component new`"
    )]
    CoreModule { path: String },
    #[error("{path} is not a valid component: {reason}")]
    Invalid { path: String, reason: String },
    #[error(
        "{path} does not export `{ACTIVITY_EXPORT}`; is it built against the sluice:activity \
         WIT world? (it exports: {exports})"
    )]
    NotAnActivity { path: String, exports: String },
    #[error("{path} exports `{ACTIVITY_EXPORT}` with another shape than this host expects: {reason}")]
    Mismatch { path: String, reason: String },
    #[error("{path} needs an import this host does not provide: {reason}")]
    UnsatisfiedImport { path: String, reason: String },
    #[error("cannot prepare the sandbox engine: {0}")]
    Engine(String),
}

pub(crate) fn load(sandbox: &Sandbox, path: &Path, metered: bool) -> Result<Arc<LoadedComponent>, LoadError> {
    let shown = path.display().to_string();
    let read_err = |cause| LoadError::Read { path: shown.clone(), cause };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    let max = sandbox.config.max_component_size;
    if size > max as u64 {
        return Err(LoadError::TooLarge { path: shown, size, max });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm { path: shown });
    }
    if wasmparser::Parser::is_core_wasm(&bytes) {
        return Err(LoadError::CoreModule { path: shown });
    }
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let key = (hash.clone(), metered);
    if let Some(loaded) = sandbox.loaded.lock().unwrap().get(&key) {
        return Ok(loaded.clone());
    }

    let runtime = sandbox.runtime(metered).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    let engine = &runtime.engine;
    let started = Instant::now();
    let (component, cache) = sandbox
        .cache
        .load_or_compile(engine, &bytes, &hash, runtime.compatibility_hash())
        .map_err(|e| LoadError::Invalid { path: shown.clone(), reason: format!("{e:#}") })?;
    let load_time = started.elapsed();

    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    let exported = |export: &str| {
        ty.exports(engine).any(|(name, item)| name == export && matches!(item.ty, ComponentItem::ComponentInstance(_)))
    };
    let Some(version) = ACTIVITY_EXPORTS.iter().position(|e| exported(e)) else {
        let exports = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
        return Err(LoadError::NotAnActivity { path: shown, exports });
    };
    let instance_pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::UnsatisfiedImport { path: shown.clone(), reason: format!("{e:#}") })?;
    let mismatch = |e: wasmtime::Error| LoadError::Mismatch { path: shown.clone(), reason: format!("{e:#}") };
    let pre = match version {
        0 => GuestPre::V2(bindings::ActivityComponentPre::new(instance_pre).map_err(mismatch)?),
        _ => GuestPre::V1(bindings::v1::ActivityComponentPre::new(instance_pre).map_err(mismatch)?),
    };

    let loaded =
        Arc::new(LoadedComponent { runtime: runtime.clone(), pre, hash, path: path.to_path_buf(), cache, load_time });
    sandbox.loaded.lock().unwrap().insert(key, loaded.clone());
    Ok(loaded)
}
