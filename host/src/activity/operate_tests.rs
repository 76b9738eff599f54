//! Pause, unpause, reset and option updates, on a simulated clock.

use std::time::Duration;

use super::tests::{new_exec, stc};
use super::*;
use crate::payload::Payload;

const S: u64 = 1000;

/// A new execution at time 0.
fn exec(timeouts: Timeouts, retry: RetryPolicy) -> Execution {
    new_exec(timeouts, retry, 0)
}

fn boom() -> Failure {
    Failure::new(FailureSource::Application, "Boom", "no")
}

#[test]
fn a_paused_execution_in_backoff_is_not_dispatched_until_unpaused() {
    let mut e = exec(stc(10), RetryPolicy::default());
    e.start("w", None, 0).unwrap();
    e.fail(1, boom(), S).unwrap(); // attempt 2 at 2 s
    assert_eq!(e.pause(), Ok(Change::Paused));
    assert_eq!(e.pause(), Ok(Change::AlreadyDone), "pausing twice changes nothing");
    assert_eq!(e.dispatchable_at(), None);
    assert!(matches!(e.start("w", None, 5 * S), Err(Reject::NotDispatchable { .. })));
    // Unpaused with a jitter: dispatchable then, whatever the backoff said.
    assert_eq!(e.unpause(Duration::from_millis(300), 9 * S), Ok(Change::Unpaused));
    assert_eq!(e.dispatchable_at(), Some(9 * S + 300));
    assert_eq!(e.unpause(Duration::ZERO, 9 * S).unwrap_err().to_string(), "activity a1 is not paused");
}

#[test]
fn a_paused_running_attempt_may_finish_and_its_retry_waits() {
    let timeouts = Timeouts { schedule_to_close: Some(Duration::from_secs(60)), ..stc(10) };
    let mut e = exec(timeouts, RetryPolicy::default());
    e.start("w", None, 0).unwrap();
    e.pause().unwrap();
    assert_eq!(e.status, Status::Started, "the running attempt goes on");
    assert_eq!(e.fail(1, boom(), S), Ok(Change::RetryScheduled { failed_attempt: 1, at: 2 * S }));
    assert_eq!(e.dispatchable_at(), None, "the retry waits for the unpause");
    // Schedule-to-close keeps running while paused; schedule-to-start does not.
    assert_eq!(e.next_deadline(), Some(60 * S));
    assert_eq!(e.on_timer(60 * S), Some(Change::Closed(Status::TimedOut)));
    assert_eq!(e.pause().unwrap_err().to_string(), "activity a1 is already timed-out");
}

#[test]
fn a_paused_attempt_may_also_complete() {
    let mut e = exec(stc(10), RetryPolicy::default());
    e.start("w", None, 0).unwrap();
    e.pause().unwrap();
    assert_eq!(e.complete(1, Payload::json(&"ok"), S), Ok(Change::Closed(Status::Completed)));
}

#[test]
fn reset_of_a_failed_and_retrying_execution_starts_the_count_over_now() {
    let retry = RetryPolicy { maximum_attempts: 3, ..RetryPolicy::default() };
    let mut e = exec(Timeouts { schedule_to_close: Some(Duration::from_secs(100)), ..stc(10) }, retry);
    e.start("w", None, 0).unwrap();
    e.heartbeat(1, Some(Payload::json(&7)), S / 2).unwrap();
    e.fail(1, boom(), S).unwrap();
    e.start("w", None, 3 * S).unwrap();
    e.fail(2, boom(), 4 * S).unwrap(); // attempt 3 (the last) at 6 s
    assert_eq!(e.policy_attempt(), 3);
    e.pause().unwrap();
    let req = ResetRequest { keep_paused: false, reset_heartbeat: true };
    assert_eq!(e.reset(req, 50 * S), Ok(Change::Reset { pending: false }));
    assert_eq!((e.attempt, e.policy_attempt()), (3, 1), "attempt ids stay unique; the policy counts from 1");
    assert_eq!(e.dispatchable_at(), Some(50 * S), "dispatchable now, and unpaused");
    assert_eq!(e.heartbeat_details, None);
    // Timeouts re-armed: schedule-to-close counts from the reset.
    assert_eq!(e.schedule_to_close_deadline(), Some(150 * S));
    // Three more attempts are allowed again.
    e.start("w", None, 50 * S).unwrap();
    assert!(matches!(e.fail(3, boom(), 51 * S), Ok(Change::RetryScheduled { .. })));
    e.start("w", None, 60 * S).unwrap();
    assert!(matches!(e.fail(4, boom(), 61 * S), Ok(Change::RetryScheduled { .. })));
    e.start("w", None, 70 * S).unwrap();
    assert_eq!(e.fail(5, boom(), 71 * S), Ok(Change::Closed(Status::Failed)));
}

#[test]
fn reset_can_keep_a_paused_execution_paused() {
    let mut e = exec(stc(10), RetryPolicy::default());
    e.pause().unwrap();
    e.reset(ResetRequest { keep_paused: true, reset_heartbeat: false }, S).unwrap();
    assert!(e.paused);
    assert_eq!(e.dispatchable_at(), None);
}

#[test]
fn a_running_attempt_is_reset_at_its_next_heartbeat() {
    let mut e = exec(stc(10), RetryPolicy::default());
    e.start("w", None, 0).unwrap();
    e.fail(1, boom(), S).unwrap();
    e.start("w", None, 2 * S).unwrap();
    assert_eq!(e.reset(ResetRequest::default(), 3 * S), Ok(Change::Reset { pending: true }));
    assert_eq!(e.status, Status::Started, "the running attempt is not stopped by the reset itself");
    let change = e.heartbeat(2, Some(Payload::json(&"half")), 4 * S).unwrap();
    assert_eq!(change, Change::RetryScheduled { failed_attempt: 2, at: 4 * S });
    assert!(change.ends_attempt(), "the engine interrupts the attempt");
    assert_eq!((e.attempt, e.policy_attempt()), (3, 1));
    assert_eq!(e.last_failure.as_ref().unwrap().source, FailureSource::Reset);
    assert_eq!(e.heartbeat_details, Some(Payload::json(&"half")), "details kept unless asked");
    assert!(e.reset_pending.is_none());
    assert!(e.heartbeat(2, None, 5 * S).is_err(), "the old attempt is stale");
}

#[test]
fn a_running_attempt_that_fails_with_a_reset_pending_is_retried_at_once_as_attempt_one() {
    let retry = RetryPolicy { maximum_attempts: 2, ..RetryPolicy::default() };
    let mut e = exec(stc(10), retry);
    e.start("w", None, 0).unwrap();
    e.fail(1, boom(), S).unwrap();
    e.start("w", None, 3 * S).unwrap();
    e.reset(ResetRequest::default(), 4 * S).unwrap();
    // Attempt 2 was the last one the policy allowed; the reset allows more.
    assert_eq!(e.fail(2, boom(), 5 * S), Ok(Change::RetryScheduled { failed_attempt: 2, at: 5 * S }));
    assert_eq!(e.policy_attempt(), 1);
    assert_eq!(e.last_failure.as_ref().unwrap().error_type, "Boom", "the attempt's own failure is kept");
}

#[test]
fn a_running_attempt_that_completes_with_a_reset_pending_completes() {
    let mut e = exec(stc(10), RetryPolicy::default());
    e.start("w", None, 0).unwrap();
    e.reset(ResetRequest::default(), S).unwrap();
    assert_eq!(e.complete(1, Payload::json(&1), 2 * S), Ok(Change::Closed(Status::Completed)));
}

#[test]
fn update_options_changes_queue_priority_and_timeouts_of_an_open_execution() {
    let mut e = exec(stc(10), RetryPolicy::default());
    let update = OptionsUpdate { task_queue: Some("other".into()), priority: Some(1), ..Default::default() };
    assert_eq!(e.update_options(update.clone()), Ok(Change::OptionsUpdated));
    assert_eq!((e.task_queue.as_str(), e.priority), ("other", 1));
    assert_eq!(e.update_options(update), Ok(Change::AlreadyDone), "the same options again change nothing");
    // New timeouts apply to the running attempt.
    e.start("w", None, 0).unwrap();
    let timeouts = stc(3).resolve().unwrap();
    e.update_options(OptionsUpdate { timeouts: Some(timeouts), ..Default::default() }).unwrap();
    assert_eq!(e.next_deadline(), Some(3 * S));
    e.complete(1, Payload::json(&1), S).unwrap();
    let err = e.update_options(OptionsUpdate { priority: Some(2), ..Default::default() }).unwrap_err();
    assert_eq!(err.to_string(), "activity a1 is already completed");
}

#[test]
fn a_start_uses_the_pinned_version_else_the_current_one() {
    let mut e = exec(stc(10), RetryPolicy::default());
    e.start("w", Some("v2"), 0).unwrap();
    assert_eq!(e.version.as_deref(), Some("v2"));
    e.fail(1, boom(), S).unwrap();
    assert_eq!(e.version, None, "a waiting attempt runs no version yet");
    e.pinned_version = Some("v1".into());
    e.start("w", Some("v3"), 10 * S).unwrap();
    assert_eq!(e.version.as_deref(), Some("v1"));
}

#[test]
fn an_attempt_that_stops_because_paused_does_not_count_and_waits_for_the_unpause() {
    let retry = RetryPolicy { maximum_attempts: 1, ..RetryPolicy::default() };
    let mut e = exec(stc(10), retry);
    e.start("w", None, 0).unwrap();
    e.pause().unwrap();
    let stop = Failure::new(FailureSource::Application, PAUSED_ERROR, "paused");
    assert_eq!(e.fail(1, stop, S), Ok(Change::RetryScheduled { failed_attempt: 1, at: S }));
    assert_eq!((e.attempt, e.policy_attempt()), (2, 1), "the stopped attempt is not counted");
    assert_eq!(e.dispatchable_at(), None);
    e.unpause(Duration::ZERO, 2 * S).unwrap();
    e.start("w", None, 2 * S).unwrap();
    // The one attempt the policy allows fails: the execution fails.
    assert_eq!(e.fail(2, boom(), 3 * S), Ok(Change::Closed(Status::Failed)));
    // A "Paused" error from an execution that is not paused counts as any error.
    let mut e = exec(stc(10), RetryPolicy { maximum_attempts: 1, ..RetryPolicy::default() });
    e.start("w", None, 0).unwrap();
    let stop = Failure::new(FailureSource::Application, PAUSED_ERROR, "paused");
    assert_eq!(e.fail(1, stop, S), Ok(Change::Closed(Status::Failed)));
}
