//! The host side of the `sluice:activity/context` imports: what a guest's
//! heartbeat, progress, log, info and task-token calls do.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::bindings::sluice::activity::{context, types};
use super::bindings::{ActivityInfo, HeartbeatResponse, LogLevel, Payload};
use super::control::AttemptControl;
use super::events::AttemptEvent;
use crate::payload::PayloadTooLarge;

/// Cap on one progress message; longer ones are cut.
const MAX_PROGRESS_MESSAGE: usize = 4096;

/// Per-attempt state behind the context imports.
pub(crate) struct ActivityHost {
    pub info: ActivityInfo,
    pub task_token: crate::token::AttemptToken,
    pub control: Arc<AttemptControl>,
    pub events: Option<UnboundedSender<AttemptEvent>>,
    /// Latest heartbeat details: the previous attempt's until this one
    /// heartbeats with details of its own.
    pub heartbeat_details: Option<Payload>,
    pub max_payload: usize,
    pub max_log: usize,
    pub log_bytes: usize,
}

/// The structured log of an attempt went over its cap.
#[derive(Debug, thiserror::Error)]
#[error("the activity wrote more than {max} bytes of log records (each counts at least 64 bytes)")]
pub struct LogLimitExceeded {
    pub max: usize,
}

/// What a log record counts against the output cap at the least.
const LOG_RECORD_COST: usize = 64;

impl ActivityHost {
    fn emit(&self, event: AttemptEvent) {
        if let Some(events) = &self.events {
            // The receiver may be gone (the watcher left); the attempt goes on.
            let _ = events.send(event);
        }
    }
}

impl types::Host for ActivityHost {}

impl context::Host for ActivityHost {
    fn info(&mut self) -> wasmtime::Result<ActivityInfo> {
        Ok(self.info.clone())
    }

    fn last_heartbeat_details(&mut self) -> wasmtime::Result<Option<Payload>> {
        Ok(self.heartbeat_details.clone())
    }

    fn heartbeat(&mut self, details: Option<Payload>) -> wasmtime::Result<HeartbeatResponse> {
        if let Some(details) = details {
            if details.data.len() > self.max_payload {
                return Err(PayloadTooLarge {
                    what: "heartbeat details".into(),
                    size: details.data.len(),
                    max: self.max_payload,
                }
                .into());
            }
            self.heartbeat_details = Some(details);
        }
        self.emit(AttemptEvent::Heartbeat { details: self.heartbeat_details.clone().map(Into::into) });
        Ok(HeartbeatResponse { cancel_requested: self.control.cancel_requested(), paused: self.control.paused() })
    }

    fn progress(&mut self, percent: Option<f32>, mut message: String) -> wasmtime::Result<()> {
        let percent = percent.filter(|p| p.is_finite()).map(|p| p.clamp(0.0, 100.0));
        if message.len() > MAX_PROGRESS_MESSAGE {
            let cut = message.floor_char_boundary(MAX_PROGRESS_MESSAGE);
            message.truncate(cut);
        }
        self.emit(AttemptEvent::Progress { percent, message });
        Ok(())
    }

    fn task_token(&mut self) -> wasmtime::Result<String> {
        Ok(self.task_token.get())
    }

    fn log(&mut self, level: LogLevel, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        // Every record costs at least LOG_RECORD_COST, so a flood of empty
        // records hits the cap too.
        let size = message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        self.log_bytes += size.max(LOG_RECORD_COST);
        if self.log_bytes > self.max_log {
            return Err(LogLimitExceeded { max: self.max_log }.into());
        }
        self.emit(AttemptEvent::Log { level: level.into(), message, fields });
        Ok(())
    }
}
