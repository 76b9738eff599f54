//! Eager starts: a start on an idle queue with a free slot is started in
//! its own commit; otherwise it waits in the backlog, in order.

use std::sync::atomic::Ordering;

use super::*;

/// Waits until the dispatcher of `queue` has found it empty.
async fn idle(h: &Harness, queue: &str) {
    let q = h.engine.registry.queue(queue).expect("a served queue");
    tokio::time::timeout(PATIENCE, async {
        while !q.idle.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the dispatcher finds the queue empty");
}

#[tokio::test]
async fn a_start_on_an_idle_queue_with_a_free_slot_is_started_in_its_own_commit() {
    let mut h = Harness::new("").await;
    idle(&h, "q").await;
    h.start("a", input(), |_| {}).await;
    // Inserted started: one commit (version 1), no claim by the dispatcher.
    let v = h.store.get("a", None).await.unwrap().unwrap();
    let e = &v.value;
    assert_eq!((e.status, e.started_at, e.worker.as_deref()), (Status::Started, Some(T0), Some("h1/wasm")));
    assert_eq!(v.version, 1);
    assert_eq!(h.history("a").await, ["scheduled", "started"]);
    let a = h.next_attempt().await;
    assert_eq!((a.call.info.activity_id.as_str(), a.call.info.attempt), ("a", 1));
    a.complete(json!("done"));
    assert_eq!(h.transition("a", HistoryKind::Closed(Status::Completed)).await, Status::Completed);
    assert_eq!(h.history("a").await, ["scheduled", "started", "completed"]);
}

#[tokio::test]
async fn a_start_without_a_free_slot_waits_in_the_backlog_and_runs_in_order() {
    let mut h = Harness::new("[queues.q]\nslots = 1\n").await;
    idle(&h, "q").await;
    h.start("first", input(), |_| {}).await;
    let first = h.next_attempt().await;
    h.start("second", input(), |_| {}).await;
    h.start("third", input(), |_| {}).await;
    assert_eq!(h.exec("second").await.status, Status::Scheduled, "the only slot is taken");
    assert_eq!(h.exec("third").await.status, Status::Scheduled);
    first.complete(json!(1));
    let second = h.next_attempt().await;
    assert_eq!(second.call.info.activity_id, "second");
    second.complete(json!(2));
    assert_eq!(h.next_attempt().await.call.info.activity_id, "third");
}
