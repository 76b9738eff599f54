//! Who runs an attempt. The engine claims, times and records attempts; an
//! [`AttemptRunner`] executes them. [`WasmRunner`] runs each type's
//! component in the sandbox; tests drive the real engine with a scripted
//! runner instead, without WASM.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::config::{ActivityConfig, Config};
use crate::payload::Payload;
use crate::sandbox::{
    ActivityInfo, Allocation, AttemptControl, AttemptEvent, AttemptReport, AttemptRequest, ComponentCache, Grants,
    GuestThreads, LoadedComponent, Sandbox, SandboxConfig, WarmPool,
};

/// One attempt to run, as the engine hands it over.
pub struct AttemptCall {
    pub info: ActivityInfo,
    pub input: Payload,
    /// The latest heartbeat details of earlier attempts, if any.
    pub last_heartbeat: Option<Payload>,
    pub task_token: crate::token::AttemptToken,
    /// The component version to run (a label of the type's).
    pub version: Option<String>,
    /// Time left until the attempt's deadline; the runner stops it then.
    pub timeout: Option<Duration>,
    /// Cancel requests and interrupts from the engine.
    pub control: Arc<AttemptControl>,
    /// Heartbeats, progress and logs, as they happen.
    pub events: UnboundedSender<AttemptEvent>,
}

pub type RunFuture = Pin<Box<dyn Future<Output = AttemptReport> + Send + 'static>>;

pub trait AttemptRunner: Send + Sync + 'static {
    /// Runs one attempt to its end. Never fails: every failure is in the
    /// report.
    fn run(&self, call: AttemptCall) -> RunFuture;

    /// Checks that `path` is a runnable component (compiling it, so a later
    /// install is quick): its blake3 hash (hex) and size, or why not.
    fn check(&self, path: &Path) -> Result<(String, u64), String>;

    /// Makes the attempts of type `name` run with `config`, each on its
    /// version's component (label → file). Replaces what was installed.
    fn install(&self, name: &str, config: &ActivityConfig, versions: &[(String, PathBuf)]) -> Result<(), String>;
}

/// Idle warm instances kept per type that reuses instances and sets no `slots`.
const DEFAULT_WARM_IDLE: usize = 16;

/// Runs attempts as WASM components in the sandbox.
pub struct WasmRunner {
    sandbox: Sandbox,
    /// Where guests run, apart from the control plane.
    threads: Arc<GuestThreads>,
    types: RwLock<HashMap<String, Arc<WasmType>>>,
    max_payload: usize,
}

struct WasmType {
    config: ActivityConfig,
    /// The WASI grants, parsed once.
    grants: Grants,
    versions: HashMap<String, WasmVersion>,
}

struct WasmVersion {
    component: Arc<LoadedComponent>,
    /// Idle instances kept for the next attempts, when the type reuses them.
    warm: Option<Arc<WarmPool>>,
}

impl WasmRunner {
    /// The sandbox and guest threads, with no type installed yet.
    pub fn new(config: &Config) -> anyhow::Result<WasmRunner> {
        let sandbox = Sandbox::new(SandboxConfig {
            allocation: Allocation::Pooling { instances: config.sandbox.pool_instances },
            cache_dir: config.sandbox.cache_dir.clone().or_else(ComponentCache::default_dir),
            max_component_size: config.sandbox.max_component_size.as_u64() as usize,
        })?;
        let threads = Arc::new(GuestThreads::new(config.sandbox.guest_threads)?);
        Ok(WasmRunner {
            sandbox,
            threads,
            types: RwLock::default(),
            max_payload: config.server.max_payload.as_u64() as usize,
        })
    }
}

impl AttemptRunner for WasmRunner {
    fn run(&self, call: AttemptCall) -> RunFuture {
        let ty = self.types.read().expect("types lock").get(&call.info.activity_type).cloned();
        let version = ty.as_ref().and_then(|t| t.versions.get(call.version.as_deref().unwrap_or_default()));
        let (Some(ty), Some(version)) = (&ty, version) else {
            let message = format!(
                "no component for activity type {} version {}",
                call.info.activity_type,
                call.version.as_deref().unwrap_or("(none)")
            );
            return Box::pin(std::future::ready(AttemptReport::host_failure(message, call.last_heartbeat)));
        };
        let req = AttemptRequest {
            info: call.info,
            input: call.input,
            last_heartbeat: call.last_heartbeat,
            task_token: call.task_token,
            limits: ty.config.limits(self.max_payload, call.timeout),
            grants: ty.grants.clone(),
            control: call.control,
            events: Some(call.events),
            warm: version.warm.clone(),
        };
        let component = version.component.clone();
        let threads = self.threads.clone();
        // The caller's span (the attempt's) goes along to the guest thread.
        let span = tracing::Span::current();
        // The attempt's future is kilobytes: boxed once here, it is not
        // copied again on its way to a guest thread.
        let work =
            Box::pin(tracing::Instrument::instrument(async move { component.run_then_teardown(req).await }, span));
        Box::pin(async move {
            let report = threads.run_then_drop(work).await;
            // No details: the execution keeps the ones it has.
            report.unwrap_or_else(|| AttemptReport::host_failure("the guest threads stopped".into(), None))
        })
    }

    fn check(&self, path: &Path) -> Result<(String, u64), String> {
        let component = self.sandbox.load(path, false).map_err(|e| e.to_string())?;
        let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        Ok((component.hash.clone(), size))
    }

    fn install(&self, name: &str, config: &ActivityConfig, versions: &[(String, PathBuf)]) -> Result<(), String> {
        let grants = config.grants();
        for dir in &grants.dirs {
            if !dir.host.is_dir() {
                return Err(format!("cannot grant directory {}: it is not a directory", dir.host.display()));
            }
        }
        let old = self.types.read().expect("types lock").get(name).cloned();
        let mut loaded = HashMap::new();
        for (label, path) in versions {
            let component =
                self.sandbox.load(path, config.fuel.is_some()).map_err(|e| format!("version {label}: {e}"))?;
            tracing::info!(activity_type = %name, version = %label, cache = ?component.cache, "loaded {}", path.display());
            // Warm instances of a version outlive a settings change that keeps reusing them.
            let kept = old.as_ref().and_then(|o| o.versions.get(label)).and_then(|v| v.warm.clone());
            let warm = config.reuse_instances.then(|| {
                kept.unwrap_or_else(|| Arc::new(WarmPool::new(config.slots.map_or(DEFAULT_WARM_IDLE, |s| s as usize))))
            });
            loaded.insert(label.clone(), WasmVersion { component, warm });
        }
        let ty = WasmType { config: config.clone(), grants, versions: loaded };
        self.types.write().expect("types lock").insert(name.to_string(), Arc::new(ty));
        Ok(())
    }
}
