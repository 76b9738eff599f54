//! How an attempt ended, as its worker reports it, and what that does to
//! the execution.

use super::execution::{Change, Execution, Millis, Progress, Reject};
use super::failure::{Failure, TimeoutType};
use crate::payload::Payload;

/// The worker's account of how an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed(Payload),
    /// Handed off: it will be completed externally.
    Pending,
    /// Acknowledged a cancellation request, with optional details.
    Cancelled(Option<Payload>),
    Failed(Failure),
    /// The worker stopped the attempt at its deadline: the earlier of
    /// start-to-close and schedule-to-close.
    DeadlinePassed,
}

/// An ended attempt: its outcome plus the last heartbeat details and
/// progress, which are kept whatever the outcome (`None`: unchanged; a
/// guest cannot clear its details).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEnd {
    pub outcome: Outcome,
    pub heartbeat_details: Option<Payload>,
    pub progress: Option<Progress>,
}

impl Execution {
    /// Records the end of `attempt`: its last heartbeat details and progress
    /// (if it is still the current one), then its outcome.
    pub fn end_attempt(&mut self, attempt: u32, end: AttemptEnd, now: Millis) -> Result<Change, Reject> {
        let current = self.attempt == attempt && !self.status.is_closed();
        let change = match end.outcome {
            Outcome::Completed(result) => self.complete(attempt, result, now),
            Outcome::Pending => self.set_pending(attempt),
            Outcome::Cancelled(details) => self.report_cancelled(attempt, details, now),
            Outcome::Failed(failure) => self.fail(attempt, failure, now),
            Outcome::DeadlinePassed => {
                // The worker's deadline and the durable timer mark the same moment.
                let t = if self.schedule_to_close_deadline().is_some_and(|d| now >= d) {
                    TimeoutType::ScheduleToClose
                } else {
                    TimeoutType::StartToClose
                };
                self.fail(attempt, Failure::timeout(t), now)
            }
        }?;
        // Kept whatever the outcome, once it is accepted.
        if current {
            if end.heartbeat_details.is_some() {
                self.heartbeat_details = end.heartbeat_details;
            }
            if end.progress.is_some() {
                self.progress = end.progress;
            }
        }
        Ok(change)
    }
}
