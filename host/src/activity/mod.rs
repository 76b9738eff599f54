//! The activity state machine: executions, their options and every
//! transition, with Temporal's semantics (the product design's §4). Pure and
//! clock-injected: the caller passes `now`, so every rule is unit-tested
//! with a simulated clock.

mod admission;
mod execution;
mod failure;
mod history;
mod operate;
#[cfg(test)]
mod operate_tests;
mod options;
mod outcome;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
mod time;
mod trace;

pub use admission::{Admission, ConflictPolicy, ReusePolicy, admit};
pub use execution::{Change, Execution, Fairness, Millis, NewExecution, Progress, Reject, ResetRequest, Status};
pub use failure::{Failure, FailureSource, PAUSED_ERROR, TimeoutType};
pub use history::{HistoryEntry, HistoryKind, Transition, record};
pub use operate::OptionsUpdate;
pub use options::{OptionsError, RetryPolicy, Timeouts};
pub use outcome::{AttemptEnd, Outcome};
pub use time::{MAX_DURATION, MAX_MILLIS, after, check_duration, millis};
pub use trace::{TraceContext, new_span_id};
