//! Crash safety: `sluice serve` killed with SIGKILL mid-flight, restarted on
//! the same store, finishes every accepted execution, none lost.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::server::*;
use serde_json::json;
use sluice::api::pb;

const STEPS: u64 = 20;

async fn all_closed(server: &Server, ids: &[String], within: Duration) -> Vec<pb::ActivityExecution> {
    let mut c = server.activities().await;
    let deadline = Instant::now() + within;
    loop {
        let mut closed = Vec::new();
        for id in ids {
            let e = describe(&mut c, id).await.execution.unwrap();
            if e.close_time.is_some() {
                closed.push(e);
            }
        }
        if closed.len() == ids.len() {
            return closed;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} executions never closed:\n{}",
            ids.len() - closed.len(),
            ids.len(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn crash_round(round: usize, kill_after: Duration) {
    let (mut server, dir) = Server::start("");
    // A pending-async attempt must survive the crash and still accept its completion.
    let mut c = server.activities().await;
    c.start_activity(start_req("send-email", "mail", json!({"to": "a@b.c", "subject": "s"}))).await.unwrap();

    let kill_at = Instant::now() + kill_after;
    let starter = {
        let addr = server.addr.clone();
        tokio::spawn(async move {
            let s = ServerRef { addr };
            s.start_many(round, 120).await
        })
    };
    tokio::time::sleep_until(kill_at.into()).await;
    server.kill();
    let ids = starter.await.unwrap();
    assert!(!ids.is_empty(), "round {round}: nothing was accepted before the kill");

    let server = Server::start_in(dir.path());
    // Every execution in the store: the accepted ones, plus any whose start
    // committed just before the kill, before its answer reached us.
    let mut c = server.activities().await;
    let mut stored = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_activities(pb::ListActivitiesRequest {
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        stored.extend(page.executions.into_iter().map(|e| e.activity_id).filter(|id| id != "mail"));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "one run per id");
    for id in &ids {
        assert!(unique.contains(id), "accepted {id} is missing from the store");
    }
    assert!(stored.len() <= ids.len() + 1, "at most the one start in flight at the kill was unacknowledged");

    let closed = all_closed(&server, &stored, Duration::from_secs(120)).await;
    let mut resumed = 0;
    for e in &closed {
        assert_eq!(e.status, pb::ActivityStatus::Completed as i32, "{} ended {:?}", e.activity_id, e);
        let r = decode(&e.result);
        assert_eq!(r["started_at"].as_u64().unwrap() + r["counted"].as_u64().unwrap(), STEPS, "{r}");
        if e.attempt > 1 {
            assert!(e.last_failure.as_ref().is_some_and(|f| f.error_type == "HostLost"), "{e:?}");
            if r["started_at"].as_u64().unwrap() > 0 {
                resumed += 1;
            }
        }
    }
    if kill_after >= Duration::from_millis(500) {
        assert!(resumed > 0, "attempts running at the kill resume from their last heartbeat");
    }

    // The pending attempt is still waiting and its token still works.
    let e = describe(&mut c, "mail").await.execution.unwrap();
    assert!(e.pending_async && e.status == pb::ActivityStatus::Started as i32, "{e:?}");
    let outbox = server.dir.join("outbox/mail-1.json");
    let token: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(outbox).unwrap()).unwrap();
    let mut done = server.completions().await;
    done.complete_activity(pb::CompleteActivityRequest {
        target: Some(pb::complete_activity_request::Target::TaskToken(token["task_token"].as_str().unwrap().into())),
        result: json(json!("sent")),
    })
    .await
    .unwrap();
    assert_eq!(result(&mut c, "mail", 10.0).await.status, pb::ActivityStatus::Completed as i32);
    eprintln!("round {round}: killed after {kill_after:?}; {} accepted, {resumed} resumed from heartbeats", ids.len());
}

struct ServerRef {
    addr: String,
}

impl ServerRef {
    async fn start_many(&self, round: usize, n: usize) -> Vec<String> {
        let Ok(mut c) = ActivityServiceClient::connect(self.addr.clone()).await else { return Vec::new() };
        let mut ids = Vec::new();
        for i in 0..n {
            let id = format!("r{round}-{i}");
            let req = start_req("resumable", &id, json!({"to": STEPS, "step_ms": 15}));
            if c.start_activity(req).await.is_ok() {
                ids.push(id);
            } else {
                break;
            }
        }
        ids
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_scheduling_loses_nothing() {
    crash_round(1, Duration::from_millis(150)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_flight_loses_nothing() {
    crash_round(2, Duration::from_millis(900)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_late_loses_nothing() {
    crash_round(3, Duration::from_millis(2500)).await;
}
