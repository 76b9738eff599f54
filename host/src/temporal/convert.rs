//! The mapping between Temporal's API messages and Sluice's, written down
//! once (docs/coming-from-temporal.md has the same table for users):
//! payloads, failures, statuses, retry policies, timeouts, priorities.

use std::time::Duration;

use temporalio_protos::temporal::api::{activity, common, enums, failure, taskqueue};
use tonic::Status;

use crate::activity::{
    Execution, Failure, FailureSource, Millis, RetryPolicy, Status as SluiceStatus, TimeoutType, Timeouts,
};
use crate::engine::OptionsChange;
use crate::payload::{JSON, Payload};

/// Several arguments of a Temporal call, kept as one Sluice payload: a JSON
/// array of the arguments (a WASM guest reads it as JSON); a Temporal
/// worker gets them back as separate payloads. No arguments are stored as
/// Sluice's default input, JSON null, which a Temporal worker gets back as
/// no arguments (`args_out`).
pub const ARGS: &str = "json/args";

/// Encodings taken as they are: Temporal's JSON, raw bytes, null.
const NULL: &str = "binary/null";
const BINARY: &str = "binary/plain";

fn encoding_of(p: &common::v1::Payload) -> String {
    p.metadata.get("encoding").map(|e| String::from_utf8_lossy(e).into_owned()).unwrap_or_default()
}

/// Temporal payloads → one Sluice payload (`None`: no arguments).
pub fn payload_in(p: Option<common::v1::Payloads>, what: &str) -> Result<Option<Payload>, Status> {
    let payloads = p.map(|p| p.payloads).unwrap_or_default();
    match payloads.len() {
        0 => Ok(None),
        1 => one_in(payloads.into_iter().next().expect("one payload"), what).map(Some),
        _ => {
            let mut args = Vec::with_capacity(payloads.len());
            for (i, p) in payloads.into_iter().enumerate() {
                let one = one_in(p, what)?;
                if one.encoding != JSON {
                    return Err(Status::invalid_argument(format!(
                        "{what}: argument {} is {}; several arguments must all be json/plain",
                        i + 1,
                        one.encoding
                    )));
                }
                let value: serde_json::Value = serde_json::from_slice(&one.data)
                    .map_err(|e| Status::invalid_argument(format!("{what}: argument {} is not JSON: {e}", i + 1)))?;
                args.push(value);
            }
            Ok(Some(Payload { encoding: ARGS.into(), data: serde_json::to_vec(&args).expect("JSON values encode") }))
        }
    }
}

fn one_in(p: common::v1::Payload, what: &str) -> Result<Payload, Status> {
    let encoding = encoding_of(&p);
    match encoding.as_str() {
        JSON | "json/protobuf" => Ok(Payload { encoding: JSON.into(), data: p.data }),
        NULL => Ok(Payload::json(&serde_json::Value::Null)),
        BINARY => Ok(Payload { encoding: BINARY.into(), data: p.data }),
        "binary/protobuf" => Err(Status::invalid_argument(format!(
            "{what}: binary/protobuf payloads are not supported: WASM guests read JSON (use the SDK's \
             JSON protobuf converter) or binary/plain"
        ))),
        "binary/encrypted" | "" => Err(Status::invalid_argument(format!(
            "{what}: a payload encoded {encoding:?} cannot be read by a WASM guest; send json/plain or binary/plain"
        ))),
        other => Err(Status::invalid_argument(format!(
            "{what}: unsupported payload encoding {other:?} (json/plain, json/protobuf, binary/plain, binary/null)"
        ))),
    }
}

/// A Sluice payload → Temporal payloads.
pub fn payloads_out(p: &Payload) -> common::v1::Payloads {
    if p.encoding == ARGS
        && let Ok(args) = serde_json::from_slice::<Vec<serde_json::Value>>(&p.data)
    {
        let payloads = args.iter().map(|a| one_out(JSON, serde_json::to_vec(a).expect("JSON values encode"))).collect();
        return common::v1::Payloads { payloads };
    }
    common::v1::Payloads { payloads: vec![one_out(&p.encoding, p.data.clone())] }
}

fn one_out(encoding: &str, data: Vec<u8>) -> common::v1::Payload {
    let encoding = if encoding.is_empty() { JSON } else { encoding };
    common::v1::Payload {
        metadata: [("encoding".to_string(), encoding.as_bytes().to_vec())].into(),
        data,
        ..Default::default()
    }
}

/// An activity's input as a Temporal worker's arguments: JSON null (no
/// input) is no arguments.
pub fn args_out(p: &Payload) -> common::v1::Payloads {
    if p.encoding == JSON && p.data.trim_ascii() == b"null" {
        return common::v1::Payloads::default();
    }
    payloads_out(p)
}

pub fn opt_payloads(p: &Option<Payload>) -> Option<common::v1::Payloads> {
    p.as_ref().map(payloads_out)
}

pub fn duration_in(d: Option<prost_wkt_types::Duration>, field: &str) -> Result<Option<Duration>, Status> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Status::invalid_argument(format!("invalid {field}: negative duration")));
    }
    let d = Duration::new(d.seconds as u64, d.nanos.clamp(0, 999_999_999) as u32);
    crate::activity::check_duration(field, d).map_err(Status::invalid_argument)?;
    Ok((!d.is_zero()).then_some(d))
}

pub fn duration_out(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

pub fn time_out(ms: Millis) -> prost_wkt_types::Timestamp {
    prost_wkt_types::Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

/// A Temporal retry policy, over Sluice's defaults; Temporal's refusals.
pub fn retry_in(p: common::v1::RetryPolicy) -> Result<RetryPolicy, Status> {
    if p.backoff_coefficient != 0.0 && p.backoff_coefficient < 1.0 {
        return Err(Status::invalid_argument("BackoffCoefficient cannot be less than 1 on retry policy."));
    }
    if p.maximum_attempts < 0 {
        return Err(Status::invalid_argument("MaximumAttempts cannot be negative on retry policy."));
    }
    let defaults = RetryPolicy::default();
    Ok(RetryPolicy {
        initial_interval: duration_in(p.initial_interval, "InitialInterval")?.unwrap_or(defaults.initial_interval),
        backoff_coefficient: if p.backoff_coefficient == 0.0 {
            defaults.backoff_coefficient
        } else {
            p.backoff_coefficient
        },
        maximum_interval: duration_in(p.maximum_interval, "MaximumInterval")?,
        maximum_attempts: p.maximum_attempts as u32,
        non_retryable_error_types: p.non_retryable_error_types,
    })
}

pub fn retry_out(p: &RetryPolicy) -> common::v1::RetryPolicy {
    common::v1::RetryPolicy {
        initial_interval: Some(duration_out(p.initial_interval)),
        backoff_coefficient: p.backoff_coefficient,
        maximum_interval: Some(duration_out(p.maximum_interval.unwrap_or(p.initial_interval * 100))),
        maximum_attempts: p.maximum_attempts as i32,
        non_retryable_error_types: p.non_retryable_error_types.clone(),
    }
}

/// Temporal's priority key (1 first .. 5; 0 = default) and fairness.
pub fn priority_out(e: &Execution) -> common::v1::Priority {
    common::v1::Priority {
        priority_key: e.priority as i32,
        fairness_key: e.fairness.as_ref().map(|f| f.key.clone()).unwrap_or_default(),
        fairness_weight: e.fairness.as_ref().map_or(0.0, |f| f.weight as f32),
    }
}

/// An execution's status as Temporal reports it.
pub fn status_out(s: SluiceStatus) -> enums::v1::ActivityExecutionStatus {
    use enums::v1::ActivityExecutionStatus as T;
    match s {
        SluiceStatus::Scheduled | SluiceStatus::Started => T::Running,
        SluiceStatus::Completed => T::Completed,
        SluiceStatus::Failed => T::Failed,
        SluiceStatus::Cancelled => T::Canceled,
        SluiceStatus::Terminated => T::Terminated,
        SluiceStatus::TimedOut => T::TimedOut,
    }
}

/// Where an open execution is: waiting, running, asked to cancel, paused.
pub fn run_state(e: &Execution) -> enums::v1::PendingActivityState {
    use enums::v1::PendingActivityState as S;
    match (e.status, e.paused, e.cancel_requested_at.is_some()) {
        (SluiceStatus::Scheduled, true, _) => S::Paused,
        (SluiceStatus::Scheduled, false, _) => S::Scheduled,
        (SluiceStatus::Started, _, true) => S::CancelRequested,
        (SluiceStatus::Started, true, false) => S::PauseRequested,
        (SluiceStatus::Started, false, false) => S::Started,
        _ => S::Unspecified,
    }
}

/// A closed status as Temporal names it in its refusals.
pub fn terminal_name(s: SluiceStatus) -> &'static str {
    match s {
        SluiceStatus::Completed => "Completed",
        SluiceStatus::Failed => "Failed",
        SluiceStatus::Cancelled => "Canceled",
        SluiceStatus::Terminated => "Terminated",
        SluiceStatus::TimedOut => "TimedOut",
        SluiceStatus::Scheduled | SluiceStatus::Started => "Running",
    }
}

/// A Temporal status name in a visibility query.
pub fn status_named(name: &str) -> Option<Vec<SluiceStatus>> {
    Some(match name {
        "Running" => vec![SluiceStatus::Scheduled, SluiceStatus::Started],
        "Completed" => vec![SluiceStatus::Completed],
        "Failed" => vec![SluiceStatus::Failed],
        "Canceled" => vec![SluiceStatus::Cancelled],
        "Terminated" => vec![SluiceStatus::Terminated],
        "TimedOut" => vec![SluiceStatus::TimedOut],
        _ => return None,
    })
}

fn timeout_type_out(t: TimeoutType) -> enums::v1::TimeoutType {
    match t {
        TimeoutType::ScheduleToClose => enums::v1::TimeoutType::ScheduleToClose,
        TimeoutType::ScheduleToStart => enums::v1::TimeoutType::ScheduleToStart,
        TimeoutType::StartToClose => enums::v1::TimeoutType::StartToClose,
        TimeoutType::Heartbeat => enums::v1::TimeoutType::Heartbeat,
    }
}

/// A Sluice failure as a Temporal failure: application errors (and the
/// sandbox's, and a lost host) as ApplicationFailureInfo with their type,
/// timeouts, cancellations and terminations with their own infos.
pub fn failure_out(f: &Failure, last_heartbeat: &Option<Payload>) -> failure::v1::Failure {
    use failure::v1::failure::FailureInfo;
    let info = match &f.source {
        FailureSource::Timeout(t) => FailureInfo::TimeoutFailureInfo(failure::v1::TimeoutFailureInfo {
            timeout_type: timeout_type_out(*t) as i32,
            last_heartbeat_details: opt_payloads(last_heartbeat),
        }),
        FailureSource::Cancelled => FailureInfo::CanceledFailureInfo(failure::v1::CanceledFailureInfo {
            details: opt_payloads(&f.details),
            ..Default::default()
        }),
        FailureSource::Terminated => FailureInfo::TerminatedFailureInfo(Default::default()),
        _ => FailureInfo::ApplicationFailureInfo(failure::v1::ApplicationFailureInfo {
            r#type: f.error_type.clone(),
            non_retryable: f.non_retryable,
            details: opt_payloads(&f.details),
            next_retry_delay: f.next_retry_delay.map(duration_out),
            ..Default::default()
        }),
    };
    failure::v1::Failure {
        message: f.message.clone(),
        source: "Sluice".into(),
        failure_info: Some(info),
        ..Default::default()
    }
}

/// A worker's Temporal failure as a Sluice application failure.
pub fn failure_in(f: Option<failure::v1::Failure>) -> Result<Failure, Status> {
    use failure::v1::failure::FailureInfo;
    let f = f.ok_or_else(|| Status::invalid_argument("Failure is not set on request."))?;
    let mut out = Failure::new(FailureSource::Application, "Error", f.message.clone());
    if let Some(FailureInfo::ApplicationFailureInfo(info)) = f.failure_info {
        if !info.r#type.is_empty() {
            out.error_type = info.r#type;
        }
        out.non_retryable = info.non_retryable;
        out.details = payload_in(info.details, "failure details")?;
        out.next_retry_delay = duration_in(info.next_retry_delay, "NextRetryDelay")?;
    }
    Ok(out)
}

/// How an execution ended, for Temporal: its result or its failure.
pub fn outcome(e: &Execution) -> Option<activity::v1::ActivityExecutionOutcome> {
    use activity::v1::activity_execution_outcome::Value;
    let value = match e.status {
        SluiceStatus::Completed => {
            Value::Result(e.result.as_ref().map(payloads_out).unwrap_or_else(|| payloads_out(&null())))
        }
        SluiceStatus::Cancelled => Value::Failure(failure_out(
            &Failure {
                details: e.result.clone(),
                ..Failure::new(FailureSource::Cancelled, "Cancelled", "Activity canceled")
            },
            &None,
        )),
        SluiceStatus::Terminated => {
            let reason = e.last_failure.as_ref().map_or("terminated".to_string(), |f| f.message.clone());
            Value::Failure(failure_out(&Failure::new(FailureSource::Terminated, "Terminated", reason), &None))
        }
        SluiceStatus::Failed | SluiceStatus::TimedOut => {
            let f = e.last_failure.clone().unwrap_or_else(|| Failure::new(FailureSource::Application, "Error", ""));
            Value::Failure(failure_out(&f, &e.heartbeat_details))
        }
        SluiceStatus::Scheduled | SluiceStatus::Started => return None,
    };
    Some(activity::v1::ActivityExecutionOutcome { value: Some(value), ..Default::default() })
}

fn null() -> Payload {
    Payload::json(&serde_json::Value::Null)
}

/// Timeouts as a Temporal client states them.
pub fn timeouts_in(
    schedule_to_close: Option<prost_wkt_types::Duration>,
    schedule_to_start: Option<prost_wkt_types::Duration>,
    start_to_close: Option<prost_wkt_types::Duration>,
    heartbeat: Option<prost_wkt_types::Duration>,
) -> Result<Timeouts, Status> {
    Ok(Timeouts {
        schedule_to_close: duration_in(schedule_to_close, "ScheduleToCloseTimeout")?,
        schedule_to_start: duration_in(schedule_to_start, "ScheduleToStartTimeout")?,
        start_to_close: duration_in(start_to_close, "StartToCloseTimeout")?,
        heartbeat: duration_in(heartbeat, "HeartbeatTimeout")?,
    })
}

/// An options update: the fields its mask names (Temporal's paths, in
/// snake_case or camelCase).
pub fn options_change(o: activity::v1::ActivityOptions, paths: Vec<String>) -> Result<OptionsChange, Status> {
    if paths.is_empty() {
        return Err(Status::invalid_argument("UpdateMask is not set on request."));
    }
    let mut change = OptionsChange::default();
    let mut timeouts = Timeouts::default();
    for path in paths {
        match path.as_str() {
            "task_queue" | "task_queue.name" | "taskQueue" | "taskQueue.name" => {
                change.task_queue = Some(o.task_queue.clone().map(|q| q.name).unwrap_or_default())
            }
            "schedule_to_close_timeout" | "scheduleToCloseTimeout" => {
                timeouts.schedule_to_close = duration_in(o.schedule_to_close_timeout, "ScheduleToCloseTimeout")?
            }
            "schedule_to_start_timeout" | "scheduleToStartTimeout" => {
                timeouts.schedule_to_start = duration_in(o.schedule_to_start_timeout, "ScheduleToStartTimeout")?
            }
            "start_to_close_timeout" | "startToCloseTimeout" => {
                timeouts.start_to_close = duration_in(o.start_to_close_timeout, "StartToCloseTimeout")?
            }
            "heartbeat_timeout" | "heartbeatTimeout" => {
                timeouts.heartbeat = duration_in(o.heartbeat_timeout, "HeartbeatTimeout")?
            }
            "retry_policy" | "retryPolicy" => {
                change.retry = Some(retry_in(o.retry_policy.clone().unwrap_or_default())?)
            }
            "priority" | "priority.priority_key" | "priority.priorityKey" => {
                match o.priority.as_ref().map_or(0, |p| p.priority_key) {
                    p @ 1..=5 => change.priority = Some(p as u8),
                    0 => change.priority = Some(3),
                    p => return Err(Status::invalid_argument(format!("priority key must be 1 to 5, got {p}"))),
                }
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "update mask path {other:?} is not supported (task_queue, the four timeouts, retry_policy, priority)"
                )));
            }
        }
    }
    if timeouts != Timeouts::default() {
        change.timeouts = Some(timeouts);
    }
    Ok(change)
}

/// An execution's options as Temporal reports them.
pub fn options_out(e: &Execution) -> activity::v1::ActivityOptions {
    let t = &e.timeouts;
    activity::v1::ActivityOptions {
        task_queue: Some(taskqueue::v1::TaskQueue { name: e.task_queue.clone(), ..Default::default() }),
        schedule_to_close_timeout: t.schedule_to_close.map(duration_out),
        schedule_to_start_timeout: t.schedule_to_start.map(duration_out),
        start_to_close_timeout: t.start_to_close.map(duration_out),
        heartbeat_timeout: t.heartbeat.map(duration_out),
        retry_policy: Some(retry_out(&e.retry)),
        priority: Some(priority_out(e)),
        ..Default::default()
    }
}

/// Describe's view of an execution.
pub fn info(e: &Execution, worker_identity: String) -> activity::v1::ActivityExecutionInfo {
    let t = &e.timeouts;
    let in_backoff = e.status == SluiceStatus::Scheduled && e.attempt > 1;
    activity::v1::ActivityExecutionInfo {
        activity_id: e.activity_id.clone(),
        run_id: e.run_id.clone(),
        activity_type: Some(common::v1::ActivityType { name: e.activity_type.clone() }),
        status: status_out(e.status) as i32,
        run_state: run_state(e) as i32,
        task_queue: e.task_queue.clone(),
        schedule_to_close_timeout: t.schedule_to_close.map(duration_out),
        schedule_to_start_timeout: t.schedule_to_start.map(duration_out),
        start_to_close_timeout: t.start_to_close.map(duration_out),
        heartbeat_timeout: t.heartbeat.map(duration_out),
        retry_policy: Some(retry_out(&e.retry)),
        heartbeat_details: opt_payloads(&e.heartbeat_details),
        last_heartbeat_time: e.last_heartbeat_at.map(time_out),
        last_started_time: e.started_at.map(time_out),
        attempt: e.policy_attempt() as i32,
        execution_duration: e.closed_at.map(|c| duration_out(Duration::from_millis(c.saturating_sub(e.scheduled_at)))),
        schedule_time: Some(time_out(e.scheduled_at)),
        expiration_time: e.schedule_to_close_deadline().map(time_out),
        close_time: e.closed_at.map(time_out),
        last_failure: e.last_failure.as_ref().map(|f| failure_out(f, &e.heartbeat_details)),
        last_worker_identity: worker_identity,
        next_attempt_schedule_time: in_backoff.then(|| time_out(e.attempt_scheduled_at)),
        priority: Some(priority_out(e)),
        canceled_reason: if e.cancel_requested_at.is_some() { "canceled".into() } else { String::new() },
        ..Default::default()
    }
}

pub fn list_info(e: &Execution) -> activity::v1::ActivityExecutionListInfo {
    activity::v1::ActivityExecutionListInfo {
        activity_id: e.activity_id.clone(),
        run_id: e.run_id.clone(),
        activity_type: Some(common::v1::ActivityType { name: e.activity_type.clone() }),
        schedule_time: Some(time_out(e.scheduled_at)),
        close_time: e.closed_at.map(time_out),
        status: status_out(e.status) as i32,
        task_queue: e.task_queue.clone(),
        execution_duration: e.closed_at.map(|c| duration_out(Duration::from_millis(c.saturating_sub(e.scheduled_at)))),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(encoding: &str, data: &[u8]) -> common::v1::Payload {
        one_out(encoding, data.to_vec())
    }

    #[test]
    fn payloads_map_both_ways_and_unreadable_ones_are_refused() {
        let one = payload_in(Some(common::v1::Payloads { payloads: vec![payload(JSON, b"{\"a\":1}")] }), "input");
        let one = one.unwrap().unwrap();
        assert_eq!((one.encoding.as_str(), one.data.as_slice()), (JSON, &b"{\"a\":1}"[..]));
        assert_eq!(payloads_out(&one).payloads[0], payload(JSON, b"{\"a\":1}"));

        let two = common::v1::Payloads { payloads: vec![payload(JSON, b"1"), payload(JSON, b"\"x\"")] };
        let args = payload_in(Some(two.clone()), "input").unwrap().unwrap();
        assert_eq!((args.encoding.as_str(), args.data.as_slice()), (ARGS, &b"[1,\"x\"]"[..]));
        assert_eq!(payloads_out(&args), two, "a Temporal worker gets its arguments back");

        let null = payload_in(Some(common::v1::Payloads { payloads: vec![payload(NULL, b"")] }), "input").unwrap();
        assert_eq!(null, Some(Payload::json(&serde_json::Value::Null)));
        assert_eq!(payload_in(None, "input").unwrap(), None);
        assert!(args_out(&Payload::json(&serde_json::Value::Null)).payloads.is_empty(), "no input: no arguments");
        assert_eq!(args_out(&one).payloads.len(), 1);

        let proto = common::v1::Payloads { payloads: vec![payload("binary/protobuf", b"\x08\x01")] };
        let err = payload_in(Some(proto), "input").unwrap_err();
        assert!(err.message().starts_with("input: binary/protobuf payloads are not supported"), "{err}");
        let mixed = common::v1::Payloads { payloads: vec![payload(JSON, b"1"), payload(BINARY, b"x")] };
        let err = payload_in(Some(mixed), "input").unwrap_err();
        assert_eq!(err.message(), "input: argument 2 is binary/plain; several arguments must all be json/plain");
    }

    #[test]
    fn failures_keep_their_type_and_retry_policies_their_rules() {
        let mut f = Failure::new(FailureSource::Application, "MailboxFull", "full");
        f.non_retryable = true;
        let t = failure_out(&f, &None);
        let back = failure_in(Some(t)).unwrap();
        assert_eq!(
            (back.error_type.as_str(), back.non_retryable, back.message.as_str()),
            ("MailboxFull", true, "full")
        );
        let timeout = failure_out(&Failure::new(FailureSource::Timeout(TimeoutType::Heartbeat), "x", "late"), &None);
        assert!(matches!(
            timeout.failure_info,
            Some(failure::v1::failure::FailureInfo::TimeoutFailureInfo(i)) if i.timeout_type == enums::v1::TimeoutType::Heartbeat as i32
        ));
        let bad = common::v1::RetryPolicy { backoff_coefficient: 0.5, ..Default::default() };
        assert_eq!(retry_in(bad).unwrap_err().message(), "BackoffCoefficient cannot be less than 1 on retry policy.");
        let bad = common::v1::RetryPolicy { maximum_attempts: -1, ..Default::default() };
        assert_eq!(retry_in(bad).unwrap_err().message(), "MaximumAttempts cannot be negative on retry policy.");
        assert_eq!(retry_in(Default::default()).unwrap(), RetryPolicy::default());
    }
}
