//! Who runs an attempt. The engine claims, times and records attempts; an
//! [`AttemptRunner`] executes them. [`WasmRunner`] runs each type's
//! component in the sandbox; tests drive the real engine with a scripted
//! runner instead, without WASM.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
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
    pub task_token: String,
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

    /// The component behind `activity_type`, for operators: (path, content hash).
    fn component(&self, activity_type: &str) -> Option<(String, String)>;
}

/// Idle warm instances kept per type that reuses instances and sets no `slots`.
const DEFAULT_WARM_IDLE: usize = 16;

/// Runs attempts as WASM components in the sandbox.
pub struct WasmRunner {
    /// Owns the engines the loaded components run on.
    _sandbox: Sandbox,
    /// Where guests run, apart from the control plane.
    threads: Arc<GuestThreads>,
    types: HashMap<String, WasmType>,
    max_payload: usize,
}

struct WasmType {
    config: ActivityConfig,
    /// The WASI grants, parsed once.
    grants: Grants,
    component: Arc<LoadedComponent>,
    /// Idle instances kept for the next attempts, when the type reuses them.
    warm: Option<Arc<WarmPool>>,
}

impl WasmRunner {
    /// Loads (compiles or takes from the cache) every configured component.
    pub fn load(config: &Config) -> anyhow::Result<WasmRunner> {
        let sandbox = Sandbox::new(SandboxConfig {
            allocation: Allocation::Pooling { instances: config.sandbox.pool_instances },
            cache_dir: config.sandbox.cache_dir.clone().or_else(ComponentCache::default_dir),
            max_component_size: config.sandbox.max_component_size.as_u64() as usize,
        })?;
        let mut types = HashMap::new();
        for (name, a) in &config.activities {
            let grants = a.grants();
            for dir in &grants.dirs {
                if !dir.host.is_dir() {
                    anyhow::bail!(
                        "activity type {name}: cannot grant directory {}: it is not a directory",
                        dir.host.display()
                    );
                }
            }
            let component = sandbox
                .load(&a.component, a.fuel.is_some())
                .map_err(|e| anyhow::anyhow!("activity type {name}: {e}"))?;
            tracing::info!(activity_type = %name, cache = ?component.cache, "loaded {}", a.component.display());
            let warm =
                a.reuse_instances.then(|| Arc::new(WarmPool::new(a.slots.map_or(DEFAULT_WARM_IDLE, |s| s as usize))));
            types.insert(name.clone(), WasmType { config: a.clone(), grants, component, warm });
        }
        let threads = Arc::new(GuestThreads::new(config.sandbox.guest_threads)?);
        Ok(WasmRunner { _sandbox: sandbox, threads, types, max_payload: config.server.max_payload.as_u64() as usize })
    }
}

impl AttemptRunner for WasmRunner {
    fn run(&self, call: AttemptCall) -> RunFuture {
        let Some(ty) = self.types.get(&call.info.activity_type) else {
            let message = format!("no component for activity type {}", call.info.activity_type);
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
            warm: ty.warm.clone(),
        };
        let component = ty.component.clone();
        let threads = self.threads.clone();
        // The caller's span (the attempt's) goes along to the guest thread.
        let span = tracing::Span::current();
        Box::pin(async move {
            let work = tracing::Instrument::instrument(async move { component.run(req).await }, span);
            let report = threads.run(work).await;
            // No details: the execution keeps the ones it has.
            report.unwrap_or_else(|| AttemptReport::host_failure("the guest threads stopped".into(), None))
        })
    }

    fn component(&self, activity_type: &str) -> Option<(String, String)> {
        let ty = self.types.get(activity_type)?;
        Some((ty.config.component.display().to_string(), ty.component.hash.clone()))
    }
}
