//! Prometheus metrics, one set per process (`metrics()`), rendered at
//! `/metrics` in the text exposition format. Counters of executions follow
//! the committed transitions (counted in `Engine::act`, the one place every
//! transition passes); queue gauges are read from the store at scrape time.
//! Names follow Prometheus conventions: `_total`, `_seconds`, base units.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::activity::{Change, Execution, Millis, Status};
use crate::engine::Engine;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeQueue {
    pub activity_type: String,
    pub task_queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Closed {
    pub activity_type: String,
    pub task_queue: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Failed {
    pub activity_type: String,
    /// application, sandbox, timeout, host-lost, cancelled, terminated, reset.
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub activity_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    task_queue: String,
}

fn seconds_buckets() -> Histogram {
    // 100 µs .. ~13 min.
    Histogram::new(exponential_buckets(0.0001, 2.5, 18))
}

/// Every metric this process keeps.
pub struct Metrics {
    registry: Registry,
    pub started: Family<TypeQueue, Counter>,
    pub closed: Family<Closed, Counter>,
    pub failures: Family<Failed, Counter>,
    pub attempts: Family<TypeQueue, Counter>,
    pub retries: Family<TypeQueue, Counter>,
    pub heartbeats: Family<TypeLabel, Counter>,
    pub schedule_to_start: Family<TypeQueue, Histogram, fn() -> Histogram>,
    pub attempt_duration: Family<TypeLabel, Histogram, fn() -> Histogram>,
    pub store_commit: Histogram,
    pub store_fsync: Histogram,
    pub instantiate: Histogram,
    pub warm_hits: Counter,
    pub warm_misses: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sluice");
        let m = Metrics {
            started: Family::default(),
            closed: Family::default(),
            failures: Family::default(),
            attempts: Family::default(),
            retries: Family::default(),
            heartbeats: Family::default(),
            schedule_to_start: Family::new_with_constructor(seconds_buckets),
            attempt_duration: Family::new_with_constructor(seconds_buckets),
            store_commit: seconds_buckets(),
            store_fsync: seconds_buckets(),
            instantiate: seconds_buckets(),
            warm_hits: Counter::default(),
            warm_misses: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("activities_started", "Executions scheduled", m.started.clone());
        registry.register("activities_closed", "Executions closed, by final status", m.closed.clone());
        registry.register("attempt_failures", "Failed attempts, by failure category", m.failures.clone());
        registry.register("attempts_started", "Attempts started (WASM and external workers)", m.attempts.clone());
        registry.register("retries", "Retries scheduled after a failed attempt", m.retries.clone());
        registry.register("heartbeats", "Heartbeats recorded", m.heartbeats.clone());
        registry.register(
            "schedule_to_start_seconds",
            "Time attempts waited in their queue before they started",
            m.schedule_to_start.clone(),
        );
        registry.register("attempt_duration_seconds", "Run time of WASM attempts", m.attempt_duration.clone());
        registry.register("store_commit_seconds", "Time of one store batch, BEGIN to COMMIT", m.store_commit.clone());
        registry.register("store_fsync_seconds", "Time of one fsync of the store's WAL", m.store_fsync.clone());
        registry.register(
            "sandbox_instantiate_seconds",
            "Time to instantiate a component for an attempt",
            m.instantiate.clone(),
        );
        registry.register("warm_pool_hits", "Attempts run in a warm instance", m.warm_hits.clone());
        registry.register(
            "warm_pool_misses",
            "Attempts of reusing types that found no warm instance",
            m.warm_misses.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a committed transition (`e` as it left the execution).
    pub fn transition(&self, e: &Execution, change: &Change, now: Millis) {
        let tq = || TypeQueue { activity_type: e.activity_type.clone(), task_queue: e.task_queue.clone() };
        let failed = |e: &Execution| {
            if let Some(f) = &e.last_failure {
                let labels = Failed { activity_type: e.activity_type.clone(), category: f.source.kind().to_string() };
                self.failures.get_or_create(&labels).inc();
            }
        };
        match change {
            Change::Scheduled => {
                self.started.get_or_create(&tq()).inc();
            }
            Change::Started { .. } => {
                self.attempts.get_or_create(&tq()).inc();
                let waited = now.saturating_sub(e.attempt_scheduled_at);
                self.schedule_to_start.get_or_create(&tq()).observe(waited as f64 / 1000.0);
            }
            Change::RetryScheduled { .. } => {
                self.retries.get_or_create(&tq()).inc();
                failed(e);
            }
            Change::Heartbeat { .. } => {
                self.heartbeats.get_or_create(&TypeLabel { activity_type: e.activity_type.clone() }).inc();
            }
            Change::Closed(status) => {
                if matches!(status, Status::Failed | Status::TimedOut) {
                    failed(e);
                }
                let labels = Closed {
                    activity_type: e.activity_type.clone(),
                    task_queue: e.task_queue.clone(),
                    status: status.as_str().to_string(),
                };
                self.closed.get_or_create(&labels).inc();
            }
            _ => {}
        }
    }

    /// A WASM attempt of `activity_type` ran for `took`.
    pub fn attempt_ran(&self, activity_type: &str, took: Duration) {
        let labels = TypeLabel { activity_type: activity_type.to_string() };
        self.attempt_duration.get_or_create(&labels).observe(took.as_secs_f64());
    }
}

/// The text exposition of every metric, with the queue gauges of the
/// queues this host serves read now.
pub async fn render(engine: &Engine) -> String {
    let mut gauges = Registry::with_prefix("sluice");
    let backlog = Family::<QueueLabel, Gauge>::default();
    let running = Family::<QueueLabel, Gauge>::default();
    let free = Family::<QueueLabel, Gauge>::default();
    for (name, free_slots) in engine.served_queues() {
        let label = QueueLabel { task_queue: name.clone() };
        free.get_or_create(&label).set(free_slots as i64);
        if let Ok(stats) = engine.queue_stats(&name, false).await {
            backlog.get_or_create(&label).set(stats.backlog as i64);
            running.get_or_create(&label).set(stats.running as i64);
        }
    }
    gauges.register("queue_backlog", "Attempts waiting in a queue (dispatchable or in backoff)", backlog);
    gauges.register("queue_running", "Attempts of a queue started and not closed", running);
    gauges.register("queue_free_slots", "Free worker slots of a queue on this host", free);
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut text, &metrics().registry);
    let _ = prometheus_client::encoding::text::encode_registry(&mut text, &gauges);
    let _ = prometheus_client::encoding::text::encode_eof(&mut text);
    text
}
