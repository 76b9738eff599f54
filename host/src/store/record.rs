//! How an execution is laid out in a store row: what is written once at
//! start (ids, type, queue, priority and request id as columns, the input as
//! bytes, the options as JSON) and what each transition rewrites (the state,
//! a small JSON document). Heartbeats and transitions so never pay for the
//! input, however large.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::activity::{
    Execution, Failure, Fairness, Millis, Progress, ResetRequest, RetryPolicy, Status, TimeoutType, Timeouts,
    TraceContext,
};
use crate::payload::Payload;

/// The options an execution was started with.
#[derive(Debug, Serialize, Deserialize)]
pub struct Options {
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub cancel_grace: Duration,
    pub scheduled_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Fairness>,
}

/// The columns written once, besides the options.
#[derive(Debug)]
pub struct Fixed {
    pub activity_id: String,
    pub run_id: String,
    pub activity_type: String,
    pub task_queue: String,
    pub priority: u8,
    pub request_id: Option<String>,
    pub input: Payload,
}

/// What transitions change, as written.
#[derive(Serialize)]
struct StateRef<'a> {
    status: Status,
    attempt: u32,
    attempt_scheduled_at: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closed_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: &'a Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pending_async: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_heartbeat_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat_details: &'a Option<Payload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_requested_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: &'a Option<Progress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_failure: &'a Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: &'a Option<Payload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_type: Option<TimeoutType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: &'a Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    paused: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_pending: Option<ResetRequest>,
    #[serde(skip_serializing_if = "is_zero")]
    attempts_before_reset: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rearmed_at: Option<Millis>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What transitions change, as read back.
#[derive(Deserialize)]
struct State {
    status: Status,
    attempt: u32,
    attempt_scheduled_at: Millis,
    #[serde(default)]
    started_at: Option<Millis>,
    #[serde(default)]
    closed_at: Option<Millis>,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    pending_async: bool,
    #[serde(default)]
    last_heartbeat_at: Option<Millis>,
    #[serde(default)]
    heartbeat_details: Option<Payload>,
    #[serde(default)]
    cancel_requested_at: Option<Millis>,
    #[serde(default)]
    progress: Option<Progress>,
    #[serde(default)]
    last_failure: Option<Failure>,
    #[serde(default)]
    result: Option<Payload>,
    #[serde(default)]
    timeout_type: Option<TimeoutType>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    reset_pending: Option<ResetRequest>,
    #[serde(default)]
    attempts_before_reset: u32,
    #[serde(default)]
    rearmed_at: Option<Millis>,
}

/// The state JSON of `e`: everything a transition may change.
pub fn state_json(e: &Execution) -> Result<String, StoreError> {
    // Destructured in full, so a new field cannot be forgotten here.
    let Execution {
        activity_id: _,
        run_id: _,
        activity_type: _,
        task_queue: _,
        input: _,
        priority: _,
        request_id: _,
        timeouts: _,
        retry: _,
        cancel_grace: _,
        scheduled_at: _,
        pinned_version: _,
        trace: _,
        fairness: _,
        status,
        attempt,
        attempt_scheduled_at,
        started_at,
        closed_at,
        worker,
        pending_async,
        last_heartbeat_at,
        heartbeat_details,
        cancel_requested_at,
        progress,
        last_failure,
        result,
        timeout_type,
        version,
        paused,
        reset_pending,
        attempts_before_reset,
        rearmed_at,
    } = e;
    Ok(serde_json::to_string(&StateRef {
        status: *status,
        attempt: *attempt,
        attempt_scheduled_at: *attempt_scheduled_at,
        started_at: *started_at,
        closed_at: *closed_at,
        worker,
        pending_async: *pending_async,
        last_heartbeat_at: *last_heartbeat_at,
        heartbeat_details,
        cancel_requested_at: *cancel_requested_at,
        progress,
        last_failure,
        result,
        timeout_type: *timeout_type,
        version,
        paused: *paused,
        reset_pending: *reset_pending,
        attempts_before_reset: *attempts_before_reset,
        rearmed_at: *rearmed_at,
    })?)
}

/// The options JSON of `e`, written once.
pub fn options_json(e: &Execution) -> Result<String, StoreError> {
    Ok(serde_json::to_string(&Options {
        timeouts: e.timeouts.clone(),
        retry: e.retry.clone(),
        cancel_grace: e.cancel_grace,
        scheduled_at: e.scheduled_at,
        pinned_version: e.pinned_version.clone(),
        trace: e.trace.clone(),
        fairness: e.fairness.clone(),
    })?)
}

/// An execution from its fixed columns, options JSON and state JSON.
pub fn assemble(fixed: Fixed, options: &str, state: &str) -> Result<Execution, StoreError> {
    let Options { timeouts, retry, cancel_grace, scheduled_at, pinned_version, trace, fairness } =
        serde_json::from_str(options)?;
    let State {
        status,
        attempt,
        attempt_scheduled_at,
        started_at,
        closed_at,
        worker,
        pending_async,
        last_heartbeat_at,
        heartbeat_details,
        cancel_requested_at,
        progress,
        last_failure,
        result,
        timeout_type,
        version,
        paused,
        reset_pending,
        attempts_before_reset,
        rearmed_at,
    } = serde_json::from_str(state)?;
    let Fixed { activity_id, run_id, activity_type, task_queue, priority, request_id, input } = fixed;
    Ok(Execution {
        activity_id,
        run_id,
        activity_type,
        task_queue,
        input,
        priority,
        request_id,
        timeouts,
        retry,
        cancel_grace,
        scheduled_at,
        pinned_version,
        trace,
        fairness,
        status,
        attempt,
        attempt_scheduled_at,
        started_at,
        closed_at,
        worker,
        pending_async,
        last_heartbeat_at,
        heartbeat_details,
        cancel_requested_at,
        progress,
        last_failure,
        result,
        timeout_type,
        version,
        paused,
        reset_pending,
        attempts_before_reset,
        rearmed_at,
    })
}
