//! Why an attempt or an execution failed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::payload::Payload;

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeoutType {
    ScheduleToClose,
    ScheduleToStart,
    StartToClose,
    Heartbeat,
}

impl TimeoutType {
    /// `start-to-close`, ...: as written in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutType::ScheduleToClose => "schedule-to-close",
            TimeoutType::ScheduleToStart => "schedule-to-start",
            TimeoutType::StartToClose => "start-to-close",
            TimeoutType::Heartbeat => "heartbeat",
        }
    }

    /// The error type recorded for this timeout, e.g. `StartToCloseTimeout`.
    pub fn error_type(self) -> &'static str {
        match self {
            TimeoutType::ScheduleToClose => "ScheduleToCloseTimeout",
            TimeoutType::ScheduleToStart => "ScheduleToStartTimeout",
            TimeoutType::StartToClose => "StartToCloseTimeout",
            TimeoutType::Heartbeat => "HeartbeatTimeout",
        }
    }
}

/// Where a failure came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum FailureSource {
    /// The activity returned an application error.
    Application,
    /// The sandbox stopped the guest; the detail is the failure kind
    /// (`trap`, `out-of-memory`, ...).
    Sandbox(String),
    Timeout(TimeoutType),
    /// The host running the attempt died.
    HostLost,
    Cancelled,
    Terminated,
    /// An operator reset the execution while the attempt ran.
    Reset,
}

impl FailureSource {
    /// `application`, `sandbox`, `timeout`, ...: as written in the store and the API.
    pub fn kind(&self) -> &'static str {
        match self {
            FailureSource::Application => "application",
            FailureSource::Sandbox(_) => "sandbox",
            FailureSource::Timeout(_) => "timeout",
            FailureSource::HostLost => "host-lost",
            FailureSource::Cancelled => "cancelled",
            FailureSource::Terminated => "terminated",
            FailureSource::Reset => "reset",
        }
    }
}

/// The error type of an attempt that stopped because its execution was
/// paused (the SDKs' paused error): it does not count against the retry
/// policy, and its retry waits for the unpause.
pub const PAUSED_ERROR: &str = "Paused";

/// A failure with everything the caller and the retry policy need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub source: FailureSource,
    pub error_type: String,
    pub message: String,
    pub non_retryable: bool,
    pub details: Option<Payload>,
    pub next_retry_delay: Option<Duration>,
}

impl Failure {
    pub fn new(source: FailureSource, error_type: &str, message: impl Into<String>) -> Failure {
        Failure {
            source,
            error_type: error_type.to_string(),
            message: message.into(),
            non_retryable: false,
            details: None,
            next_retry_delay: None,
        }
    }

    /// An application error reported by a guest, worker or client.
    pub fn application(
        error_type: &str,
        message: &str,
        non_retryable: bool,
        details: Option<Payload>,
        next_retry_delay: Option<Duration>,
    ) -> Failure {
        Failure {
            source: FailureSource::Application,
            error_type: error_type.to_string(),
            message: message.to_string(),
            non_retryable,
            details,
            next_retry_delay,
        }
    }

    pub fn timeout(t: TimeoutType) -> Failure {
        let what = match t {
            TimeoutType::ScheduleToClose => "the execution ran past its schedule-to-close timeout",
            TimeoutType::ScheduleToStart => "the attempt waited in its queue past its schedule-to-start timeout",
            TimeoutType::StartToClose => "the attempt ran past its start-to-close timeout",
            TimeoutType::Heartbeat => "no heartbeat arrived within the heartbeat timeout",
        };
        Failure::new(FailureSource::Timeout(t), t.error_type(), what)
    }
}
