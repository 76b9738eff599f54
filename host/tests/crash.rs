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

/// The kinds of the chaos load, by start index.
fn chaos_start(i: usize) -> (String, pb::StartActivityRequest) {
    let id = format!("c{i}");
    let req = match i % 3 {
        0 => start_req("hello", &id, json!({"name": id})),
        1 => start_req("resumable", &id, json!({"to": STEPS, "step_ms": 10})),
        _ => start_req("send-email", &id, json!({"to": "x@example.com", "subject": id})),
    };
    (id, req)
}

/// Completes every pending mail it finds among `ids` (by id; repeats are no-ops).
async fn complete_mails(server: &Server, ids: &[String]) {
    let mut c = server.activities().await;
    let mut done = server.completions().await;
    for id in ids.iter().filter(|id| id[1..].parse::<usize>().unwrap() % 3 == 2) {
        let e = describe(&mut c, id).await.execution.unwrap();
        if e.pending_async {
            let target = pb::ActivityRef { activity_id: id.clone(), run_id: String::new() };
            let _ = done
                .complete_activity(pb::CompleteActivityRequest {
                    target: Some(pb::complete_activity_request::Target::Activity(target)),
                    result: json(json!("sent")),
                })
                .await;
        }
    }
}

/// SIGKILL at pseudo-random moments, many times (SLUICE_CHAOS_KILLS, 30 by
/// default), under a mix of quick, heartbeating and async-pending
/// activities; then every acknowledged start reaches its final status once,
/// heartbeating ones resume from their details, and the store is sound.
#[tokio::test(flavor = "multi_thread")]
async fn chaos_repeated_sigkills_under_mixed_load_lose_and_duplicate_nothing() {
    let kills: usize = std::env::var("SLUICE_CHAOS_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let started = Instant::now();
    let (mut server, dir) = Server::start("");
    let mut acked: Vec<String> = Vec::new();
    let mut next = 0usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..kills {
        // xorshift: a different, repeatable moment each round (60-560 ms).
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_at = Instant::now() + Duration::from_millis(60 + seed % 500);
        let addr = server.addr.clone();
        let first = next;
        let starter = tokio::spawn(async move {
            let Ok(mut c) = ActivityServiceClient::connect(addr).await else { return Vec::new() };
            let mut ids = Vec::new();
            // Paced: a start every 10 ms, at most 40 a round.
            for i in first..first + 40 {
                let (id, req) = chaos_start(i);
                match c.start_activity(req).await {
                    Ok(_) => ids.push(id),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ids
        });
        tokio::time::sleep_until(kill_at.into()).await;
        server.kill();
        let ids = starter.await.unwrap();
        // An unacknowledged start may have committed: skip its index.
        next += ids.len() + 1;
        acked.extend(ids);
        server = Server::start_in(dir.path());
    }
    assert!(acked.len() > kills, "the load ran: {} starts acknowledged", acked.len());

    // Let everything finish: mails (pending through the kills) are
    // completed as they reach pending.
    let deadline = Instant::now() + Duration::from_secs(180);
    let closed = loop {
        complete_mails(&server, &acked).await;
        let mut c = server.activities().await;
        let mut closed = Vec::new();
        for id in &acked {
            let d = describe(&mut c, id).await;
            if d.execution.as_ref().unwrap().close_time.is_some() {
                closed.push(d);
            }
        }
        if closed.len() == acked.len() {
            break closed;
        }
        assert!(Instant::now() < deadline, "{} of {} never closed", acked.len() - closed.len(), acked.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let (mut resumed, mut retried) = (0, 0);
    for d in &closed {
        let e = d.execution.as_ref().unwrap();
        assert_eq!(e.status, pb::ActivityStatus::Completed as i32, "{} ended {e:?}", e.activity_id);
        let closings = d.history.iter().filter(|h| h.kind == "completed").count();
        assert_eq!(closings, 1, "{} closed once: {:?}", e.activity_id, d.history);
        let r = decode(&e.result);
        match e.activity_id[1..].parse::<usize>().unwrap() % 3 {
            0 => assert_eq!(r, json!({"greeting": format!("Hello, {}!", e.activity_id)})),
            1 => {
                assert_eq!(r["started_at"].as_u64().unwrap() + r["counted"].as_u64().unwrap(), STEPS, "{r}");
                resumed += usize::from(r["started_at"].as_u64().unwrap() > 0);
            }
            _ => assert_eq!(r, json!("sent")),
        }
        retried += usize::from(e.attempt > 1);
    }
    // One run per id: the store has nothing twice.
    let mut c = server.activities().await;
    let mut runs = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_activities(pb::ListActivitiesRequest { page_size: 1000, page_token: token, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        runs.extend(page.executions.into_iter().map(|e| e.activity_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let unique: HashSet<&String> = runs.iter().collect();
    assert_eq!(unique.len(), runs.len(), "one run per id");
    server.stop();
    let db = rusqlite::Connection::open(dir.path().join("sluice.db")).unwrap();
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    println!(
        "chaos: {kills} SIGKILLs, {} starts acknowledged, all completed exactly once; {retried} retried after a kill, \
         {resumed} resumed from heartbeat details; {} runs stored; integrity_check ok; {:.1}s",
        acked.len(),
        runs.len(),
        started.elapsed().as_secs_f64()
    );
}
