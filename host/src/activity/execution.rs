//! One activity execution and its transitions. Pure: every method takes
//! `now` and changes only the value it is called on; the engine persists
//! the result and acts on the returned [`Change`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::failure::{Failure, FailureSource, TimeoutType};
use super::options::{OptionsError, RetryPolicy, Timeouts};
use super::trace::TraceContext;
use crate::payload::Payload;

pub use super::time::Millis;
use super::time::{MAX_DURATION, after};

/// The status of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Waiting in its task queue (possibly in a retry backoff).
    Scheduled,
    /// An attempt is running (or pending async completion).
    Started,
    Completed,
    Failed,
    Cancelled,
    Terminated,
    TimedOut,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Scheduled,
        Status::Started,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
        Status::Terminated,
        Status::TimedOut,
    ];

    pub fn is_closed(self) -> bool {
        !matches!(self, Status::Scheduled | Status::Started)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Started => "started",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Terminated => "terminated",
            Status::TimedOut => "timed-out",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller asks for when scheduling an execution.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub activity_id: String,
    pub run_id: String,
    pub activity_type: String,
    pub task_queue: String,
    pub input: Payload,
    /// 1 (first) ..= 5; default 3.
    pub priority: u8,
    pub request_id: Option<String>,
    /// Already merged with the type's defaults; resolved here.
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// How long a started attempt may take to stop after a cancel request.
    pub cancel_grace: Duration,
    /// Run every attempt on this version of the type's component (`None`:
    /// the type's current version when the attempt starts).
    pub pinned_version: Option<String>,
    /// The trace it belongs to, if traced.
    pub trace: Option<TraceContext>,
    /// Its fairness key and weight (`None`: the queue's default key).
    pub fairness: Option<Fairness>,
}

/// Within one priority, a queue shares its dispatches among the fairness
/// keys with waiting attempts in proportion to their weights, so one key's
/// burst cannot starve the others (each key is served in its own order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    pub key: String,
    /// `MIN_WEIGHT..=MAX_WEIGHT`; default 1.
    pub weight: f64,
}

impl Fairness {
    pub const MIN_WEIGHT: f64 = 0.001;
    pub const MAX_WEIGHT: f64 = 1000.0;
}

/// Latest human-facing progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub percent: Option<f32>,
    pub message: String,
    pub at: Millis,
}

/// The durable state of one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub activity_id: String,
    pub run_id: String,
    pub activity_type: String,
    pub task_queue: String,
    pub input: Payload,
    pub priority: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub cancel_grace: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Fairness>,

    pub status: Status,
    /// The current (or last) attempt, from 1.
    pub attempt: u32,
    /// When the execution was scheduled.
    pub scheduled_at: Millis,
    /// When the current attempt may be dispatched (later than its
    /// scheduling during a retry backoff).
    pub attempt_scheduled_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Millis>,
    /// Who runs the current attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The current attempt returned pending: it waits for an external
    /// completion, its timeouts still running.
    pub pending_async: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_at: Option<Millis>,
    /// The latest heartbeat details, carried across attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_details: Option<Payload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Failure>,
    /// The result (completed) or the cancellation details (cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Payload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_type: Option<TimeoutType>,
    /// The component version the current attempt runs (set when it starts;
    /// `None` for external workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// No new attempt is dispatched while paused (see `operate`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// A reset asked while an attempt ran, applied at its next heartbeat or end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_pending: Option<ResetRequest>,
    /// Attempts before the last reset: the retry policy counts from here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts_before_reset: u32,
    /// When the last reset re-armed schedule-to-close (else `scheduled_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rearmed_at: Option<Millis>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a reset keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResetRequest {
    /// Stay paused if paused (else a reset unpauses).
    pub keep_paused: bool,
    /// Forget the heartbeat details, so the next attempt starts afresh.
    pub reset_heartbeat: bool,
}

/// Why a request was refused; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("activity {activity_id} is already {status}")]
    Closed { activity_id: String, status: Status },
    #[error("attempt {given} of activity {activity_id} is stale: the execution is on attempt {current}")]
    StaleAttempt { activity_id: String, given: u32, current: u32 },
    #[error("activity {activity_id} has no running attempt (it is {status})")]
    NotStarted { activity_id: String, status: Status },
    #[error("activity {activity_id} is not ready to start")]
    NotDispatchable { activity_id: String },
    #[error("activity {activity_id} already completed with a different result")]
    DifferentResult { activity_id: String },
    #[error("activity {activity_id} is not paused")]
    NotPaused { activity_id: String },
    #[error("activity {activity_id}: {reason}")]
    InvalidOptions { activity_id: String, reason: String },
}

/// What a transition did, for the history and for the engine to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new execution, waiting for its first attempt.
    Scheduled,
    Started {
        attempt: u32,
    },
    Heartbeat {
        cancel_requested: bool,
    },
    PendingAsync,
    /// The attempt failed and another is scheduled at `at`.
    RetryScheduled {
        failed_attempt: u32,
        at: Millis,
    },
    CancelRequested,
    /// The execution closed with this status.
    Closed(Status),
    /// An operator paused or unpaused it, reset it (at once, or at the
    /// running attempt's next heartbeat or end), or changed its options.
    Paused,
    Unpaused,
    Reset {
        pending: bool,
    },
    OptionsUpdated,
    /// A repeated request (completion with the same result, a second
    /// cancel request): nothing changed, nothing to commit.
    AlreadyDone,
}

impl Change {
    /// True if the running attempt (if any) must be interrupted: it no
    /// longer counts.
    pub fn ends_attempt(&self) -> bool {
        matches!(self, Change::RetryScheduled { .. } | Change::Closed(_))
    }
}

impl Execution {
    /// A new execution, scheduled now as attempt 1.
    pub fn new(req: NewExecution, now: Millis) -> Result<Execution, OptionsError> {
        let timeouts = req.timeouts.resolve()?;
        req.retry.validate()?;
        Ok(Execution {
            activity_id: req.activity_id,
            run_id: req.run_id,
            activity_type: req.activity_type,
            task_queue: req.task_queue,
            input: req.input,
            priority: req.priority.clamp(1, 5),
            request_id: req.request_id,
            timeouts,
            retry: req.retry,
            cancel_grace: req.cancel_grace,
            pinned_version: req.pinned_version,
            trace: req.trace,
            fairness: req.fairness,
            status: Status::Scheduled,
            attempt: 1,
            scheduled_at: now,
            attempt_scheduled_at: now,
            started_at: None,
            closed_at: None,
            worker: None,
            pending_async: false,
            last_heartbeat_at: None,
            heartbeat_details: None,
            cancel_requested_at: None,
            progress: None,
            last_failure: None,
            result: None,
            timeout_type: None,
            version: None,
            paused: false,
            reset_pending: None,
            attempts_before_reset: 0,
            rearmed_at: None,
        })
    }

    /// The attempt as the retry policy counts it: from 1 since the last reset.
    pub fn policy_attempt(&self) -> u32 {
        self.attempt.saturating_sub(self.attempts_before_reset).max(1)
    }

    pub fn schedule_to_close_deadline(&self) -> Option<Millis> {
        self.timeouts.schedule_to_close.map(|d| after(self.rearmed_at.unwrap_or(self.scheduled_at), d))
    }

    pub fn start_to_close_deadline(&self) -> Option<Millis> {
        let started = self.started_at?;
        self.timeouts.start_to_close.map(|d| after(started, d))
    }

    fn schedule_to_start_deadline(&self) -> Option<Millis> {
        self.timeouts.schedule_to_start.map(|d| after(self.attempt_scheduled_at, d))
    }

    fn heartbeat_deadline(&self) -> Option<Millis> {
        let last = self.last_heartbeat_at.or(self.started_at)?;
        self.timeouts.heartbeat.map(|d| after(last, d))
    }

    fn cancel_deadline(&self) -> Option<Millis> {
        self.cancel_requested_at.map(|at| after(at, self.cancel_grace))
    }

    /// The earliest moment at which `on_timer` may change something.
    pub fn next_deadline(&self) -> Option<Millis> {
        let candidates = match self.status {
            // A paused execution waits in no queue: schedule-to-start is re-armed on unpause.
            Status::Scheduled if self.paused => [self.schedule_to_close_deadline(), None, None, None],
            Status::Scheduled => [self.schedule_to_close_deadline(), self.schedule_to_start_deadline(), None, None],
            Status::Started => [
                self.schedule_to_close_deadline(),
                self.start_to_close_deadline(),
                self.heartbeat_deadline(),
                self.cancel_deadline(),
            ],
            _ => return None,
        };
        candidates.into_iter().flatten().min()
    }

    /// When the current attempt may be handed to a worker, if it is waiting.
    pub fn dispatchable_at(&self) -> Option<Millis> {
        (self.status == Status::Scheduled && !self.paused).then_some(self.attempt_scheduled_at)
    }

    pub(super) fn check_open(&self) -> Result<(), Reject> {
        if self.status.is_closed() {
            return Err(Reject::Closed { activity_id: self.activity_id.clone(), status: self.status });
        }
        Ok(())
    }

    /// Checks that `attempt` is the current, running attempt.
    pub(super) fn check_running(&self, attempt: u32) -> Result<(), Reject> {
        self.check_open()?;
        if attempt != self.attempt {
            return Err(Reject::StaleAttempt {
                activity_id: self.activity_id.clone(),
                given: attempt,
                current: self.attempt,
            });
        }
        if self.status != Status::Started {
            return Err(Reject::NotStarted { activity_id: self.activity_id.clone(), status: self.status });
        }
        Ok(())
    }

    fn close(&mut self, status: Status, now: Millis) -> Change {
        self.status = status;
        self.closed_at = Some(now);
        self.pending_async = false;
        Change::Closed(status)
    }

    /// Hands the waiting attempt to `worker`.
    /// `current_version` is the type's current component version, used
    /// unless the execution is pinned to one.
    pub fn start(&mut self, worker: &str, current_version: Option<&str>, now: Millis) -> Result<Change, Reject> {
        self.check_open()?;
        if self.dispatchable_at().is_none_or(|at| now < at) {
            return Err(Reject::NotDispatchable { activity_id: self.activity_id.clone() });
        }
        self.status = Status::Started;
        self.started_at = Some(now);
        self.worker = Some(worker.to_string());
        self.version = self.pinned_version.clone().or(current_version.map(str::to_string));
        self.last_heartbeat_at = None;
        Ok(Change::Started { attempt: self.attempt })
    }

    /// Records a heartbeat of `attempt`; details, when given, replace the
    /// previous ones. The answer says whether cancellation was requested.
    pub fn heartbeat(&mut self, attempt: u32, details: Option<Payload>, now: Millis) -> Result<Change, Reject> {
        self.check_running(attempt)?;
        self.last_heartbeat_at = Some(now);
        if details.is_some() {
            self.heartbeat_details = details;
        }
        if self.reset_pending.is_some() {
            return Ok(self.reset_at_heartbeat(now));
        }
        Ok(Change::Heartbeat { cancel_requested: self.cancel_requested_at.is_some() })
    }

    /// Records progress of the running attempt (no effect on timeouts).
    pub fn record_progress(&mut self, attempt: u32, progress: Progress) -> Result<(), Reject> {
        self.check_running(attempt)?;
        self.progress = Some(progress);
        Ok(())
    }

    /// The attempt returned pending: it stays started for an external
    /// completion; its timeouts keep running.
    pub fn set_pending(&mut self, attempt: u32) -> Result<Change, Reject> {
        self.check_running(attempt)?;
        self.pending_async = true;
        Ok(Change::PendingAsync)
    }

    /// Completes `attempt` with `result`. Completing again with the same
    /// result is a no-op; with another, an error.
    pub fn complete(&mut self, attempt: u32, result: Payload, now: Millis) -> Result<Change, Reject> {
        if self.status == Status::Completed && attempt == self.attempt {
            return if self.result.as_ref() == Some(&result) {
                Ok(Change::AlreadyDone)
            } else {
                Err(Reject::DifferentResult { activity_id: self.activity_id.clone() })
            };
        }
        self.check_running(attempt)?;
        self.result = Some(result);
        Ok(self.close(Status::Completed, now))
    }

    /// The attempt acknowledged cancellation.
    pub fn report_cancelled(&mut self, attempt: u32, details: Option<Payload>, now: Millis) -> Result<Change, Reject> {
        if self.status == Status::Cancelled && attempt == self.attempt && self.result == details {
            return Ok(Change::AlreadyDone);
        }
        self.check_running(attempt)?;
        self.result = details;
        Ok(self.close(Status::Cancelled, now))
    }

    /// The attempt failed; the retry policy decides whether another follows.
    pub fn fail(&mut self, attempt: u32, failure: Failure, now: Millis) -> Result<Change, Reject> {
        if self.status == Status::Failed && attempt == self.attempt && self.last_failure.as_ref() == Some(&failure) {
            return Ok(Change::AlreadyDone);
        }
        self.check_running(attempt)?;
        Ok(self.retry_or_close(failure, now))
    }

    /// The host that ran the current attempt died. A pending-async attempt
    /// keeps waiting; a running one failed and is retried per policy.
    pub fn host_lost(&mut self, now: Millis) -> Option<Change> {
        if self.status != Status::Started || self.pending_async {
            return None;
        }
        let failure = Failure::new(
            FailureSource::HostLost,
            "HostLost",
            "the host running this attempt stopped before it finished",
        );
        Some(self.retry_or_close(failure, now))
    }

    pub(super) fn retry_or_close(&mut self, failure: Failure, now: Millis) -> Change {
        let final_status = match failure.source {
            FailureSource::Timeout(t) => {
                self.timeout_type = Some(t);
                Status::TimedOut
            }
            _ => Status::Failed,
        };
        let failed_attempt = self.attempt;
        let policy_attempt = self.policy_attempt();
        // Stopped because paused: not counted, and the retry waits for the unpause.
        let stopped_for_pause = self.paused
            && failure.source == FailureSource::Application
            && failure.error_type == super::failure::PAUSED_ERROR;
        let retryable = stopped_for_pause
            || (!failure.non_retryable
                && !self.retry.is_non_retryable_type(&failure.error_type)
                && self.retry.attempts_left(policy_attempt));
        let delay = match stopped_for_pause {
            true => Duration::ZERO,
            false => failure.next_retry_delay.unwrap_or_else(|| self.retry.delay_after(policy_attempt)),
        };
        let next_at = after(now, delay.min(MAX_DURATION));
        self.last_failure = Some(failure);
        if self.cancel_requested_at.is_some() {
            // Nobody wants another attempt of an execution being cancelled.
            return self.close(Status::Cancelled, now);
        }
        if self.reset_pending.is_some() {
            // A reset asked during the attempt: the next one is attempt 1 of the policy, now.
            return self.end_for_reset(now);
        }
        if !retryable {
            return self.close(final_status, now);
        }
        if let Some(deadline) = self.schedule_to_close_deadline()
            && next_at >= deadline
        {
            self.timeout_type = Some(TimeoutType::ScheduleToClose);
            return self.close(Status::TimedOut, now);
        }
        self.timeout_type = None;
        self.schedule_next(next_at);
        if stopped_for_pause {
            self.attempts_before_reset += 1;
        }
        Change::RetryScheduled { failed_attempt, at: next_at }
    }

    /// Puts the next attempt in the queue at `at`.
    pub(super) fn schedule_next(&mut self, at: Millis) {
        self.status = Status::Scheduled;
        self.attempt += 1;
        self.attempt_scheduled_at = at;
        self.started_at = None;
        self.worker = None;
        self.version = None;
        self.pending_async = false;
        self.last_heartbeat_at = None;
    }

    /// Asks the execution to stop. A scheduled one is cancelled at once; a
    /// started one is flagged (the attempt learns it from its next
    /// heartbeat) and closed as cancelled after the grace period at most.
    pub fn request_cancel(&mut self, now: Millis) -> Result<Change, Reject> {
        self.check_open()?;
        if self.status == Status::Scheduled {
            return Ok(self.close(Status::Cancelled, now));
        }
        if self.cancel_requested_at.is_some() {
            return Ok(Change::AlreadyDone);
        }
        self.cancel_requested_at = Some(now);
        Ok(Change::CancelRequested)
    }

    /// Ends the execution without asking the attempt.
    pub fn terminate(&mut self, reason: &str, now: Millis) -> Result<Change, Reject> {
        self.check_open()?;
        self.last_failure = Some(Failure::new(FailureSource::Terminated, "Terminated", reason));
        Ok(self.close(Status::Terminated, now))
    }

    /// Applies every deadline that has passed at `now`. Timers are not
    /// cancelled when state moves on: a stale one finds nothing due and
    /// returns `None`.
    pub fn on_timer(&mut self, now: Millis) -> Option<Change> {
        let due = |deadline: Option<Millis>| deadline.is_some_and(|d| now >= d);
        match self.status {
            Status::Scheduled => {
                if due(self.schedule_to_close_deadline()) {
                    return Some(self.time_out(TimeoutType::ScheduleToClose, now));
                }
                if due(self.schedule_to_start_deadline()) {
                    return Some(self.time_out(TimeoutType::ScheduleToStart, now));
                }
                None
            }
            Status::Started => {
                if due(self.schedule_to_close_deadline()) {
                    return Some(self.time_out(TimeoutType::ScheduleToClose, now));
                }
                if due(self.cancel_deadline()) {
                    self.last_failure = Some(Failure::new(
                        FailureSource::Cancelled,
                        "Cancelled",
                        "the attempt did not stop within the cancellation grace period",
                    ));
                    return Some(self.close(Status::Cancelled, now));
                }
                let attempt_timeout = if due(self.start_to_close_deadline()) {
                    Some(TimeoutType::StartToClose)
                } else if due(self.heartbeat_deadline()) {
                    Some(TimeoutType::Heartbeat)
                } else {
                    None
                };
                attempt_timeout.map(|t| self.retry_or_close(Failure::timeout(t), now))
            }
            _ => None,
        }
    }

    /// Closes as timed out without retry (schedule-to-close, schedule-to-start).
    fn time_out(&mut self, t: TimeoutType, now: Millis) -> Change {
        self.timeout_type = Some(t);
        self.last_failure = Some(Failure::timeout(t));
        self.close(Status::TimedOut, now)
    }
}
