//! The sandbox: loads activity components and runs attempts of them in
//! fresh, isolated, resource-limited instances.
//!
//! One `Engine` per trust class (plain, and fuel-metered when a limit asks
//! for it), the pooling allocator, an `InstancePre` per component, compiled
//! components cached on disk. See ARCHITECTURE.md.

mod attempt;
mod bindings;
mod cache;
mod classify;
mod compat;
mod control;
mod events;
mod guest;
mod host_api;
mod http;
mod limits;
mod load;
mod report;
mod runtime;
mod state;
mod threads;
mod warm;
mod wasi;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::Engine;

pub use attempt::{AttemptRequest, Teardown};
pub use bindings::ActivityInfo;
pub use cache::{CacheUse, ComponentCache};
pub use control::{AttemptControl, InterruptReason};
pub use events::{AttemptEvent, LogLevel};
pub use http::HttpRule;
pub use limits::{DEFAULT_MAX_OUTPUT, DEFAULT_MEMORY, Limits};
pub use load::{DEFAULT_MAX_COMPONENT_SIZE, LoadError};
pub use report::{ApplicationError, AttemptOutcome, AttemptReport, FailureKind, Output, SandboxFailure};
pub use runtime::{Allocation, EPOCH_TICK};
pub use threads::GuestThreads;
pub use warm::WarmPool;
pub use wasi::{DirGrant, Grants};

use guest::GuestPre;
use runtime::Runtime;

/// How the sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub allocation: Allocation,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Largest component file accepted.
    pub max_component_size: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            allocation: Allocation::Pooling { instances: 1000 },
            cache_dir: ComponentCache::default_dir(),
            max_component_size: DEFAULT_MAX_COMPONENT_SIZE,
        }
    }
}

/// Loads components and runs attempts. Cheap to share behind an `Arc`.
pub struct Sandbox {
    config: SandboxConfig,
    plain: Arc<Runtime>,
    metered: OnceLock<Arc<Runtime>>,
    cache: ComponentCache,
    /// Components already prepared, by content hash and metering.
    loaded: Mutex<HashMap<(String, bool), Arc<LoadedComponent>>>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> anyhow::Result<Self> {
        let plain = Arc::new(Runtime::new(config.allocation, false)?);
        let cache = ComponentCache::new(config.cache_dir.clone());
        Ok(Sandbox { config, plain, metered: OnceLock::new(), cache, loaded: Mutex::new(HashMap::new()) })
    }

    /// The allocation strategy in use (pooling may have fallen back).
    pub fn allocation(&self) -> Allocation {
        self.plain.allocation
    }

    fn runtime(&self, metered: bool) -> anyhow::Result<Arc<Runtime>> {
        if !metered {
            return Ok(self.plain.clone());
        }
        if let Some(rt) = self.metered.get() {
            return Ok(rt.clone());
        }
        let rt = Arc::new(Runtime::new(self.config.allocation, true)?);
        Ok(self.metered.get_or_init(|| rt).clone())
    }

    /// Reads, validates, compiles (or fetches from the cache) and prepares
    /// the component at `path`. `metered` is needed to run it with a fuel
    /// limit.
    pub fn load(&self, path: &Path, metered: bool) -> Result<Arc<LoadedComponent>, LoadError> {
        load::load(self, path, metered)
    }
}

/// A component ready to be instantiated, any number of times at once.
pub struct LoadedComponent {
    runtime: Arc<Runtime>,
    pre: GuestPre,
    /// Content hash (blake3, hex) of the component file.
    pub hash: String,
    pub path: PathBuf,
    /// Whether the compiled code came from the disk cache.
    pub cache: CacheUse,
    /// Time taken to compile or load from the cache.
    pub load_time: Duration,
}

impl LoadedComponent {
    fn engine(&self) -> &Engine {
        &self.runtime.engine
    }

    fn metered(&self) -> bool {
        self.runtime.metered
    }

    /// The `sluice:activity` version it was built against ("0.2.0", "0.1.0").
    pub fn contract(&self) -> &'static str {
        self.pre.version()
    }

    /// Runs one attempt in a fresh instance; never panics on guest
    /// misbehaviour: every failure is in the report.
    pub async fn run(&self, req: AttemptRequest) -> AttemptReport {
        attempt::run(self, req).await.0
    }

    /// Like `run`, with the instance's teardown handed back to be dropped
    /// after the report has gone on its way.
    pub async fn run_then_teardown(&self, req: AttemptRequest) -> (AttemptReport, Teardown) {
        attempt::run(self, req).await
    }
}
