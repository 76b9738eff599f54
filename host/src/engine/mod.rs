//! The durable activity engine: accepts executions, dispatches their
//! attempts to WASM worker slots (or external pollers), enforces timeouts
//! with durable timers, and records every transition in the store before
//! acting on it or telling anyone.

mod attempt;
mod dispatch;
mod error;
mod events;
mod mutate;
mod requests;
mod timer;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, broadcast, watch};

use crate::activity::{Millis, RetryPolicy};
use crate::config::{ActivityConfig, Config};
use crate::sandbox::{AttemptControl, InterruptReason, LoadedComponent, Sandbox, SandboxConfig};
use crate::store::Store;
use crate::token::TokenSigner;

pub use error::EngineError;
pub use events::{EngineEvent, EventKind};
pub use requests::{Description, StartRequest, StartResponse, Target};
pub use worker::{EXTERNAL_PREFIX, PolledTask};

/// The time source; the state machine itself is pure, the engine reads
/// the clock once per operation.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        crate::util::now_ms()
    }
}

/// Idle warm instances kept per type that reuses instances and sets no `slots`.
const DEFAULT_WARM_IDLE: usize = 16;

/// A configured activity type, ready to run.
struct ActivityType {
    config: ActivityConfig,
    /// The WASI grants, parsed once.
    grants: crate::sandbox::Grants,
    component: Arc<LoadedComponent>,
    /// Per-type cap on concurrent attempts on this host.
    slots: Option<Arc<Semaphore>>,
    /// Idle instances kept for the next attempts, when the type reuses them.
    warm: Option<Arc<crate::sandbox::WarmPool>>,
}

/// A task queue this host serves with WASM workers.
struct Queue {
    name: String,
    slots: Arc<Semaphore>,
    slots_total: usize,
    /// Types this host runs from the queue.
    types: Vec<String>,
    /// Dispatches per second; `Some(0.0)` pauses the queue.
    rate_limit: Option<f64>,
}

/// An attempt running in this host's sandbox.
struct Running {
    attempt: u32,
    control: Arc<AttemptControl>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    /// Owns the engines the loaded components run on.
    _sandbox: Sandbox,
    clock: Arc<dyn Clock>,
    host_id: String,
    /// Worker id of this host's WASM workers; recovery looks for it.
    worker_id: String,
    max_payload: usize,
    types: HashMap<String, ActivityType>,
    queues: Vec<Arc<Queue>>,
    running: Mutex<HashMap<String, Running>>,
    signer: TokenSigner,
    events: broadcast::Sender<EngineEvent>,
    /// Wakes whoever waits for work on a queue (dispatcher, pollers).
    queue_wake: Mutex<HashMap<String, Arc<Notify>>>,
    timer_wake: Notify,
    /// The deadline the timer loop sleeps until.
    timer_next: AtomicU64,
    shutdown: watch::Sender<bool>,
    stats: Stats,
}

/// Counters since the engine started, for benchmarks and operators.
#[derive(Debug, Default)]
pub struct Stats {
    /// Executions closed as completed.
    pub completed: AtomicU64,
    /// Attempts that returned pending.
    pub pending_async: AtomicU64,
}

/// Name of the queue only this host serves (every configured type runs on
/// it), so follow-up activities can be sent to the same host.
pub fn host_queue(host_id: &str) -> String {
    format!("@{host_id}")
}

impl Engine {
    /// Loads every configured component, recovers attempts a previous run
    /// of this host left behind, and starts the timer and dispatchers.
    pub async fn start(config: &Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Engine>> {
        let sandbox = Sandbox::new(SandboxConfig {
            allocation: crate::sandbox::Allocation::Pooling { instances: config.sandbox.pool_instances },
            cache_dir: config.sandbox.cache_dir.clone().or_else(crate::sandbox::ComponentCache::default_dir),
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
            let slots = a.slots.map(|n| Arc::new(Semaphore::new(n as usize)));
            let warm = a
                .reuse_instances
                .then(|| Arc::new(crate::sandbox::WarmPool::new(a.slots.map_or(DEFAULT_WARM_IDLE, |s| s as usize))));
            types.insert(name.clone(), ActivityType { config: a.clone(), grants, component, slots, warm });
        }
        let host_id = config.host_id();
        let mut served: HashMap<String, Vec<String>> = HashMap::new();
        for (name, a) in &config.activities {
            for q in a.queues.iter().cloned().chain([host_queue(&host_id)]) {
                served.entry(q).or_default().push(name.clone());
            }
        }
        let queues = served
            .into_iter()
            .map(|(name, types)| {
                let qc = config.queues.get(&name).cloned().unwrap_or_default();
                Arc::new(Queue {
                    slots: Arc::new(Semaphore::new(qc.slots as usize)),
                    slots_total: qc.slots as usize,
                    name,
                    types,
                    rate_limit: qc.rate_limit,
                })
            })
            .collect();
        let signer = TokenSigner::new(store.secret().await?);
        let engine = Arc::new(Engine {
            store,
            _sandbox: sandbox,
            clock,
            worker_id: format!("{host_id}/wasm"),
            host_id,
            max_payload: config.server.max_payload.as_u64() as usize,
            types,
            queues,
            running: Mutex::new(HashMap::new()),
            signer,
            events: broadcast::channel(4096).0,
            queue_wake: Mutex::new(HashMap::new()),
            timer_wake: Notify::new(),
            timer_next: AtomicU64::new(u64::MAX),
            shutdown: watch::channel(false).0,
            stats: Stats::default(),
        });
        engine.recover().await?;
        tokio::spawn(timer::run(engine.clone()));
        for q in &engine.queues {
            tokio::spawn(dispatch::run(engine.clone(), q.clone()));
        }
        Ok(engine)
    }

    /// Attempts this host was running when it died failed; retry them per
    /// policy (pending-async ones keep waiting).
    async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        let orphans = self.store.started_by(&self.worker_id).await?;
        let count = orphans.len();
        for orphan in orphans {
            let (activity_id, run_id) = (orphan.value.activity_id.clone(), orphan.value.run_id.clone());
            let result = self
                .mutate(&activity_id, Some(&run_id), Some(orphan), |e, now| {
                    e.host_lost(now).ok_or_else(|| crate::activity::Reject::NotStarted {
                        activity_id: e.activity_id.clone(),
                        status: e.status,
                    })
                })
                .await;
            if let Err(e) = result {
                tracing::debug!(%activity_id, "recovery left it as it was: {e}");
            }
        }
        if count > 0 {
            tracing::info!("recovered {count} attempts left running by a previous run of this host");
        }
        Ok(())
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Receives every committed transition, progress and heartbeat.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// (free slots, types) of a queue this host runs WASM workers for.
    pub fn served_queue(&self, name: &str) -> Option<(usize, Vec<String>)> {
        self.queues.iter().find(|q| q.name == name).map(|q| (q.slots.available_permits(), q.types.clone()))
    }

    fn queue_notify(&self, queue: &str) -> Arc<Notify> {
        self.queue_wake.lock().unwrap().entry(queue.to_string()).or_default().clone()
    }

    /// Stops dispatching, gives running attempts `grace` to finish, then
    /// interrupts the rest (they are retried when the host starts again).
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.running.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for r in self.running.lock().unwrap().values() {
            r.control.interrupt(InterruptReason::Shutdown);
        }
    }

    fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn type_defaults(&self, activity_type: &str) -> Option<&ActivityConfig> {
        self.types.get(activity_type).map(|t| &t.config)
    }

    /// The retry policy of a type (its config, else the defaults).
    pub fn retry_defaults(&self, activity_type: &str) -> RetryPolicy {
        self.type_defaults(activity_type).map(|c| c.retry.policy()).unwrap_or_default()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
