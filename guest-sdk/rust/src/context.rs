//! The attempt's view of the host: info, heartbeats, progress, logging.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ActivityError;
use crate::bindings::sluice::activity::context as host;

pub use crate::bindings::sluice::activity::types::ActivityInfo as Info;
pub use crate::bindings::sluice::activity::types::LogLevel;

/// Handle to the host for the running attempt. Passed to the activity
/// function; cheap, and only valid during the attempt.
pub struct Context {
    _private: (),
}

impl Context {
    pub(crate) fn new() -> Self {
        Context { _private: () }
    }

    /// The attempt's info: ids, type, queue, attempt number, deadlines.
    pub fn info(&self) -> Info {
        host::info()
    }

    /// Records a heartbeat with `details` (e.g. the position reached), which
    /// a later attempt can read back with [`Context::last_heartbeat`].
    ///
    /// Returns `Err(ActivityError::cancelled())` if cancellation of the
    /// execution was requested, and `Err(ActivityError::paused())` if an
    /// operator paused it, so `ctx.heartbeat(&pos)?` stops the activity
    /// (a paused one resumes from its heartbeat details when unpaused).
    pub fn heartbeat<T: Serialize + ?Sized>(&self, details: &T) -> Result<(), ActivityError> {
        let payload = crate::encode(details)?;
        check(host::heartbeat(Some(&payload)))
    }

    /// Records a heartbeat without details (keeps the previous ones).
    pub fn heartbeat_alive(&self) -> Result<(), ActivityError> {
        check(host::heartbeat(None))
    }

    /// The details of the latest heartbeat of this execution, recorded by a
    /// previous attempt (or earlier in this one); `Ok(None)` on a fresh start.
    /// Details that do not decode into `T` are a non-retryable error.
    pub fn last_heartbeat<T: DeserializeOwned>(&self) -> Result<Option<T>, ActivityError> {
        host::last_heartbeat_details().map(|payload| crate::decode(&payload, "last heartbeat details")).transpose()
    }

    /// Reports human-facing progress: an optional percentage (0..=100) and
    /// a message. Does not count as a heartbeat.
    pub fn progress(&self, percent: Option<f32>, message: &str) {
        host::progress(percent, message)
    }

    /// The signed token naming this attempt, for async completion: hand it
    /// to another system, then return [`ActivityError::pending`].
    pub fn task_token(&self) -> String {
        host::task_token()
    }

    /// Writes a structured log record into the execution's log.
    pub fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        host::log(level, message, &fields)
    }

    /// Shorthand for an `info` log record without fields.
    pub fn info_log(&self, message: &str) {
        self.log(LogLevel::Info, message, &[])
    }
}

fn check(answer: crate::bindings::sluice::activity::types::HeartbeatResponse) -> Result<(), ActivityError> {
    if answer.cancel_requested {
        Err(ActivityError::cancelled())
    } else if answer.paused {
        Err(ActivityError::paused())
    } else {
        Ok(())
    }
}
