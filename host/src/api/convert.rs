//! Conversions between the protobuf messages and the engine's types, with
//! input validation (bad values are INVALID_ARGUMENT).

use std::time::Duration;

use tonic::Status;

use super::pb;
use crate::activity::HistoryEntry;
use crate::activity::{self, ConflictPolicy, Execution, Failure, Millis, RetryPolicy, ReusePolicy, Timeouts};
use crate::engine::{EngineError, OptionsChange, PolledTask, Target};
use crate::payload::{JSON, Payload};
use crate::store::LogEntry;

pub fn status_of(e: EngineError) -> Status {
    match e {
        EngineError::Invalid(m) => Status::invalid_argument(m),
        EngineError::NotFound(m) => Status::not_found(m),
        EngineError::AlreadyExists(m) => Status::already_exists(m),
        EngineError::Precondition(m) => Status::failed_precondition(m),
        EngineError::TooLarge(m) => Status::resource_exhausted(m),
        EngineError::BadToken(m) => Status::permission_denied(m),
        EngineError::Internal(m) => Status::internal(m),
    }
}

/// A duration from the request: unset or zero is `None`; negative, badly
/// formed (nanos outside 0..1e9) or over 100 years is INVALID_ARGUMENT.
pub fn duration(d: Option<pbjson_types::Duration>, field: &str) -> Result<Option<Duration>, Status> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Status::invalid_argument(format!("{field} must not be negative")));
    }
    if d.nanos >= 1_000_000_000 {
        return Err(Status::invalid_argument(format!("{field}.nanos must be below 1000000000, got {}", d.nanos)));
    }
    let d = Duration::new(d.seconds as u64, d.nanos as u32);
    activity::check_duration(field, d).map_err(Status::invalid_argument)?;
    Ok(Some(d).filter(|d| !d.is_zero()))
}

pub fn pb_duration(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

pub fn timestamp(ms: Millis) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

/// A moment from the request: before 1970 or out of range is INVALID_ARGUMENT.
pub fn millis(t: pbjson_types::Timestamp, field: &str) -> Result<Millis, Status> {
    if t.seconds < 0 || !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Status::invalid_argument(format!("{field} must be a time after 1970")));
    }
    let ms = (t.seconds as u64).checked_mul(1000).and_then(|ms| ms.checked_add(t.nanos as u64 / 1_000_000));
    ms.filter(|ms| *ms <= activity::MAX_MILLIS)
        .ok_or_else(|| Status::invalid_argument(format!("{field} is too far in the future")))
}

pub fn payload(p: Option<pb::Payload>) -> Option<Payload> {
    p.map(|p| Payload { encoding: if p.encoding.is_empty() { JSON.to_string() } else { p.encoding }, data: p.data })
}

pub fn pb_payload(p: &Payload) -> pb::Payload {
    pb::Payload { encoding: p.encoding.clone(), data: p.data.clone() }
}

pub fn pb_status(s: activity::Status) -> pb::ActivityStatus {
    use activity::Status::*;
    match s {
        Scheduled => pb::ActivityStatus::Scheduled,
        Started => pb::ActivityStatus::Started,
        Completed => pb::ActivityStatus::Completed,
        Failed => pb::ActivityStatus::Failed,
        Cancelled => pb::ActivityStatus::Cancelled,
        Terminated => pb::ActivityStatus::Terminated,
        TimedOut => pb::ActivityStatus::TimedOut,
    }
}

pub fn status_filter(s: i32) -> Result<Option<activity::Status>, Status> {
    use activity::Status::*;
    let status =
        pb::ActivityStatus::try_from(s).map_err(|_| Status::invalid_argument(format!("unknown status {s}")))?;
    Ok(match status {
        pb::ActivityStatus::Unspecified => None,
        pb::ActivityStatus::Scheduled => Some(Scheduled),
        pb::ActivityStatus::Started => Some(Started),
        pb::ActivityStatus::Completed => Some(Completed),
        pb::ActivityStatus::Failed => Some(Failed),
        pb::ActivityStatus::Cancelled => Some(Cancelled),
        pb::ActivityStatus::Terminated => Some(Terminated),
        pb::ActivityStatus::TimedOut => Some(TimedOut),
    })
}

pub fn conflict(v: i32) -> Result<ConflictPolicy, Status> {
    match pb::IdConflictPolicy::try_from(v) {
        Ok(pb::IdConflictPolicy::Unspecified | pb::IdConflictPolicy::Fail) => Ok(ConflictPolicy::Fail),
        Ok(pb::IdConflictPolicy::UseExisting) => Ok(ConflictPolicy::UseExisting),
        Err(_) => Err(Status::invalid_argument(format!("unknown id_conflict_policy {v}"))),
    }
}

pub fn reuse(v: i32) -> Result<ReusePolicy, Status> {
    match pb::IdReusePolicy::try_from(v) {
        Ok(pb::IdReusePolicy::Unspecified | pb::IdReusePolicy::AllowDuplicate) => Ok(ReusePolicy::AllowDuplicate),
        Ok(pb::IdReusePolicy::AllowDuplicateFailedOnly) => Ok(ReusePolicy::AllowDuplicateFailedOnly),
        Ok(pb::IdReusePolicy::RejectDuplicate) => Ok(ReusePolicy::RejectDuplicate),
        Err(_) => Err(Status::invalid_argument(format!("unknown id_reuse_policy {v}"))),
    }
}

/// A retry policy from the request; unset fields take `defaults`.
pub fn retry_policy(p: pb::RetryPolicy, defaults: RetryPolicy) -> Result<RetryPolicy, Status> {
    let policy = RetryPolicy {
        initial_interval: duration(p.initial_interval, "retry_policy.initial_interval")?
            .unwrap_or(defaults.initial_interval),
        backoff_coefficient: if p.backoff_coefficient == 0.0 {
            defaults.backoff_coefficient
        } else {
            p.backoff_coefficient
        },
        maximum_interval: duration(p.maximum_interval, "retry_policy.maximum_interval")?.or(defaults.maximum_interval),
        maximum_attempts: p.maximum_attempts.unwrap_or(defaults.maximum_attempts),
        non_retryable_error_types: if p.non_retryable_error_types.is_empty() {
            defaults.non_retryable_error_types
        } else {
            p.non_retryable_error_types
        },
    };
    policy.validate().map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(policy)
}

pub fn pb_retry(p: &RetryPolicy) -> pb::RetryPolicy {
    pb::RetryPolicy {
        initial_interval: Some(pb_duration(p.initial_interval)),
        backoff_coefficient: p.backoff_coefficient,
        maximum_interval: Some(pb_duration(p.maximum_interval())),
        maximum_attempts: Some(p.maximum_attempts),
        non_retryable_error_types: p.non_retryable_error_types.clone(),
    }
}

pub fn pb_failure(f: &Failure) -> pb::Failure {
    pb::Failure {
        source: f.source.kind().to_string(),
        error_type: f.error_type.clone(),
        message: f.message.clone(),
        non_retryable: f.non_retryable,
        details: f.details.as_ref().map(pb_payload),
        next_retry_delay: f.next_retry_delay.map(pb_duration),
    }
}

pub fn execution(e: &Execution) -> pb::ActivityExecution {
    pb::ActivityExecution {
        activity_id: e.activity_id.clone(),
        run_id: e.run_id.clone(),
        activity_type: e.activity_type.clone(),
        task_queue: e.task_queue.clone(),
        status: pb_status(e.status) as i32,
        attempt: e.attempt,
        priority: e.priority as u32,
        scheduled_time: Some(timestamp(e.scheduled_at)),
        current_attempt_scheduled_time: Some(timestamp(e.attempt_scheduled_at)),
        started_time: e.started_at.map(timestamp),
        close_time: e.closed_at.map(timestamp),
        last_heartbeat_time: e.last_heartbeat_at.map(timestamp),
        heartbeat_details: e.heartbeat_details.as_ref().map(pb_payload),
        progress: e.progress.as_ref().map(|p| pb::Progress {
            percent: p.percent,
            message: p.message.clone(),
            time: Some(timestamp(p.at)),
        }),
        last_failure: e.last_failure.as_ref().map(pb_failure),
        last_worker: e.worker.clone().unwrap_or_default(),
        cancel_requested: e.cancel_requested_at.is_some(),
        pending_async: e.pending_async,
        result: e.result.as_ref().map(pb_payload),
        timeout_type: e.timeout_type.map(|t| t.as_str().to_string()).unwrap_or_default(),
        schedule_to_close_timeout: e.timeouts.schedule_to_close.map(pb_duration),
        schedule_to_start_timeout: e.timeouts.schedule_to_start.map(pb_duration),
        start_to_close_timeout: e.timeouts.start_to_close.map(pb_duration),
        heartbeat_timeout: e.timeouts.heartbeat.map(pb_duration),
        retry_policy: Some(pb_retry(&e.retry)),
        paused: e.paused,
        policy_attempt: e.policy_attempt(),
        version: e.version.clone().unwrap_or_default(),
        pinned_version: e.pinned_version.clone().unwrap_or_default(),
        reset_pending: e.reset_pending.is_some(),
        input: None,
        fairness_key: e.fairness.as_ref().map(|f| f.key.clone()).unwrap_or_default(),
        fairness_weight: e.fairness.as_ref().map_or(1.0, |f| f.weight),
    }
}

/// An attempt handed to an external worker.
pub fn task(t: PolledTask) -> pb::ActivityTask {
    let e = t.execution;
    let schedule_to_close_deadline = e.schedule_to_close_deadline().map(timestamp);
    pb::ActivityTask {
        task_token: t.task_token,
        activity_id: e.activity_id,
        run_id: e.run_id,
        activity_type: e.activity_type,
        attempt: e.attempt,
        input: Some(pb_payload(&e.input)),
        heartbeat_details: e.heartbeat_details.as_ref().map(pb_payload),
        scheduled_time: Some(timestamp(e.scheduled_at)),
        started_time: e.started_at.map(timestamp),
        start_to_close_timeout: e.timeouts.start_to_close.map(pb_duration),
        heartbeat_timeout: e.timeouts.heartbeat.map(pb_duration),
        schedule_to_close_deadline,
        task_queue: e.task_queue,
        priority: e.priority.into(),
    }
}

/// An execution as a list shows it: without its payloads.
pub fn execution_summary(e: &Execution) -> pb::ActivityExecution {
    let mut pb = execution(e);
    pb.result = None;
    pb.heartbeat_details = None;
    if let Some(f) = &mut pb.last_failure {
        f.details = None;
    }
    pb
}

pub fn history(h: &HistoryEntry) -> pb::HistoryEvent {
    pb::HistoryEvent {
        time: Some(timestamp(h.at)),
        attempt: h.attempt,
        kind: h.kind.to_string(),
        detail_json: h.detail.to_string(),
    }
}

pub fn log(l: &LogEntry) -> pb::LogRecord {
    pb::LogRecord {
        time: Some(timestamp(l.at)),
        attempt: l.attempt,
        level: l.level.clone(),
        message: l.message.clone(),
        fields: l.fields.iter().cloned().collect(),
    }
}

/// The completion target of a request's `oneof target`.
pub fn target(token: Option<String>, activity: Option<pb::ActivityRef>) -> Result<Target, Status> {
    match (token, activity) {
        (Some(t), _) if !t.is_empty() => Ok(Target::Token(t)),
        (_, Some(a)) => Ok(Target::Id { activity_id: a.activity_id, run_id: Some(a.run_id).filter(|r| !r.is_empty()) }),
        _ => Err(Status::invalid_argument("set task_token or activity")),
    }
}

/// The fields of an UpdateActivityOptions request its mask names.
pub fn options_change(r: &pb::UpdateActivityOptionsRequest) -> Result<OptionsChange, Status> {
    if r.update_mask.is_empty() {
        return Err(Status::invalid_argument("update_mask is empty: name the fields to change"));
    }
    let mut change = OptionsChange::default();
    for field in &r.update_mask {
        let timeout = |d: &Option<pbjson_types::Duration>| -> Result<Option<Duration>, Status> {
            duration(*d, field)?.map(Some).ok_or_else(|| Status::invalid_argument(format!("{field} must be over 0")))
        };
        let timeouts = change.timeouts.get_or_insert_with(Timeouts::default);
        match field.as_str() {
            "task_queue" => {
                if r.task_queue.is_empty() {
                    return Err(Status::invalid_argument("task_queue is in update_mask but empty"));
                }
                change.task_queue = Some(r.task_queue.clone());
            }
            "priority" => match u8::try_from(r.priority) {
                Ok(p @ 1..=5) => change.priority = Some(p),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "priority must be 1 (first) to 5, got {}",
                        r.priority
                    )));
                }
            },
            "schedule_to_close_timeout" => timeouts.schedule_to_close = timeout(&r.schedule_to_close_timeout)?,
            "schedule_to_start_timeout" => timeouts.schedule_to_start = timeout(&r.schedule_to_start_timeout)?,
            "start_to_close_timeout" => timeouts.start_to_close = timeout(&r.start_to_close_timeout)?,
            "heartbeat_timeout" => timeouts.heartbeat = timeout(&r.heartbeat_timeout)?,
            "retry_policy" => {
                let p = r.retry_policy.clone().unwrap_or_default();
                change.retry = Some(retry_policy(p, RetryPolicy::default())?);
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "update_mask: unknown field {other:?} (task_queue, priority, schedule_to_close_timeout, \
                     schedule_to_start_timeout, start_to_close_timeout, heartbeat_timeout, retry_policy)"
                )));
            }
        }
    }
    if change.timeouts.as_ref().is_some_and(|t| *t == Timeouts::default()) {
        change.timeouts = None;
    }
    Ok(change)
}
