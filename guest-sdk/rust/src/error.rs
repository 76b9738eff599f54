//! The error an activity returns to end its attempt without a result.

use std::time::Duration;

use serde::Serialize;

use crate::bindings::exports::sluice::activity::activity::Outcome;
use crate::bindings::sluice::activity::types::Payload;

/// Ends an attempt without a result: an application failure, a request to
/// complete the activity later (pending), or an acknowledged cancellation.
#[derive(Debug)]
pub struct ActivityError(Kind);

#[derive(Debug)]
enum Kind {
    Failed {
        message: String,
        error_type: String,
        non_retryable: bool,
        details: Option<Payload>,
        next_retry_delay: Option<Duration>,
    },
    Pending,
    Cancelled(Option<Payload>),
}

impl ActivityError {
    /// A retryable application error with a machine-readable type (matched
    /// against the retry policy's non-retryable types) and a message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ActivityError(Kind::Failed {
            message: message.into(),
            error_type: error_type.into(),
            non_retryable: false,
            details: None,
            next_retry_delay: None,
        })
    }

    /// A retryable application error with only a message.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new("", message)
    }

    /// Marks the error non-retryable: the execution fails without retrying.
    pub fn non_retryable(mut self) -> Self {
        if let Kind::Failed { non_retryable, .. } = &mut self.0 {
            *non_retryable = true;
        }
        self
    }

    /// Attaches structured details for the caller. Details that cannot be
    /// encoded as JSON are replaced by a note saying so.
    pub fn with_details<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        let payload =
            crate::encode(value).unwrap_or_else(|_| crate::encode("details could not be encoded as JSON").unwrap());
        match &mut self.0 {
            Kind::Failed { details, .. } => *details = Some(payload),
            Kind::Cancelled(details) => *details = Some(payload),
            Kind::Pending => {}
        }
        self
    }

    /// Overrides the retry policy's delay before the next attempt.
    pub fn with_next_retry_delay(mut self, delay: Duration) -> Self {
        if let Kind::Failed { next_retry_delay, .. } = &mut self.0 {
            *next_retry_delay = Some(delay);
        }
        self
    }

    /// Leaves the attempt started: another system completes it later using
    /// the task token (see [`crate::Context::task_token`]) or the activity id.
    pub fn pending() -> Self {
        ActivityError(Kind::Pending)
    }

    /// Acknowledges a cancellation request: the execution ends as cancelled.
    pub fn cancelled() -> Self {
        ActivityError(Kind::Cancelled(None))
    }

    /// The execution was paused: the attempt stops with error type `Paused`,
    /// which the host does not count against the retry policy; the next
    /// attempt runs once it is unpaused.
    pub fn paused() -> Self {
        ActivityError::new("Paused", "the execution was paused; the attempt stopped and resumes when unpaused")
    }

    /// True for the error returned by [`ActivityError::cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self.0, Kind::Cancelled(_))
    }

    /// True for the error returned by [`ActivityError::pending`].
    pub fn is_pending(&self) -> bool {
        matches!(self.0, Kind::Pending)
    }

    pub(crate) fn into_outcome(self) -> Outcome {
        match self.0 {
            Kind::Failed { message, error_type, non_retryable, details, next_retry_delay } => {
                Outcome::Failed(crate::application_error(message, error_type, non_retryable, details, next_retry_delay))
            }
            Kind::Pending => Outcome::Pending,
            Kind::Cancelled(details) => Outcome::Cancelled(details),
        }
    }
}

/// Any error converts with `?` into a retryable application error whose type
/// is the error's Rust type name and whose message is its `Display` text.
impl<E: std::error::Error> From<E> for ActivityError {
    fn from(err: E) -> Self {
        ActivityError::new(std::any::type_name::<E>(), err.to_string())
    }
}
