//! Every rule of the state machine, on a simulated clock (plain numbers).

use std::time::Duration;

use super::*;
use crate::payload::Payload;

const S: u64 = 1000; // one second in ms

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

pub(super) fn new_exec(timeouts: Timeouts, retry: RetryPolicy, now: Millis) -> Execution {
    Execution::new(
        NewExecution {
            activity_id: "a1".into(),
            run_id: "r1".into(),
            activity_type: "t".into(),
            task_queue: "q".into(),
            input: Payload::json(&1),
            priority: 3,
            request_id: Some("req-1".into()),
            timeouts,
            retry,
            cancel_grace: Duration::from_secs(5),
            pinned_version: None,
            trace: None,
            fairness: None,
        },
        now,
    )
    .unwrap()
}

pub(super) fn stc(n: u64) -> Timeouts {
    Timeouts { start_to_close: secs(n), ..Timeouts::default() }
}

fn app_error(msg: &str) -> Failure {
    Failure::new(FailureSource::Application, "Boom", msg)
}

fn started(timeouts: Timeouts, retry: RetryPolicy) -> Execution {
    let mut e = new_exec(timeouts, retry, 0);
    e.start("w", None, 0).unwrap();
    e
}

// ---- options ----

#[test]
fn one_of_schedule_to_close_and_start_to_close_is_required() {
    let err = Timeouts { heartbeat: secs(1), schedule_to_start: secs(1), ..Timeouts::default() }.resolve().unwrap_err();
    assert_eq!(err.to_string(), "one of schedule_to_close_timeout and start_to_close_timeout is required");
    // Zero counts as unset.
    let zero = Timeouts { start_to_close: Some(Duration::ZERO), ..Timeouts::default() };
    assert_eq!(zero.resolve(), Err(OptionsError::NoCloseTimeout));
}

#[test]
fn missing_timeouts_default_to_schedule_to_close_and_are_capped_by_it() {
    let t = Timeouts { schedule_to_close: secs(60), ..Timeouts::default() }.resolve().unwrap();
    assert_eq!((t.schedule_to_start, t.start_to_close, t.heartbeat), (secs(60), secs(60), None));

    let t = Timeouts {
        schedule_to_close: secs(60),
        schedule_to_start: secs(90),
        start_to_close: secs(120),
        heartbeat: secs(200),
    }
    .resolve()
    .unwrap();
    assert_eq!((t.schedule_to_start, t.start_to_close, t.heartbeat), (secs(60), secs(60), secs(60)));

    let t = Timeouts { start_to_close: secs(10), heartbeat: secs(30), ..Timeouts::default() }.resolve().unwrap();
    assert_eq!((t.schedule_to_close, t.schedule_to_start, t.heartbeat), (None, None, secs(10)));
}

#[test]
fn explicit_timeouts_override_defaults() {
    let defaults = Timeouts { start_to_close: secs(10), heartbeat: secs(2), ..Timeouts::default() };
    let given = Timeouts { start_to_close: secs(3), heartbeat: Some(Duration::ZERO), ..Timeouts::default() };
    let t = given.or(&defaults);
    assert_eq!((t.start_to_close, t.heartbeat), (secs(3), secs(2)));
}

#[test]
fn retry_delays_grow_by_the_coefficient_and_are_capped() {
    let p = RetryPolicy::default();
    let delays: Vec<u64> = (1..=9).map(|n| p.delay_after(n).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 100, 100]);
    assert_eq!(p.delay_after(10_000), Duration::from_secs(100));

    let p = RetryPolicy {
        initial_interval: Duration::from_millis(100),
        backoff_coefficient: 3.0,
        maximum_interval: secs(1),
        ..RetryPolicy::default()
    };
    let delays: Vec<u128> = (1..=4).map(|n| p.delay_after(n).as_millis()).collect();
    assert_eq!(delays, [100, 300, 900, 1000]);
}

#[test]
fn invalid_retry_policies_are_refused_with_the_field_named() {
    let p = RetryPolicy { backoff_coefficient: 0.5, ..RetryPolicy::default() };
    assert_eq!(p.validate().unwrap_err().to_string(), "retry_policy.backoff_coefficient must be at least 1.0, got 0.5");
    let p = RetryPolicy { backoff_coefficient: f64::NAN, ..RetryPolicy::default() };
    assert!(p.validate().is_err());
    let p =
        RetryPolicy { initial_interval: Duration::from_secs(10), maximum_interval: secs(5), ..RetryPolicy::default() };
    assert!(p.validate().unwrap_err().to_string().starts_with("retry_policy.maximum_interval"));
    let p = RetryPolicy { initial_interval: Duration::ZERO, ..RetryPolicy::default() };
    assert_eq!(p.validate(), Err(OptionsError::ZeroInitialInterval));
}

// ---- the happy path and completion ----

#[test]
fn scheduled_then_started_then_completed() {
    let mut e = new_exec(stc(10), RetryPolicy::default(), 100);
    assert_eq!((e.status, e.attempt, e.dispatchable_at()), (Status::Scheduled, 1, Some(100)));
    assert_eq!(e.start("w1", None, 150), Ok(Change::Started { attempt: 1 }));
    assert_eq!((e.status, e.started_at, e.worker.as_deref()), (Status::Started, Some(150), Some("w1")));
    assert_eq!(e.complete(1, Payload::json(&"ok"), 200), Ok(Change::Closed(Status::Completed)));
    assert_eq!((e.status, e.closed_at), (Status::Completed, Some(200)));
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn completing_twice_is_idempotent_only_for_the_same_result() {
    let mut e = started(stc(10), RetryPolicy::default());
    e.complete(1, Payload::json(&"ok"), 1).unwrap();
    assert_eq!(e.complete(1, Payload::json(&"ok"), 2), Ok(Change::AlreadyDone));
    assert_eq!(e.closed_at, Some(1));
    assert_eq!(
        e.complete(1, Payload::json(&"other"), 3).unwrap_err().to_string(),
        "activity a1 already completed with a different result"
    );
    assert_eq!(e.fail(1, app_error("late"), 4).unwrap_err().to_string(), "activity a1 is already completed");
}

#[test]
fn a_started_attempt_cannot_be_started_again() {
    let mut e = started(stc(10), RetryPolicy::default());
    assert_eq!(e.start("w2", None, 1), Err(Reject::NotDispatchable { activity_id: "a1".into() }));
}

// ---- retries ----

#[test]
fn a_retryable_failure_schedules_the_next_attempt_after_the_backoff() {
    let mut e = started(stc(10), RetryPolicy::default());
    assert_eq!(e.fail(1, app_error("x"), 2 * S), Ok(Change::RetryScheduled { failed_attempt: 1, at: 3 * S }));
    assert_eq!((e.status, e.attempt, e.dispatchable_at()), (Status::Scheduled, 2, Some(3 * S)));
    assert_eq!(e.last_failure.as_ref().unwrap().message, "x");
    // Not before the backoff has passed.
    assert!(e.start("w", None, 3 * S - 1).is_err());
    assert_eq!(e.start("w", None, 3 * S), Ok(Change::Started { attempt: 2 }));
    assert_eq!(e.fail(2, app_error("y"), 4 * S), Ok(Change::RetryScheduled { failed_attempt: 2, at: 6 * S }));
}

#[test]
fn non_retryable_errors_and_types_fail_at_once() {
    let mut e = started(stc(10), RetryPolicy::default());
    let mut f = app_error("bad");
    f.non_retryable = true;
    assert_eq!(e.fail(1, f, 1), Ok(Change::Closed(Status::Failed)));

    let retry = RetryPolicy { non_retryable_error_types: vec!["Boom".into()], ..RetryPolicy::default() };
    let mut e = started(stc(10), retry);
    assert_eq!(e.fail(1, app_error("bad"), 1), Ok(Change::Closed(Status::Failed)));
    // Exact match only.
    let retry = RetryPolicy { non_retryable_error_types: vec!["boom".into()], ..RetryPolicy::default() };
    let mut e = started(stc(10), retry);
    assert!(matches!(e.fail(1, app_error("bad"), 1), Ok(Change::RetryScheduled { .. })));
}

#[test]
fn maximum_attempts_bounds_the_retries() {
    let retry = RetryPolicy { maximum_attempts: 3, ..RetryPolicy::default() };
    let mut e = started(stc(10), retry);
    let mut now = 0;
    for attempt in 1..=2 {
        assert!(matches!(e.fail(attempt, app_error("x"), now), Ok(Change::RetryScheduled { .. })));
        now = e.attempt_scheduled_at;
        e.start("w", None, now).unwrap();
    }
    assert_eq!(e.fail(3, app_error("x"), now), Ok(Change::Closed(Status::Failed)));
    assert_eq!(e.attempt, 3);
}

#[test]
fn the_errors_own_next_retry_delay_overrides_the_policy() {
    let mut e = started(stc(10), RetryPolicy::default());
    let mut f = app_error("later");
    f.next_retry_delay = Some(Duration::from_secs(30));
    assert_eq!(e.fail(1, f, 0), Ok(Change::RetryScheduled { failed_attempt: 1, at: 30 * S }));

    // ...but maximum attempts still apply.
    let mut e = started(stc(10), RetryPolicy { maximum_attempts: 1, ..RetryPolicy::default() });
    let mut f = app_error("later");
    f.next_retry_delay = Some(Duration::from_secs(30));
    assert_eq!(e.fail(1, f, 0), Ok(Change::Closed(Status::Failed)));
}

#[test]
fn a_retry_that_would_start_after_schedule_to_close_times_the_execution_out() {
    let timeouts = Timeouts { schedule_to_close: secs(10), start_to_close: secs(5), ..Timeouts::default() };
    let mut e = started(timeouts, RetryPolicy { initial_interval: Duration::from_secs(4), ..RetryPolicy::default() });
    // Fails at 7s; next attempt would start at 11s > 10s.
    assert_eq!(e.fail(1, app_error("x"), 7 * S), Ok(Change::Closed(Status::TimedOut)));
    assert_eq!(e.timeout_type, Some(TimeoutType::ScheduleToClose));
    assert_eq!(e.last_failure.as_ref().unwrap().message, "x", "the cause is kept");

    // The error's own delay is bounded the same way.
    let timeouts = Timeouts { schedule_to_close: secs(10), start_to_close: secs(5), ..Timeouts::default() };
    let mut e = started(timeouts, RetryPolicy::default());
    let mut f = app_error("x");
    f.next_retry_delay = Some(Duration::from_secs(60));
    assert_eq!(e.fail(1, f, S), Ok(Change::Closed(Status::TimedOut)));
}

// ---- timeouts ----

#[test]
fn start_to_close_is_retryable_and_final_as_timed_out() {
    let mut e = started(stc(10), RetryPolicy { maximum_attempts: 2, ..RetryPolicy::default() });
    assert_eq!(e.next_deadline(), Some(10 * S));
    assert_eq!(e.on_timer(10 * S - 1), None);
    assert_eq!(e.on_timer(10 * S), Some(Change::RetryScheduled { failed_attempt: 1, at: 11 * S }));
    assert_eq!(e.last_failure.as_ref().unwrap().error_type, "StartToCloseTimeout");
    e.start("w", None, 11 * S).unwrap();
    assert_eq!(e.on_timer(21 * S), Some(Change::Closed(Status::TimedOut)));
    assert_eq!(e.timeout_type, Some(TimeoutType::StartToClose));
}

#[test]
fn heartbeat_timeout_fires_without_heartbeats_and_resets_with_each() {
    let timeouts = Timeouts { start_to_close: secs(100), heartbeat: secs(10), ..Timeouts::default() };
    let mut e = started(timeouts.clone(), RetryPolicy::default());
    assert_eq!(e.next_deadline(), Some(10 * S));
    // A heartbeat just before the timer moves the deadline; the timer set
    // for 10s then finds nothing due.
    e.heartbeat(1, None, 10 * S - 1).unwrap();
    assert_eq!(e.on_timer(10 * S), None);
    assert_eq!(e.next_deadline(), Some(20 * S - 1));
    assert!(matches!(e.on_timer(20 * S - 1), Some(Change::RetryScheduled { .. })));
    assert_eq!(e.last_failure.as_ref().unwrap().error_type, "HeartbeatTimeout");
}

#[test]
fn schedule_to_start_is_never_retried_and_restarts_per_attempt() {
    let timeouts = Timeouts { schedule_to_start: secs(5), start_to_close: secs(10), ..Timeouts::default() };
    let mut e = new_exec(timeouts.clone(), RetryPolicy::default(), 0);
    assert_eq!(e.on_timer(5 * S), Some(Change::Closed(Status::TimedOut)));
    assert_eq!(e.timeout_type, Some(TimeoutType::ScheduleToStart));

    // Attempt 2 becomes dispatchable at 3s (after the backoff); its 5s
    // budget counts from then.
    let mut e =
        new_exec(timeouts, RetryPolicy { initial_interval: Duration::from_secs(2), ..RetryPolicy::default() }, 0);
    e.start("w", None, 0).unwrap();
    e.fail(1, app_error("x"), S).unwrap();
    assert_eq!(e.on_timer(7 * S), None);
    assert_eq!(e.next_deadline(), Some(8 * S));
    assert_eq!(e.on_timer(8 * S), Some(Change::Closed(Status::TimedOut)));
}

#[test]
fn schedule_to_close_ends_a_running_attempt() {
    let timeouts = Timeouts { schedule_to_close: secs(10), ..Timeouts::default() };
    let mut e = started(timeouts, RetryPolicy::default());
    let change = e.on_timer(10 * S).unwrap();
    assert_eq!(change, Change::Closed(Status::TimedOut));
    assert!(change.ends_attempt());
    assert_eq!(e.timeout_type, Some(TimeoutType::ScheduleToClose));
}

#[test]
fn heartbeat_details_carry_to_the_next_attempt_and_into_the_final_timeout() {
    let timeouts = Timeouts { start_to_close: secs(10), ..Timeouts::default() };
    let mut e = started(timeouts, RetryPolicy { maximum_attempts: 2, ..RetryPolicy::default() });
    e.heartbeat(1, Some(Payload::json(&7)), S).unwrap();
    e.heartbeat(1, None, 2 * S).unwrap(); // no details: the previous ones stay
    e.on_timer(10 * S).unwrap();
    assert_eq!(e.heartbeat_details, Some(Payload::json(&7)));
    e.start("w", None, 11 * S).unwrap();
    e.on_timer(21 * S).unwrap();
    assert_eq!((e.status, e.heartbeat_details.clone()), (Status::TimedOut, Some(Payload::json(&7))));
}

#[test]
fn a_stale_attempt_is_refused() {
    let mut e = started(stc(10), RetryPolicy::default());
    e.on_timer(10 * S).unwrap();
    e.start("w", None, 11 * S).unwrap();
    let err = e.heartbeat(1, None, 12 * S).unwrap_err();
    assert_eq!(err.to_string(), "attempt 1 of activity a1 is stale: the execution is on attempt 2");
    assert!(e.complete(1, Payload::json(&1), 12 * S).is_err());
    assert_eq!(e.status, Status::Started);
}

#[test]
fn completion_racing_a_timeout_first_one_wins() {
    // The timer first: the late completion of attempt 1 is refused.
    let mut e = started(stc(10), RetryPolicy { maximum_attempts: 1, ..RetryPolicy::default() });
    e.on_timer(10 * S).unwrap();
    assert_eq!(e.complete(1, Payload::json(&1), 10 * S).unwrap_err().to_string(), "activity a1 is already timed-out");
    // The completion first: the timer finds nothing to do.
    let mut e = started(stc(10), RetryPolicy::default());
    e.complete(1, Payload::json(&1), 10 * S).unwrap();
    assert_eq!(e.on_timer(10 * S), None);
    assert_eq!(e.status, Status::Completed);
}

// ---- cancellation and termination ----

#[test]
fn cancelling_a_scheduled_execution_is_immediate_even_during_backoff() {
    let mut e = new_exec(stc(10), RetryPolicy::default(), 0);
    assert_eq!(e.request_cancel(1), Ok(Change::Closed(Status::Cancelled)));

    let mut e = started(stc(10), RetryPolicy::default());
    e.fail(1, app_error("x"), S).unwrap(); // in backoff until 2s
    assert_eq!(e.request_cancel(S + 1), Ok(Change::Closed(Status::Cancelled)));
    assert!(e.start("w", None, 2 * S).is_err());
}

#[test]
fn cancelling_a_started_attempt_is_told_on_its_next_heartbeat() {
    let mut e = started(stc(100), RetryPolicy::default());
    assert_eq!(e.heartbeat(1, None, S), Ok(Change::Heartbeat { cancel_requested: false }));
    assert_eq!(e.request_cancel(2 * S), Ok(Change::CancelRequested));
    assert_eq!(e.status, Status::Started);
    assert_eq!(e.heartbeat(1, None, 2 * S), Ok(Change::Heartbeat { cancel_requested: true }));
    assert_eq!(e.report_cancelled(1, Some(Payload::json(&"bye")), 3 * S), Ok(Change::Closed(Status::Cancelled)));
    assert_eq!(e.result, Some(Payload::json(&"bye")));
}

#[test]
fn an_attempt_ignoring_cancellation_is_cancelled_after_the_grace_period() {
    let mut e = started(stc(100), RetryPolicy::default());
    e.request_cancel(10 * S).unwrap();
    assert_eq!(e.next_deadline(), Some(15 * S));
    assert_eq!(e.on_timer(15 * S - 1), None);
    let change = e.on_timer(15 * S).unwrap();
    assert_eq!(change, Change::Closed(Status::Cancelled));
    assert!(change.ends_attempt(), "the engine interrupts the guest");
}

#[test]
fn a_failure_after_a_cancel_request_is_not_retried() {
    let mut e = started(stc(100), RetryPolicy::default());
    e.request_cancel(S).unwrap();
    assert_eq!(e.fail(1, app_error("x"), 2 * S), Ok(Change::Closed(Status::Cancelled)));
}

#[test]
fn terminate_ends_any_open_execution_and_nothing_closed() {
    let mut e = started(stc(100), RetryPolicy::default());
    assert_eq!(e.terminate("operator said so", S), Ok(Change::Closed(Status::Terminated)));
    assert_eq!(e.last_failure.as_ref().unwrap().message, "operator said so");
    assert_eq!(e.terminate("again", 2 * S).unwrap_err().to_string(), "activity a1 is already terminated");
    assert_eq!(e.request_cancel(2 * S).unwrap_err().to_string(), "activity a1 is already terminated");
}

// ---- async completion and host loss ----

#[test]
fn a_pending_attempt_stays_started_with_its_timeouts_running() {
    let timeouts = Timeouts { start_to_close: secs(100), heartbeat: secs(10), ..Timeouts::default() };
    let mut e = started(timeouts, RetryPolicy::default());
    assert_eq!(e.set_pending(1), Ok(Change::PendingAsync));
    assert_eq!((e.status, e.pending_async), (Status::Started, true));
    // An external heartbeat keeps it alive...
    e.heartbeat(1, None, 8 * S).unwrap();
    assert_eq!(e.on_timer(10 * S), None);
    // ...and its absence times the attempt out.
    assert!(matches!(e.on_timer(18 * S), Some(Change::RetryScheduled { .. })));
    assert!(!e.pending_async);
}

#[test]
fn a_lost_host_retries_running_attempts_but_not_pending_ones() {
    let mut e = started(stc(100), RetryPolicy::default());
    e.heartbeat(1, Some(Payload::json(&3)), S).unwrap();
    assert_eq!(e.host_lost(2 * S), Some(Change::RetryScheduled { failed_attempt: 1, at: 3 * S }));
    assert_eq!(e.heartbeat_details, Some(Payload::json(&3)));
    assert_eq!(e.last_failure.as_ref().unwrap().source, FailureSource::HostLost);

    let mut e = started(stc(100), RetryPolicy::default());
    e.set_pending(1).unwrap();
    assert_eq!(e.host_lost(2 * S), None);
    assert_eq!(e.status, Status::Started);
}

// ---- admission ----

#[test]
fn admission_follows_request_id_conflict_and_reuse_policies() {
    use ConflictPolicy::*;
    use ReusePolicy::*;
    assert_eq!(admit(None, None, Fail, RejectDuplicate), Admission::New);

    let running = started(stc(10), RetryPolicy::default());
    assert_eq!(
        admit(Some(&running), Some("req-1"), Fail, RejectDuplicate),
        Admission::Existing { run_id: "r1".into() }
    );
    assert!(
        matches!(admit(Some(&running), Some("req-2"), Fail, AllowDuplicate), Admission::Rejected(m) if m.contains("already running"))
    );
    assert_eq!(admit(Some(&running), None, UseExisting, AllowDuplicate), Admission::Existing { run_id: "r1".into() });

    let mut done = running.clone();
    done.complete(1, Payload::json(&1), 1).unwrap();
    assert_eq!(admit(Some(&done), None, Fail, AllowDuplicate), Admission::New);
    assert!(matches!(admit(Some(&done), None, Fail, AllowDuplicateFailedOnly), Admission::Rejected(_)));
    assert!(
        matches!(admit(Some(&done), None, Fail, RejectDuplicate), Admission::Rejected(m) if m.contains("rejects duplicates"))
    );

    let mut failed = running;
    failed.terminate("x", 1).unwrap();
    assert_eq!(admit(Some(&failed), None, Fail, AllowDuplicateFailedOnly), Admission::New);
}
