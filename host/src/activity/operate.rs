//! What operators do to an execution, with Temporal's semantics: pause,
//! unpause, reset and update its options. Like every transition, each
//! method takes `now` and returns the `Change` to record.

use std::time::Duration;

use super::execution::{Change, Execution, Millis, Reject, ResetRequest, Status};
use super::failure::{Failure, FailureSource};
use super::options::{RetryPolicy, Timeouts};
use super::time::after;

/// New options for an open execution; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptionsUpdate {
    pub task_queue: Option<String>,
    /// Already resolved (`Timeouts::resolve`) by the caller.
    pub timeouts: Option<Timeouts>,
    /// Already validated.
    pub retry: Option<RetryPolicy>,
    pub priority: Option<u8>,
}

impl Execution {
    /// No new attempt is dispatched until unpaused. A running attempt may
    /// finish; if it fails, its retry waits paused. Schedule-to-close keeps
    /// running; schedule-to-start does not while paused.
    pub fn pause(&mut self) -> Result<Change, Reject> {
        self.check_open()?;
        if self.paused {
            return Ok(Change::AlreadyDone);
        }
        self.paused = true;
        Ok(Change::Paused)
    }

    /// Lets the execution be dispatched again: a waiting attempt becomes
    /// dispatchable after `jitter` (its schedule-to-start re-armed from then),
    /// whatever backoff it was in.
    pub fn unpause(&mut self, jitter: Duration, now: Millis) -> Result<Change, Reject> {
        self.check_open()?;
        if !self.paused {
            return Err(Reject::NotPaused { activity_id: self.activity_id.clone() });
        }
        self.paused = false;
        if self.status == Status::Scheduled {
            self.attempt_scheduled_at = after(now, jitter);
        }
        Ok(Change::Unpaused)
    }

    /// Starts the retry count over: the next attempt is attempt 1 of the
    /// policy, dispatchable now, with every timeout re-armed. A waiting
    /// execution is reset at once; a running attempt at its next heartbeat
    /// (which ends it) or its end (a failure is then retried at once).
    pub fn reset(&mut self, req: ResetRequest, now: Millis) -> Result<Change, Reject> {
        self.check_open()?;
        if self.status == Status::Started {
            self.reset_pending = Some(req);
            return Ok(Change::Reset { pending: true });
        }
        self.reset_pending = Some(req);
        self.apply_reset(now);
        self.attempt_scheduled_at = now;
        Ok(Change::Reset { pending: false })
    }

    /// Ends the running attempt for the pending reset and schedules the next
    /// as attempt 1 of the policy, now.
    pub(super) fn end_for_reset(&mut self, now: Millis) -> Change {
        let failed_attempt = self.attempt;
        self.timeout_type = None;
        self.schedule_next(now);
        self.apply_reset(now);
        Change::RetryScheduled { failed_attempt, at: now }
    }

    /// The heartbeat of an attempt with a reset pending: the attempt ends.
    pub(super) fn reset_at_heartbeat(&mut self, now: Millis) -> Change {
        self.last_failure =
            Some(Failure::new(FailureSource::Reset, "Reset", "an operator reset the activity while this attempt ran"));
        self.end_for_reset(now)
    }

    /// The reset's effects on a waiting execution.
    fn apply_reset(&mut self, now: Millis) {
        let req = self.reset_pending.take().unwrap_or_default();
        self.attempts_before_reset = self.attempt - 1;
        self.rearmed_at = Some(now);
        if req.reset_heartbeat {
            self.heartbeat_details = None;
        }
        if !req.keep_paused {
            self.paused = false;
        }
    }

    /// Applies new options. A new task queue, priority or retry policy
    /// counts from the next attempt; new timeouts apply to the running
    /// attempt too (its deadlines are recomputed from its start).
    pub fn update_options(&mut self, update: OptionsUpdate) -> Result<Change, Reject> {
        self.check_open()?;
        let OptionsUpdate { task_queue, timeouts, retry, priority } = update;
        let before = (self.task_queue.clone(), self.timeouts.clone(), self.retry.clone(), self.priority);
        if let Some(q) = task_queue {
            self.task_queue = q;
        }
        if let Some(t) = timeouts {
            self.timeouts = t;
        }
        if let Some(r) = retry {
            self.retry = r;
        }
        if let Some(p) = priority {
            self.priority = p;
        }
        if before == (self.task_queue.clone(), self.timeouts.clone(), self.retry.clone(), self.priority) {
            return Ok(Change::AlreadyDone);
        }
        Ok(Change::OptionsUpdated)
    }
}
