//! The durable activity engine: accepts executions, dispatches their
//! attempts to worker slots (or external pollers), enforces timeouts with
//! durable timers, and records every transition in the store before acting
//! on it or telling anyone.

mod attempt;
mod batch;
mod claim;
mod clock;
mod closes;
mod dispatch;
mod eager;
mod error;
mod events;
mod hints;
mod hosts;
mod logbook;
mod mutate;
mod operate;
mod operations;
mod poll;
mod queries;
mod recovery;
mod requests;
mod retention;
mod runner;
mod running;
#[cfg(test)]
mod tests;
mod timer;
mod types;
mod wake;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast, watch};

use crate::activity::{Execution, Millis, RetryPolicy};
use crate::config::Config;
use crate::sandbox::InterruptReason;
use crate::store::Store;
use crate::token::{AttemptToken, TaskToken, TokenSigner};

pub use batch::{BatchOp, BatchReport, MAX_BATCH};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use closes::{CloseFilter, CloseWatch, MAX_LAG, MAX_WATCHED_IDS};
pub use error::EngineError;
pub use events::{EngineEvent, EventKind};
pub use operate::{MAX_JITTER, OptionsChange};
pub use poll::{EXTERNAL_PREFIX, PolledTask};
pub use requests::{Description, HeartbeatAnswer, StartRequest, StartResponse, Target};
pub use runner::{AttemptCall, AttemptRunner, RunFuture, WasmRunner};
pub use types::{Deploy, apply_sets, components_dir};

use running::RunningAttempts;
use wake::Wakeups;

/// A task queue this host serves with its own workers.
struct Queue {
    name: String,
    slots: Arc<Semaphore>,
    slots_total: usize,
    /// Types this host runs from the queue (deploys change them).
    types: std::sync::RwLock<Vec<String>>,
    /// Dispatches per second; `Some(0.0)` pauses the queue.
    rate_limit: Option<f64>,
    /// Set while the dispatcher waits with nothing to claim: a start may
    /// then take a free slot itself (`eager`).
    idle: std::sync::atomic::AtomicBool,
}

pub struct Engine {
    store: Arc<dyn Store>,
    runner: Arc<dyn AttemptRunner>,
    clock: Arc<dyn Clock>,
    host_id: String,
    /// Worker id of this host's own workers; recovery looks for it.
    worker_id: String,
    /// How long this host's lease in the store lasts unrenewed.
    lease: Duration,
    max_payload: usize,
    registry: types::Registry,
    /// Where deployed components are kept, named by their hash.
    components: std::path::PathBuf,
    /// Largest component accepted.
    max_component: usize,
    /// Type changes one at a time: each is committed, then installed.
    type_changes: tokio::sync::Mutex<()>,
    running: RunningAttempts,
    signer: Arc<TokenSigner>,
    events: broadcast::Sender<EngineEvent>,
    closes: closes::Closes,
    wake: Wakeups,
    shutdown: watch::Sender<bool>,
    stats: Stats,
    /// Trace export, when configured.
    tracer: Option<crate::traces::Tracer>,
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
    /// Starts the engine with the WASM sandbox as its runner (see
    /// [`Engine::with_runner`]).
    pub async fn start(config: &Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Engine>> {
        let runner = Arc::new(WasmRunner::new(config)?);
        Engine::with_runner(config, store, clock, runner).await
    }

    /// Applies `sluice.toml`'s types to the stored ones and installs them
    /// all, recovers attempts a previous run of this host left behind, then
    /// starts the timer loop and a dispatcher per served queue, whose
    /// attempts `runner` runs.
    pub async fn with_runner(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        runner: Arc<dyn AttemptRunner>,
    ) -> anyhow::Result<Arc<Engine>> {
        let host_id = config.host_id();
        let signer = Arc::new(TokenSigner::new(store.secret().await?));
        let engine = Arc::new(Engine {
            store,
            runner,
            clock,
            worker_id: recovery::worker_of(&host_id),
            lease: config.store.host_lease,
            host_id,
            max_payload: config.server.max_payload.as_u64() as usize,
            registry: types::Registry::new(config),
            components: components_dir(config),
            max_component: config.sandbox.max_component_size.as_u64() as usize,
            type_changes: tokio::sync::Mutex::new(()),
            running: RunningAttempts::default(),
            signer,
            events: broadcast::channel(4096).0,
            closes: closes::Closes::default(),
            wake: Wakeups::default(),
            shutdown: watch::channel(false).0,
            stats: Stats::default(),
            tracer: match &config.traces.otlp_endpoint {
                Some(endpoint) => Some(crate::traces::Tracer::spawn(
                    endpoint,
                    config.traces.service_name.clone().unwrap_or_else(|| "sluice".into()),
                )?),
                None => None,
            },
        });
        engine.register().await?;
        engine.load_types(config).await?;
        engine.recover().await?;
        tokio::spawn(hosts::run(engine.clone()));
        if let Some(hints) = engine.store.hints() {
            tokio::spawn(hints::run(engine.clone(), hints));
        }
        tokio::spawn(timer::run(engine.clone()));
        tokio::spawn(retention::run(engine.clone(), config.store.retention));
        Ok(engine)
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

    /// Largest component a deploy may upload.
    pub fn max_component(&self) -> usize {
        self.max_component
    }

    /// Where uploads are written before they are deployed (the same file
    /// system as the stored components, so they are moved, not copied).
    pub fn upload_path(&self) -> std::path::PathBuf {
        self.components.join(format!(".upload-{}", uuid::Uuid::now_v7()))
    }

    /// Receives every committed transition, progress and heartbeat.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// (free slots, types) of a queue this host runs workers for.
    pub fn served_queue(&self, name: &str) -> Option<(usize, Vec<String>)> {
        self.registry
            .queue(name)
            .map(|q| (q.slots.available_permits(), q.types.read().expect("queue types lock").clone()))
    }

    /// A served queue's rate limit (dispatches per second; 0 = paused).
    pub fn queue_rate(&self, name: &str) -> Option<f64> {
        self.registry.queue(name).and_then(|q| q.rate_limit)
    }

    /// The task token of `e`'s current attempt.
    pub fn task_token_of(&self, e: &Execution) -> String {
        self.task_token(e)
    }

    /// The activity a genuine task token names.
    pub fn token_activity(&self, token: &str) -> Option<String> {
        self.signer.verify(token).ok().map(|t| t.activity_id)
    }

    /// (name, free slots) of every queue this host serves.
    pub fn served_queues(&self) -> Vec<(String, usize)> {
        self.registry
            .queue_names()
            .into_iter()
            .filter_map(|n| self.served_queue(&n).map(|(free, _)| (n, free)))
            .collect()
    }

    /// Stops dispatching, gives running attempts `grace` to finish, then
    /// interrupts the rest and records them as lost (`HostLost`: retried
    /// per policy, by any host), and ends this host's lease.
    pub async fn shutdown(self: &Arc<Self>, grace: Duration) {
        self.halt(grace).await;
        self.leave().await;
    }

    /// Stops dispatching, gives running attempts `grace`, then interrupts
    /// the rest, recording nothing (what a crash leaves behind).
    async fn halt(&self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.running.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.running.interrupt_all(InterruptReason::Shutdown);
    }

    fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The retry policy of a type (its config, else the defaults).
    pub fn retry_defaults(&self, activity_type: &str) -> RetryPolicy {
        self.registry.get(activity_type).map(|t| t.config.retry.policy()).unwrap_or_default()
    }

    /// The signed task token naming the current attempt of `e`.
    fn task_token(&self, e: &Execution) -> String {
        self.attempt_token(e).get()
    }

    /// The task token of `e`'s current attempt, signed when asked for.
    fn attempt_token(&self, e: &Execution) -> AttemptToken {
        let token = TaskToken { activity_id: e.activity_id.clone(), run_id: e.run_id.clone(), attempt: e.attempt };
        AttemptToken::Unsigned { signer: self.signer.clone(), token }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
