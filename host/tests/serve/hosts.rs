//! Several `sluice serve` hosts on one real PostgreSQL database: any host
//! accepts any request, work spreads over them, a host killed with SIGKILL
//! loses nothing (its attempts are retried by the others once its lease
//! ends), timers fire on whichever host gets them, a queue's rate limit is
//! global, and fairness keys share a queue under a burst.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice::api::pb;
use sluice::api::pb::operator_service_client::OperatorServiceClient;
use sluice_test_programs::{MISBEHAVING, RESUMABLE};

use super::common::postgres;
use super::common::server::*;

/// A host of `url` named `host`, with `extra` config appended.
fn host(url: &str, host: &str, extra: &str) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cache = super::common::cache_dir();
    let config = format!(
        r#"
[server]
host_id = "{host}"

[store]
url = "{url}"
host_lease = "2s"

[sandbox]
pool_instances = 64
cache_dir = "{cache}"

[queues.default]
slots = 16

[activities.sleepy]
component = "{MISBEHAVING}"
start_to_close_timeout = "30s"
[activities.sleepy.retry]
initial_interval = "100ms"
maximum_attempts = 0

[activities.resumable]
component = "{RESUMABLE}"
start_to_close_timeout = "30s"
[activities.resumable.retry]
initial_interval = "300ms"
backoff_coefficient = 1.0
maximum_attempts = 0
{extra}
"#,
        cache = cache.display()
    );
    std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
    (Server::start_in(dir.path()), dir)
}

fn hosts(url: &str, extra: &str) -> Vec<(Server, tempfile::TempDir)> {
    (1..=3).map(|i| host(url, &format!("h{i}"), extra)).collect()
}

/// Starts `n` executions `prefix-<i>`, in batches of 500 spread over the
/// hosts (any host accepts any start).
async fn start_all(servers: &[&Server], n: usize, prefix: &str, req: impl Fn(usize) -> pb::StartActivityRequest) {
    let mut clients = Vec::new();
    for s in servers {
        clients.push(s.activities().await);
    }
    for (b, chunk) in (0..n).collect::<Vec<_>>().chunks(500).enumerate() {
        let starts = chunk
            .iter()
            .map(|&i| pb::StartActivityRequest { activity_id: format!("{prefix}-{i}"), ..req(i) })
            .collect();
        let c = &mut clients[b % servers.len()];
        let r = c.start_activities(pb::StartActivitiesRequest { starts }).await.unwrap().into_inner();
        let refused =
            r.outcomes.iter().filter(|o| !matches!(o.outcome, Some(pb::start_activity_outcome::Outcome::Started(_))));
        assert_eq!(refused.count(), 0, "every start accepted");
    }
}

/// Every execution of the queue (paged through one host).
async fn all(server: &Server, queue: &str) -> Vec<pb::ActivityExecution> {
    let mut c = server.activities().await;
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let r = c
            .list_activities(pb::ListActivitiesRequest {
                task_queue: queue.into(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.executions);
        if r.next_page_token.is_empty() {
            return out;
        }
        page_token = r.next_page_token;
    }
}

/// Waits until `n` executions of `queue` are closed; returns them.
async fn all_closed(server: &Server, queue: &str, n: usize, patience: Duration) -> Vec<pb::ActivityExecution> {
    let mut c = operator(server).await;
    let deadline = Instant::now() + patience;
    loop {
        let q = c
            .describe_task_queue(pb::DescribeTaskQueueRequest { task_queue: queue.into(), closed_counts: false })
            .await
            .unwrap()
            .into_inner();
        if q.backlog + q.running == 0 {
            let found = all(server, queue).await;
            if found.len() == n {
                return found;
            }
        }
        assert!(
            Instant::now() < deadline,
            "still open after {patience:?}: {} waiting, {} running",
            q.backlog,
            q.running
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn operator(server: &Server) -> OperatorServiceClient<tonic::transport::Channel> {
    OperatorServiceClient::connect(server.addr.clone()).await.unwrap()
}

fn worker_host(e: &pb::ActivityExecution) -> String {
    e.last_worker.split('/').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hosts_share_a_load_and_a_killed_host_loses_nothing() {
    let url = postgres::fresh_database();
    let mut hosts = hosts(&url, "");
    let sleepy = |_| start_req("sleepy", "", json!({"do": "sleep", "ms": 20}));
    let servers: Vec<&Server> = hosts.iter().map(|(s, _)| s).collect();
    start_all(&servers, 10_000, "load", sleepy).await;

    // Kill h2 while it runs attempts; nothing is restarted.
    let mut o1 = operator(&hosts[0].0).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let q = o1
            .describe_task_queue(pb::DescribeTaskQueueRequest { task_queue: "default".into(), closed_counts: false })
            .await
            .unwrap()
            .into_inner();
        if q.backlog < 7_000 && q.running > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hosts[1].0.kill();
    // Work for h2's own queue, which no other host serves: reported.
    let mut c1 = hosts[0].0.activities().await;
    let stranded = pb::StartActivityRequest { task_queue: "@h2".into(), ..sleepy(0) };
    c1.start_activity(pb::StartActivityRequest { activity_id: "stranded".into(), ..stranded }).await.unwrap();

    let done = all_closed(&hosts[0].0, "default", 10_000, Duration::from_secs(300)).await;
    let mut by_host: HashMap<String, usize> = HashMap::new();
    for e in &done {
        assert_eq!(e.status, pb::ActivityStatus::Completed as i32, "{} ended {:?}", e.activity_id, e.last_failure);
        *by_host.entry(worker_host(e)).or_default() += 1;
    }
    assert!(by_host.len() == 3 && by_host.values().all(|n| *n > 100), "the work spread over all hosts: {by_host:?}");
    // The attempts h2 had started were retried by the others.
    let lost: Vec<&pb::ActivityExecution> =
        done.iter().filter(|e| e.last_failure.as_ref().is_some_and(|f| f.error_type == "HostLost")).collect();
    assert!(!lost.is_empty(), "h2 was killed mid-attempt");
    assert!(lost.iter().all(|e| e.attempt >= 2 && worker_host(e) != "h2"), "retried elsewhere");

    let logs = hosts[0].0.log() + &hosts[2].0.log();
    assert!(
        logs.contains("host h2 is gone: 1 execution(s) wait on its own queue @h2; no other host serves it"),
        "{logs}"
    );
    // Any host answers about any execution; h3 sees a close it did not make.
    let mut c3 = hosts[2].0.activities().await;
    let d = describe(&mut c3, &lost[0].activity_id).await.execution.unwrap();
    assert_eq!((d.status, d.attempt), (pb::ActivityStatus::Completed as i32, lost[0].attempt));
    c1.start_activity(start_req("sleepy", "late", json!({"do": "sleep", "ms": 300}))).await.unwrap();
    let waited = Instant::now();
    let closed = result(&mut c3, "late", 20.0).await;
    assert_eq!(closed.status, pb::ActivityStatus::Completed as i32);
    assert!(waited.elapsed() < Duration::from_secs(5), "the close reached h3's long-poll: {:?}", waited.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_fire_on_any_host_while_hosts_are_killed_and_restarted() {
    let url = postgres::fresh_database();
    let mut hosts = hosts(&url, "");
    // Each execution fails its first attempt, waits 300 ms, then completes:
    // a load of durable backoff timers.
    let flaky = |_| start_req("resumable", "", json!({"from": 0, "to": 3, "fail_at": 1}));
    let servers: Vec<&Server> = hosts.iter().map(|(s, _)| s).collect();
    start_all(&servers, 2_000, "timer", flaky).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    hosts[0].0.kill();
    tokio::time::sleep(Duration::from_millis(700)).await;
    hosts[2].0.kill();
    // h1 comes back (same host id, same database); h3 stays dead.
    hosts[0].0 = Server::start_in(hosts[0].1.path());
    let done = all_closed(&hosts[1].0, "default", 2_000, Duration::from_secs(300)).await;
    for e in &done {
        assert_eq!(e.status, pb::ActivityStatus::Completed as i32, "{} ended {:?}", e.activity_id, e.last_failure);
        assert!(e.attempt >= 2, "{} completed in attempt {}", e.activity_id, e.attempt);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_rate_limit_holds_across_hosts() {
    let url = postgres::fresh_database();
    let hosts = hosts(&url, "[queues.limited]\nslots = 16\nrate_limit = 100.0\n[activities.sleepy2]\ncomponent = \"SLEEPY\"\nqueues = [\"limited\"]\nstart_to_close_timeout = \"30s\"\n".replace("SLEEPY", MISBEHAVING).as_str());
    let servers: Vec<&Server> = hosts.iter().map(|(s, _)| s).collect();
    let quick = |_| pb::StartActivityRequest {
        task_queue: "limited".into(),
        ..start_req("sleepy2", "", json!({"do": "sleep", "ms": 1}))
    };
    start_all(&servers, 600, "rate", quick).await;
    let done = all_closed(&hosts[0].0, "limited", 600, Duration::from_secs(120)).await;
    let mut starts: Vec<f64> = done
        .iter()
        .map(|e| {
            let t = e.started_time.as_ref().unwrap();
            t.seconds as f64 + t.nanos as f64 / 1e9
        })
        .collect();
    starts.sort_by(f64::total_cmp);
    // Leave out the first bucket's worth: the rate is what follows.
    let window = &starts[10..];
    let rate = (window.len() - 1) as f64 / (window[window.len() - 1] - window[0]);
    assert!((90.0..=110.0).contains(&rate), "dispatched {rate:.1}/s across three hosts, limit 100/s");
    let hosts_used: std::collections::HashSet<String> = done.iter().map(worker_host).collect();
    assert_eq!(hosts_used.len(), 3, "every host took a share");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_one_fairness_key_does_not_starve_another() {
    let url = postgres::fresh_database();
    let hosts = hosts(&url, "[queues.shared]\nslots = 2\n[activities.sleepy3]\ncomponent = \"SLEEPY\"\nqueues = [\"shared\"]\nstart_to_close_timeout = \"30s\"\n".replace("SLEEPY", MISBEHAVING).as_str());
    let servers: Vec<&Server> = hosts.iter().map(|(s, _)| s).collect();
    let keyed = |key: &'static str| {
        move |_| pb::StartActivityRequest {
            task_queue: "shared".into(),
            fairness_key: key.into(),
            ..start_req("sleepy3", "", json!({"do": "sleep", "ms": 20}))
        }
    };
    // Tenant a floods the queue, then tenant b starts a few.
    start_all(&servers, 1_000, "a", keyed("a")).await;
    start_all(&servers, 50, "b", keyed("b")).await;
    let done = all_closed(&hosts[0].0, "shared", 1_050, Duration::from_secs(300)).await;
    let mut order: Vec<(i64, i32, bool)> = done
        .iter()
        .map(|e| {
            let t = e.started_time.as_ref().unwrap();
            (t.seconds, t.nanos, e.activity_id.starts_with("b-"))
        })
        .collect();
    order.sort();
    let last_b = order.iter().rposition(|(_, _, b)| *b).unwrap();
    // In arrival order b would start after all 1,000 of a; fairly shared
    // (b's 50 interleaved one for one), it is done within ~100 starts of
    // its arrival, however far a's backlog reaches.
    assert!(last_b < 400, "b's last start was #{last_b} of 1,050: starved behind a's burst");
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_heartbeats_tokens_and_watches_work_at_any_host() {
    let url = postgres::fresh_database();
    let hosts = hosts(&url, "");
    let (h1, h2, h3) = (&hosts[0].0, &hosts[1].0, &hosts[2].0);
    // An attempt hands off (pending) on h1 (its own queue); its token, read
    // on h2, heartbeats and completes it on h3, and h1 returns the result.
    let mut c1 = h1.activities().await;
    let on_h1 = |req: pb::StartActivityRequest| pb::StartActivityRequest { task_queue: "@h1".into(), ..req };
    c1.start_activity(on_h1(start_req("sleepy", "mail", json!({"do": "pending"})))).await.unwrap();
    let mut c2 = h2.activities().await;
    let token = loop {
        let d = describe(&mut c2, "mail").await;
        if let Some(l) = d.logs.iter().find(|l| l.message == "handing off") {
            break l.fields["token"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut done3 = h3.completions().await;
    let beat = done3
        .record_heartbeat(pb::RecordHeartbeatRequest {
            target: Some(pb::record_heartbeat_request::Target::TaskToken(token.clone())),
            details: json(json!({"queued": true})),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!beat.cancel_requested);
    done3
        .complete_activity(pb::CompleteActivityRequest {
            target: Some(pb::complete_activity_request::Target::TaskToken(token)),
            result: json(json!({"sent": true})),
        })
        .await
        .unwrap();
    let e = result(&mut c1, "mail", 20.0).await;
    assert_eq!((e.status, decode(&e.result)), (pb::ActivityStatus::Completed as i32, json!({"sent": true})));

    // A watch on h3 follows an execution that runs on h1: its progress and
    // its transitions, live.
    let mut c3 = h3.activities().await;
    let slow = json!({"from": 0, "to": 4, "step_ms": 400});
    c1.start_activity(on_h1(pb::StartActivityRequest {
        heartbeat_timeout: secs(10.0),
        ..start_req("resumable", "counted", slow)
    }))
    .await
    .unwrap();
    let mut watch = c3
        .watch_activity(pb::WatchActivityRequest { activity_id: "counted".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let (mut progress, mut kinds) = (0, Vec::new());
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(30), watch.message()).await.unwrap().unwrap() {
        match ev.event {
            Some(pb::watch_activity_event::Event::Progress(_)) => progress += 1,
            Some(pb::watch_activity_event::Event::Transition(t)) => kinds.push(t.kind),
            _ => {}
        }
    }
    assert_eq!(kinds.last().map(String::as_str), Some("completed"), "{kinds:?}");
    assert!(progress >= 1, "progress written on the running host reached h3's watch");
    assert_eq!(describe(&mut c3, "counted").await.execution.unwrap().last_worker, "h1/wasm");
}
