//! Components built against `sluice:activity@0.1.0` still load: their
//! imports are served by the same host state, their values converted to and
//! from the current (0.2.0) types here. The one difference: 0.1.0's
//! heartbeat answer has no `paused`.

use super::bindings::v1::exports::sluice::activity::activity as v1_activity;
use super::bindings::v1::sluice::activity::{context as v1_context, types as v1};
use super::bindings::{self, ActivityInfo, Outcome, Payload};
use super::host_api::ActivityHost;

fn payload_in(p: v1::Payload) -> Payload {
    Payload { encoding: p.encoding, data: p.data }
}

fn payload_out(p: Payload) -> v1::Payload {
    v1::Payload { encoding: p.encoding, data: p.data }
}

pub(super) fn payload_to_v1(p: &Payload) -> v1::Payload {
    payload_out(p.clone())
}

fn info_out(i: ActivityInfo) -> v1::ActivityInfo {
    v1::ActivityInfo {
        activity_id: i.activity_id,
        run_id: i.run_id,
        activity_type: i.activity_type,
        task_queue: i.task_queue,
        attempt: i.attempt,
        scheduled_time_ms: i.scheduled_time_ms,
        current_attempt_scheduled_time_ms: i.current_attempt_scheduled_time_ms,
        started_time_ms: i.started_time_ms,
        schedule_to_close_deadline_ms: i.schedule_to_close_deadline_ms,
        start_to_close_deadline_ms: i.start_to_close_deadline_ms,
        heartbeat_timeout_ms: i.heartbeat_timeout_ms,
        host_task_queue: i.host_task_queue,
    }
}

fn level_in(l: v1::LogLevel) -> bindings::LogLevel {
    match l {
        v1::LogLevel::Trace => bindings::LogLevel::Trace,
        v1::LogLevel::Debug => bindings::LogLevel::Debug,
        v1::LogLevel::Info => bindings::LogLevel::Info,
        v1::LogLevel::Warn => bindings::LogLevel::Warn,
        v1::LogLevel::Error => bindings::LogLevel::Error,
    }
}

/// A 0.1.0 guest's outcome, as the current type.
pub(super) fn outcome_in(o: v1_activity::Outcome) -> Outcome {
    match o {
        v1_activity::Outcome::Completed(p) => Outcome::Completed(payload_in(p)),
        v1_activity::Outcome::Pending => Outcome::Pending,
        v1_activity::Outcome::Cancelled(p) => Outcome::Cancelled(p.map(payload_in)),
        v1_activity::Outcome::Failed(e) => Outcome::Failed(bindings::ApplicationError {
            message: e.message,
            error_type: e.error_type,
            non_retryable: e.non_retryable,
            details: e.details.map(payload_in),
            next_retry_delay_ms: e.next_retry_delay_ms,
        }),
    }
}

impl v1::Host for ActivityHost {}

impl v1_context::Host for ActivityHost {
    fn info(&mut self) -> wasmtime::Result<v1::ActivityInfo> {
        Ok(info_out(self.info.clone()))
    }

    fn last_heartbeat_details(&mut self) -> wasmtime::Result<Option<v1::Payload>> {
        Ok(self.heartbeat_details.clone().map(payload_out))
    }

    fn heartbeat(&mut self, details: Option<v1::Payload>) -> wasmtime::Result<v1::HeartbeatResponse> {
        let r = bindings::sluice::activity::context::Host::heartbeat(self, details.map(payload_in))?;
        Ok(v1::HeartbeatResponse { cancel_requested: r.cancel_requested })
    }

    fn progress(&mut self, percent: Option<f32>, message: String) -> wasmtime::Result<()> {
        bindings::sluice::activity::context::Host::progress(self, percent, message)
    }

    fn task_token(&mut self) -> wasmtime::Result<String> {
        bindings::sluice::activity::context::Host::task_token(self)
    }

    fn log(&mut self, level: v1::LogLevel, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        bindings::sluice::activity::context::Host::log(self, level_in(level), message, fields)
    }
}
