//! Hosts sharing a store: leases, taking over a host that is gone, leaving
//! cleanly, fairness keys at the engine's boundary.

use std::time::Duration;

use super::*;
use crate::activity::Fairness;
use crate::store::Store as _;

#[tokio::test]
async fn a_host_whose_lease_ends_has_its_started_attempts_retried_by_another() {
    let h = Harness::new("").await;
    // A host "ghost" took an attempt (heartbeating), then died: its lease
    // is never renewed again.
    h.store.renew_lease("ghost", T0 + 5_000).await.unwrap();
    h.start("x", input(), |r| r.task_queue = Some("ghostq".into())).await;
    let claimed = h.store.claim("ghostq", None, "ghost/wasm", Default::default(), 1, T0).await.unwrap();
    let mut e = claimed[0].value.clone();
    e.heartbeat(1, Some(Payload::json(&"page 7")), T0 + 10).unwrap();
    h.store.update(&e, claimed[0].version, None, &[]).await.unwrap();

    // Not yet expired: nothing happens.
    h.advance(Duration::from_secs(4));
    h.engine.take_over_expired().await.unwrap();
    assert_eq!(h.exec("x").await.status, Status::Started);
    // Expired: a later round of this host's lease loop takes it over (the
    // clock moves on as time would, whenever the loop looks): its attempt
    // is retried, then the host is forgotten.
    let ghost_known = async || h.store.expired_hosts(u64::MAX / 2).await.unwrap().contains(&"ghost".to_string());
    let e = tokio::time::timeout(PATIENCE, async {
        loop {
            let e = h.exec("x").await;
            if e.status == Status::Scheduled && !ghost_known().await {
                return e;
            }
            h.advance(Duration::from_millis(500));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the lost attempt is retried and the ghost forgotten");
    assert_eq!(e.attempt, 2);
    assert_eq!(e.last_failure.as_ref().map(|f| f.error_type.as_str()), Some("HostLost"));
    assert_eq!(e.heartbeat_details, Some(Payload::json(&"page 7")), "the next attempt resumes from the details");
    assert!(h.store.expired_hosts(h.engine.now()).await.unwrap().is_empty(), "this host renews its own lease");
}

#[tokio::test]
async fn a_host_leaving_records_its_interrupted_attempts_as_lost_at_once() {
    let mut h = Harness::new("").await;
    h.start("x", input(), |_| {}).await;
    let a = h.next_attempt().await;
    a.heartbeat(json!("half"));
    h.heartbeat_committed("x", json!("half")).await;
    h.engine.shutdown(Duration::ZERO).await;
    assert_eq!(interrupted_by(&a).await, InterruptReason::Shutdown);
    let e = h.exec("x").await;
    assert_eq!((e.status, e.attempt), (Status::Scheduled, 2), "any host may retry it now");
    assert_eq!(e.heartbeat_details, Some(Payload::json(&"half")));
    assert!(h.store.expired_hosts(u64::MAX / 2).await.unwrap().is_empty(), "its lease ended");
}

#[tokio::test]
async fn a_start_carries_its_fairness_key_and_bad_ones_are_refused() {
    let h = Harness::new("[queues.q]\nslots = 1\n").await;
    h.start("x", input(), |r| {
        r.fairness_key = Some("tenant-1".into());
        r.fairness_weight = Some(2.5);
    })
    .await;
    assert_eq!(h.exec("x").await.fairness, Some(Fairness { key: "tenant-1".into(), weight: 2.5 }));
    let refused = |key: Option<&str>, weight: Option<f64>| {
        let req = StartRequest {
            activity_type: "t".into(),
            fairness_key: key.map(str::to_string),
            fairness_weight: weight,
            ..Default::default()
        };
        let engine = h.engine.clone();
        async move { engine.start_activity(req).await.unwrap_err().to_string() }
    };
    assert_eq!(refused(Some("k"), Some(0.0)).await, "fairness_weight must be 0.001 to 1000, got 0");
    assert_eq!(refused(Some("k"), Some(1e6)).await, "fairness_weight must be 0.001 to 1000, got 1000000");
    assert_eq!(refused(None, Some(2.0)).await, "fairness_weight needs a fairness_key");
    assert_eq!(refused(Some(""), None).await, "fairness_key must not be empty");
    let long = "k".repeat(300);
    assert_eq!(refused(Some(&long), None).await, "fairness_key is 300 bytes, over the limit of 256");
}
