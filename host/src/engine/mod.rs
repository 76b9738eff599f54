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
mod error;
mod events;
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
mod wake;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast, watch};

use crate::activity::{Execution, Millis, RetryPolicy};
use crate::config::{ActivityConfig, Config};
use crate::sandbox::InterruptReason;
use crate::store::Store;
use crate::token::{TaskToken, TokenSigner};

pub use batch::{BatchOp, BatchReport, MAX_BATCH};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use closes::{CloseFilter, CloseWatch, MAX_LAG, MAX_WATCHED_IDS};
pub use error::EngineError;
pub use events::{EngineEvent, EventKind};
pub use operate::{MAX_JITTER, OptionsChange};
pub use poll::{EXTERNAL_PREFIX, PolledTask};
pub use requests::{Description, HeartbeatAnswer, StartRequest, StartResponse, Target};
pub use runner::{AttemptCall, AttemptRunner, RunFuture, WasmRunner};

use running::RunningAttempts;
use wake::Wakeups;

/// A configured activity type.
struct ActivityType {
    config: ActivityConfig,
    /// Per-type cap on concurrent attempts on this host.
    slots: Option<Arc<Semaphore>>,
}

/// A task queue this host serves with its own workers.
struct Queue {
    name: String,
    slots: Arc<Semaphore>,
    slots_total: usize,
    /// Types this host runs from the queue.
    types: Vec<String>,
    /// Dispatches per second; `Some(0.0)` pauses the queue.
    rate_limit: Option<f64>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    runner: Arc<dyn AttemptRunner>,
    clock: Arc<dyn Clock>,
    host_id: String,
    /// Worker id of this host's own workers; recovery looks for it.
    worker_id: String,
    max_payload: usize,
    types: HashMap<String, ActivityType>,
    queues: Vec<Arc<Queue>>,
    running: RunningAttempts,
    signer: TokenSigner,
    events: broadcast::Sender<EngineEvent>,
    closes: closes::Closes,
    wake: Wakeups,
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
    /// Loads every configured component and starts the engine on them
    /// (see [`Engine::with_runner`]).
    pub async fn start(config: &Config, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Engine>> {
        let runner = Arc::new(WasmRunner::load(config)?);
        Engine::with_runner(config, store, clock, runner).await
    }

    /// Recovers attempts a previous run of this host left behind, then
    /// starts the timer loop and a dispatcher per served queue, whose
    /// attempts `runner` runs.
    pub async fn with_runner(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        runner: Arc<dyn AttemptRunner>,
    ) -> anyhow::Result<Arc<Engine>> {
        let types = config
            .activities
            .iter()
            .map(|(name, a)| {
                let slots = a.slots.map(|n| Arc::new(Semaphore::new(n as usize)));
                (name.clone(), ActivityType { config: a.clone(), slots })
            })
            .collect();
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
            runner,
            clock,
            worker_id: format!("{host_id}/wasm"),
            host_id,
            max_payload: config.server.max_payload.as_u64() as usize,
            types,
            queues,
            running: RunningAttempts::default(),
            signer,
            events: broadcast::channel(4096).0,
            closes: closes::Closes::default(),
            wake: Wakeups::default(),
            shutdown: watch::channel(false).0,
            stats: Stats::default(),
        });
        engine.recover().await?;
        tokio::spawn(timer::run(engine.clone()));
        tokio::spawn(retention::run(engine.clone(), config.store.retention));
        for q in &engine.queues {
            tokio::spawn(dispatch::run(engine.clone(), q.clone()));
        }
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

    /// Receives every committed transition, progress and heartbeat.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// (free slots, types) of a queue this host runs workers for.
    pub fn served_queue(&self, name: &str) -> Option<(usize, Vec<String>)> {
        self.queues.iter().find(|q| q.name == name).map(|q| (q.slots.available_permits(), q.types.clone()))
    }

    /// Stops dispatching, gives running attempts `grace` to finish, then
    /// interrupts the rest (they are retried when the host starts again).
    pub async fn shutdown(&self, grace: Duration) {
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

    fn type_defaults(&self, activity_type: &str) -> Option<&ActivityConfig> {
        self.types.get(activity_type).map(|t| &t.config)
    }

    /// The retry policy of a type (its config, else the defaults).
    pub fn retry_defaults(&self, activity_type: &str) -> RetryPolicy {
        self.type_defaults(activity_type).map(|c| c.retry.policy()).unwrap_or_default()
    }

    /// The signed task token naming the current attempt of `e`.
    fn task_token(&self, e: &Execution) -> String {
        self.signer.sign(&TaskToken {
            activity_id: e.activity_id.clone(),
            run_id: e.run_id.clone(),
            attempt: e.attempt,
        })
    }

    /// The current component version of each type, for claims.
    fn current_versions(&self) -> crate::store::CurrentVersions {
        Default::default()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
