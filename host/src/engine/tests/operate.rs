//! Operators' actions through the real engine, on a manual clock: pause,
//! unpause, reset, update options, delete, batches and retention.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::activity::HistoryKind::*;
use crate::activity::{ResetRequest, Status};
use crate::engine::{BatchOp, OptionsChange, Target};

const S: Duration = Duration::from_secs(1);

#[tokio::test]
async fn pause_during_backoff_holds_the_retry_until_unpause() {
    let mut h = Harness::new("").await;
    h.start("p", input(), |_| {}).await;
    h.next_attempt().await.fail("Flaky");
    h.transition("p", RetryScheduled).await;
    h.engine.pause("p", None).await.unwrap();
    h.transition("p", Paused).await;
    h.advance(10 * S);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.attempts.try_recv().is_err(), "no attempt while paused, though the backoff is over");
    let e = h.engine.unpause("p", None, Duration::ZERO).await.unwrap();
    assert!(!e.paused);
    let a = h.next_attempt().await;
    assert_eq!(a.call.info.attempt, 2);
    a.complete(json!("ok"));
    h.transition("p", Closed(Status::Completed)).await;
    let err = h.engine.unpause("p", None, Duration::ZERO).await.unwrap_err();
    assert_eq!(err.to_string(), "activity p is already completed");
}

#[tokio::test]
async fn a_paused_running_attempt_finishes_and_heartbeats_say_paused() {
    let mut h = Harness::new("").await;
    h.start("r", input(), |_| {}).await;
    let a = h.next_attempt().await;
    h.engine.pause("r", None).await.unwrap();
    let target = Target::Id { activity_id: "r".into(), run_id: None };
    let answer = h.engine.heartbeat(&target, None).await.unwrap();
    assert!(answer.paused && !answer.cancel_requested && !answer.reset);
    a.fail("Boom");
    h.transition("r", RetryScheduled).await;
    h.advance(60 * S);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.attempts.try_recv().is_err(), "the retry waits for the unpause");
    assert_eq!(h.exec("r").await.status, Status::Scheduled);
}

#[tokio::test]
async fn reset_of_a_retrying_execution_dispatches_attempt_one_of_the_policy_now() {
    let mut h = Harness::new("").await;
    h.start("x", input(), |r| {
        r.retry = Some(crate::activity::RetryPolicy {
            initial_interval: Duration::from_secs(3600),
            maximum_attempts: 2,
            ..Default::default()
        })
    })
    .await;
    h.next_attempt().await.fail("Boom");
    h.transition("x", RetryScheduled).await;
    let e = h.engine.reset("x", None, ResetRequest::default()).await.unwrap();
    assert_eq!(e.policy_attempt(), 1);
    let a = h.next_attempt().await;
    assert_eq!(a.call.info.attempt, 1, "the guest sees attempt 1 again");
    a.fail("Boom");
    // Attempt 2 of the policy is allowed again.
    h.transition("x", RetryScheduled).await;
    assert_eq!(h.history("x").await.iter().filter(|k| *k == "reset").count(), 1);
}

#[tokio::test]
async fn a_reset_of_a_running_attempt_ends_it_at_its_next_heartbeat() {
    let mut h = Harness::new("").await;
    h.start("hb", input(), |_| {}).await;
    let a = h.next_attempt().await;
    let e = h.engine.reset("hb", None, ResetRequest::default()).await.unwrap();
    assert!(e.reset_pending.is_some());
    a.heartbeat(json!({"i": 1}));
    h.transition("hb", RetryScheduled).await;
    assert_eq!(interrupted_by(&a).await, InterruptReason::Timeout, "the reset attempt is stopped");
    let a2 = h.next_attempt().await;
    assert_eq!(a2.call.info.attempt, 1);
    assert_eq!(h.exec("hb").await.attempt, 2, "attempt ids stay unique");
}

#[tokio::test]
async fn update_options_moves_a_scheduled_execution_to_another_queue() {
    let mut h = Harness::new(
        "[activities.t2]\ncomponent = \"u.wasm\"\nqueues = [\"other\"]\nstart_to_close_timeout = \"9s\"\n",
    )
    .await;
    // Type t2 on a queue nobody serves for it: it waits.
    h.start("m", input(), |r| {
        r.activity_type = "t2".into();
        r.task_queue = Some("nowhere".into());
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.attempts.try_recv().is_err());
    let change = OptionsChange { task_queue: Some("other".into()), priority: Some(1), ..Default::default() };
    let e = h.engine.update_options("m", None, change).await.unwrap();
    assert_eq!((e.task_queue.as_str(), e.priority), ("other", 1));
    let a = h.next_attempt().await;
    assert_eq!(a.call.info.task_queue, "other");
    a.complete(json!(1));
    h.transition("m", Closed(Status::Completed)).await;
    assert!(h.history("m").await.contains(&"options-updated".to_string()));
}

#[tokio::test]
async fn delete_terminates_an_open_execution_and_removes_it() {
    let mut h = Harness::new("").await;
    h.start("d", input(), |_| {}).await;
    let a = h.next_attempt().await;
    h.engine.delete("d", None).await.unwrap();
    assert_eq!(interrupted_by(&a).await, InterruptReason::Terminated);
    assert!(h.store.get("d", None).await.unwrap().is_none());
    let err = h.engine.delete("d", None).await.unwrap_err();
    assert_eq!(err.to_string(), "no activity d");
}

#[tokio::test]
async fn a_batch_counts_first_then_applies_to_what_matches() {
    let mut h = Harness::new("").await;
    for id in ["b1", "b2", "b3"] {
        h.start(id, input(), |r| r.task_queue = Some("idle".into())).await;
    }
    h.start("other", input(), |r| r.task_queue = Some("idle2".into())).await;
    let dry = h.engine.batch(r#"queue = "idle" AND status = "scheduled""#, BatchOp::Pause, true).await.unwrap();
    assert_eq!((dry.matched, dry.applied), (3, 0));
    assert!(!h.exec("b1").await.paused, "a dry run changes nothing");
    let done = h.engine.batch(r#"queue = "idle""#, BatchOp::Pause, false).await.unwrap();
    assert_eq!((done.matched, done.applied, done.failed), (3, 3, 0));
    assert!(h.exec("b2").await.paused && !h.exec("other").await.paused);
    h.engine.terminate("b3", None, "x").await.unwrap();
    let unpaused =
        h.engine.batch(r#"queue = "idle""#, BatchOp::Unpause { jitter: Duration::ZERO }, false).await.unwrap();
    assert_eq!((unpaused.applied, unpaused.failed), (2, 1));
    assert_eq!(unpaused.errors[0], ("b3".to_string(), "activity b3 is already terminated".to_string()));
    let _ = &mut h;
}

#[tokio::test]
async fn retention_deletes_only_executions_closed_longer_ago_than_it() {
    let mut h = Harness::new("").await;
    h.start("old", input(), |_| {}).await;
    h.next_attempt().await.complete(json!(1));
    h.transition("old", Closed(Status::Completed)).await;
    h.advance(Duration::from_secs(6 * 24 * 3600));
    h.start("young", input(), |_| {}).await;
    h.next_attempt().await.complete(json!(2));
    h.transition("young", Closed(Status::Completed)).await;
    h.start("open", input(), |r| r.task_queue = Some("idle".into())).await;
    // Seven days after "old" closed (the default retention), one more minute
    // for the retention pass to come round.
    h.advance(Duration::from_secs(24 * 3600 + 61));
    tokio::time::timeout(Duration::from_secs(5), async {
        while h.store.get("old", None).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the old execution is deleted");
    assert!(h.store.get("young", None).await.unwrap().is_some());
    assert!(h.store.get("open", None).await.unwrap().is_some(), "open executions are never deleted");
}
