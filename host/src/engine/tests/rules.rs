//! Retries, heartbeat timeouts, cancel grace, timers and recovery, through
//! the real engine on a manual clock.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::activity::{HistoryKind::*, TimeoutType};
use crate::engine::Clock;
use crate::engine::Target;
use crate::store::LogPage;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_failed_attempt_is_retried_after_its_backoff_and_resumes_from_its_heartbeat_details() {
    let mut h = Harness::new("").await;
    h.start("a", input(), |r| r.priority = Some(1)).await;
    let a1 = h.next_attempt().await;
    assert_eq!((a1.call.info.attempt, a1.input()), (1, input()));
    a1.heartbeat(json!({"at": 3}));
    h.heartbeat_committed("a", json!({"at": 3})).await;
    a1.fail("Flaky");
    assert_eq!(h.transition("a", RetryScheduled).await, Status::Scheduled);
    assert_eq!(h.exec("a").await.attempt_scheduled_at, T0 + 1000, "the default backoff is 1 s");

    // 1 ms before the backoff ends, a later, lower-priority start on the
    // same queue is dispatched first: the retry is not due yet.
    h.advance(999 * MS);
    h.start("probe", input(), |r| r.priority = Some(5)).await;
    let probe = h.next_attempt().await;
    assert_eq!(probe.call.info.activity_id, "probe");
    probe.complete(json!(null));

    h.advance(MS);
    let a2 = h.next_attempt().await;
    assert_eq!(a2.call.info.attempt, 2);
    assert_eq!(a2.call.last_heartbeat, Some(Payload::json(&json!({"at": 3}))));
    a2.complete(json!("done"));
    assert_eq!(h.transition("a", Closed(Status::Completed)).await, Status::Completed);
    assert_eq!(h.history("a").await, ["scheduled", "started", "retry-scheduled", "started", "completed"]);
    assert_eq!(h.exec("a").await.result, Some(Payload::json(&"done")));
}

#[tokio::test]
async fn the_backoff_grows_by_the_coefficient_and_attempts_run_out() {
    let mut h = Harness::new("").await;
    h.start("b", input(), |r| {
        r.retry = Some(crate::activity::RetryPolicy {
            initial_interval: 2 * S,
            backoff_coefficient: 3.0,
            maximum_attempts: 3,
            ..Default::default()
        })
    })
    .await;
    for (attempt, backoff) in [(1, 2 * S), (2, 6 * S)] {
        let a = h.next_attempt().await;
        assert_eq!(a.call.info.attempt, attempt);
        a.fail("Flaky");
        h.transition("b", RetryScheduled).await;
        assert_eq!(h.exec("b").await.attempt_scheduled_at, h.clock.now() + backoff.as_millis() as u64);
        h.advance(backoff);
    }
    h.next_attempt().await.fail("Flaky");
    assert_eq!(h.transition("b", Closed(Status::Failed)).await, Status::Failed);
    let e = h.exec("b").await;
    assert_eq!((e.attempt, e.last_failure.unwrap().error_type.as_str()), (3, "Flaky"));
}

#[tokio::test]
async fn external_heartbeats_keep_a_pending_attempt_alive_and_their_absence_times_it_out() {
    let mut h = Harness::new("").await;
    h.start("w", input(), |r| {
        r.timeouts.heartbeat = Some(10 * S);
        no_retries(r);
    })
    .await;
    h.next_attempt().await.finish(AttemptOutcome::Pending);
    h.transition("w", PendingAsync).await;
    let target = Target::Id { activity_id: "w".into(), run_id: None };
    // 40 s of heartbeats every 8 s: well past the 10 s heartbeat timeout.
    for i in 0..5 {
        h.advance(8 * S);
        let cancel = h.engine.heartbeat(&target, Some(Payload::json(&json!({"beat": i})))).await.unwrap();
        assert!(!cancel.cancel_requested);
    }
    assert_eq!(h.exec("w").await.status, Status::Started, "still alive while heartbeats come");
    // Silence: the heartbeat timeout ends it and reports the last details.
    h.advance(10 * S);
    assert_eq!(h.transition("w", Closed(Status::TimedOut)).await, Status::TimedOut);
    let e = h.exec("w").await;
    assert_eq!(e.timeout_type, Some(TimeoutType::Heartbeat));
    assert_eq!(e.heartbeat_details, Some(Payload::json(&json!({"beat": 4}))));
}

#[tokio::test]
async fn a_heartbeat_timeout_interrupts_a_running_attempt_and_the_retry_resumes() {
    let mut h = Harness::new("").await;
    h.start("hb", input(), |r| r.timeouts.heartbeat = Some(5 * S)).await;
    let a1 = h.next_attempt().await;
    a1.heartbeat(json!({"i": 7}));
    h.heartbeat_committed("hb", json!({"i": 7})).await;
    h.advance(5 * S);
    h.transition("hb", RetryScheduled).await;
    assert_eq!(interrupted_by(&a1).await, InterruptReason::HeartbeatTimeout);
    h.advance(S);
    let a2 = h.next_attempt().await;
    assert_eq!(a2.call.last_heartbeat, Some(Payload::json(&json!({"i": 7}))));
    a2.complete(json!(1));
    h.transition("hb", Closed(Status::Completed)).await;
}

#[tokio::test]
async fn heartbeats_are_persisted_at_most_every_interval_and_the_latest_is_never_lost() {
    let mut h = Harness::new("").await;
    h.start("t", input(), |_| {}).await;
    let a = h.next_attempt().await;
    a.heartbeat(json!(1));
    h.heartbeat_committed("t", json!(1)).await;
    a.heartbeat(json!(2));
    a.heartbeat(json!(3));
    h.heartbeat_seen("t", json!(3)).await;
    assert_eq!(h.exec("t").await.heartbeat_details, Some(Payload::json(&json!(1))), "within the interval");
    // The trailing flush, one interval (1 s) after the first, has the latest.
    h.advance(S);
    h.heartbeat_committed("t", json!(3)).await;
    a.heartbeat(json!(4));
    a.complete(json!("ok"));
    h.transition("t", Closed(Status::Completed)).await;
    assert_eq!(h.exec("t").await.heartbeat_details, Some(Payload::json(&json!(4))));
}

#[tokio::test]
async fn a_guest_that_ignores_a_cancel_request_is_interrupted_after_the_grace_period() {
    let mut h = Harness::new("").await;
    h.start("c", input(), |r| r.cancel_grace = Some(5 * S)).await;
    let a = h.next_attempt().await;
    assert_eq!(h.engine.request_cancel("c", None).await.unwrap(), Status::Started);
    assert!(a.heartbeat(json!({"i": 1})), "the guest learns it from its next heartbeat");
    // Asking again changes nothing.
    assert_eq!(h.engine.request_cancel("c", None).await.unwrap(), Status::Started);
    h.advance(5 * S);
    assert_eq!(h.transition("c", Closed(Status::Cancelled)).await, Status::Cancelled);
    assert_eq!(interrupted_by(&a).await, InterruptReason::Cancelled);
    assert_eq!(h.history("c").await, ["scheduled", "started", "cancel-requested", "cancelled"]);
}

#[tokio::test]
async fn a_start_to_close_timeout_fires_on_the_timer_and_interrupts_the_attempt() {
    let mut h = Harness::new("").await;
    h.start("s", input(), |r| {
        r.timeouts = stc(30);
        no_retries(r);
    })
    .await;
    let a = h.next_attempt().await;
    assert_eq!(a.call.timeout, Some(30 * S));
    h.advance(30 * S);
    assert_eq!(h.transition("s", Closed(Status::TimedOut)).await, Status::TimedOut);
    assert_eq!(interrupted_by(&a).await, InterruptReason::Timeout);
    assert_eq!(h.exec("s").await.timeout_type, Some(TimeoutType::StartToClose));
}

#[tokio::test]
async fn a_schedule_to_start_timeout_closes_an_attempt_nobody_took() {
    let mut h = Harness::new("").await;
    h.start("n", input(), |r| {
        r.task_queue = Some("nobody-serves-this".into());
        r.timeouts.schedule_to_start = Some(5 * S);
    })
    .await;
    h.advance(5 * S);
    assert_eq!(h.transition("n", Closed(Status::TimedOut)).await, Status::TimedOut);
    assert_eq!(h.exec("n").await.timeout_type, Some(TimeoutType::ScheduleToStart));
}

#[tokio::test]
async fn recovery_retries_the_attempts_this_host_ran_and_keeps_pending_ones_waiting() {
    let mut h = Harness::new("").await;
    h.start("running", input(), |_| {}).await;
    let r = h.next_attempt().await;
    r.heartbeat(json!({"done": 5}));
    h.heartbeat_committed("running", json!({"done": 5})).await;
    h.start("pending", input(), |_| {}).await;
    h.next_attempt().await.finish(AttemptOutcome::Pending);
    h.transition("pending", PendingAsync).await;
    // The host stops without recording its running attempt (as in a crash).
    h.engine.halt(Duration::ZERO).await;
    assert_eq!(h.exec("running").await.status, Status::Started);

    let Harness { dir, config, store, .. } = h;
    let mut h = Harness::on(dir, config, store).await;
    assert_eq!(h.exec("running").await.last_failure.unwrap().error_type, "HostLost");
    h.advance(S);
    let a2 = h.next_attempt().await;
    assert_eq!((a2.call.info.activity_id.as_str(), a2.call.info.attempt), ("running", 2));
    assert_eq!(a2.call.last_heartbeat, Some(Payload::json(&json!({"done": 5}))));
    let p = h.exec("pending").await;
    assert_eq!((p.status, p.attempt, p.pending_async), (Status::Started, 1, true));
    let target = Target::Id { activity_id: "pending".into(), run_id: None };
    h.engine.complete(&target, Payload::json(&"late")).await.unwrap();
    assert_eq!(h.exec("pending").await.status, Status::Completed);
}

#[tokio::test]
async fn an_attempts_logs_are_committed_with_its_outcome_and_bounded() {
    let mut h = Harness::new("").await;
    h.start("l", input(), |_| {}).await;
    let a = h.next_attempt().await;
    for i in 0..5000 {
        a.log(&format!("line {i}"));
    }
    a.complete(json!("ok"));
    h.transition("l", Closed(Status::Completed)).await;
    // Committed with the outcome: there as soon as the transition is.
    let page = |token| async { h.store.describe("l", None, LogPage { token, size: 1000 }).await.unwrap().unwrap() };
    let first = page(None).await;
    let (logs, next) = (first.logs, first.next_logs);
    assert_eq!((logs.len(), logs[999].message.as_str()), (1000, "line 999"));
    // Read in pages: the rest follows the first page's token.
    let second = page(next).await;
    let (rest, end) = (second.logs, second.next_logs);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].message, "4000 more log records (36000 bytes) were not kept: at most 1000 per attempt");
    assert_eq!(end, None);
}
