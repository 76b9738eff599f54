//! The engine's request and response types.

use std::time::Duration;

use crate::activity::HistoryEntry;
use crate::activity::{ConflictPolicy, Execution, RetryPolicy, ReusePolicy, Timeouts};
use crate::payload::Payload;
use crate::store::LogEntry;

/// A request to schedule an execution.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Generated when absent.
    pub activity_id: Option<String>,
    pub activity_type: String,
    /// Default: the type's first configured queue, else `default`.
    pub task_queue: Option<String>,
    pub input: Option<Payload>,
    /// Override the type's defaults field by field.
    pub timeouts: Timeouts,
    pub retry: Option<RetryPolicy>,
    /// 1 (first) ..= 5; default 3.
    pub priority: Option<u8>,
    /// Makes the start idempotent: the same request id returns the same run.
    pub request_id: Option<String>,
    pub conflict: ConflictPolicy,
    pub reuse: ReusePolicy,
    pub cancel_grace: Option<Duration>,
    /// Pin every attempt to this version of the type.
    pub version: Option<String>,
    /// The caller's W3C `traceparent`, continued by the execution's span.
    pub traceparent: Option<String>,
    /// Share the queue fairly with other keys (`None`: the default key).
    pub fairness_key: Option<String>,
    /// The key's weight, `Fairness::MIN_WEIGHT..=MAX_WEIGHT`; default 1.
    pub fairness_weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartResponse {
    pub activity_id: String,
    pub run_id: String,
    /// False when an existing run was returned.
    pub created: bool,
}

/// Which attempt a completion, failure or heartbeat is about.
#[derive(Debug, Clone)]
pub enum Target {
    /// A task token: names one attempt; stale after a retry.
    Token(String),
    /// The current attempt of the latest (or given) run of an id.
    Id { activity_id: String, run_id: Option<String> },
}

/// What a heartbeat's sender learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatAnswer {
    /// Cancellation was requested: stop and report cancelled.
    pub cancel_requested: bool,
    /// The execution is paused: the attempt may finish, or stop and fail
    /// (its retry then waits for the unpause).
    pub paused: bool,
    /// An operator reset the execution: this attempt no longer counts and
    /// the next one is scheduled.
    pub reset: bool,
}

/// Everything known about one execution.
#[derive(Debug, Clone)]
pub struct Description {
    pub execution: Execution,
    pub history: Vec<HistoryEntry>,
    /// A page of the logs, oldest first.
    pub logs: Vec<LogEntry>,
    /// The token of the next page of logs, if there is one.
    pub next_logs_page: Option<String>,
}
