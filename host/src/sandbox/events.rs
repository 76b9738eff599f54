//! What an attempt reports while it runs, in the order it happens.

use serde::Serialize;

use super::bindings::LogLevel as WitLogLevel;
use crate::payload::Payload;

/// One thing a running attempt did that its watchers may want to see.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum AttemptEvent {
    /// A heartbeat; `details` are the latest details after it.
    Heartbeat {
        #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
        details: Option<Payload>,
    },
    /// Human-facing progress.
    Progress { percent: Option<f32>, message: String },
    /// A structured log record.
    Log { level: LogLevel, message: String, fields: Vec<(String, String)> },
}

/// Severity of a guest log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<WitLogLevel> for LogLevel {
    fn from(l: WitLogLevel) -> Self {
        match l {
            WitLogLevel::Trace => LogLevel::Trace,
            WitLogLevel::Debug => LogLevel::Debug,
            WitLogLevel::Info => LogLevel::Info,
            WitLogLevel::Warn => LogLevel::Warn,
            WitLogLevel::Error => LogLevel::Error,
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        })
    }
}
