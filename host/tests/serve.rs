//! `sluice serve` end to end over gRPC on loopback: the real binary, real
//! guests, a real SQLite file (several hosts: a real PostgreSQL server).

#[path = "serve/boundaries.rs"]
mod boundaries;
mod common;
#[path = "serve/deploy.rs"]
mod deploy;
#[path = "serve/hosts.rs"]
mod hosts;
#[path = "serve/http.rs"]
mod http_api;
#[path = "serve/many.rs"]
mod many;
#[path = "serve/temporal.rs"]
mod temporal;
#[path = "serve/traces.rs"]
mod traces;

use std::time::Duration;

use common::server::*;
use serde_json::json;
use sluice::api::pb;
use sluice::api::pb::operator_service_client::OperatorServiceClient;
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn start_watch_result() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    let r = c
        .start_activity(start_req("resumable", "count-1", json!({"to": 3, "step_ms": 50})))
        .await
        .unwrap()
        .into_inner();
    assert!(r.started);
    let mut stream = c
        .watch_activity(pb::WatchActivityRequest { activity_id: "count-1".into(), run_id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(ev) = stream.message().await.unwrap() {
        seen.push(match ev.event.unwrap() {
            pb::watch_activity_event::Event::Snapshot(_) => "snapshot".to_string(),
            pb::watch_activity_event::Event::Transition(t) => format!("transition {}", t.kind),
            pb::watch_activity_event::Event::Progress(p) => format!("progress {}", p.percent.unwrap().round()),
            pb::watch_activity_event::Event::Heartbeat(_) => "heartbeat".into(),
            pb::watch_activity_event::Event::Log(l) => format!("log {}", l.message),
        });
    }
    assert_eq!(seen.first().map(String::as_str), Some("snapshot"));
    assert_eq!(seen.last().map(String::as_str), Some("transition completed"));
    assert!(seen.contains(&"progress 100".to_string()), "{seen:?}");
    assert!(seen.contains(&"heartbeat".to_string()), "{seen:?}");
    let e = result(&mut c, "count-1", 30.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Completed as i32);
    assert_eq!(decode(&e.result), json!({"started_at": 0, "counted": 3, "sum": 3}));
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_and_timeouts_are_recorded_in_the_history() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    // Loops forever: each attempt times out after 300ms; two attempts.
    let mut req = start_req("misbehaving", "looper", json!({"do": "loop"}));
    req.start_to_close_timeout = secs(0.3);
    c.start_activity(req).await.unwrap();
    let e = result(&mut c, "looper", 30.0).await;
    assert_eq!(e.status, pb::ActivityStatus::TimedOut as i32);
    assert_eq!(e.timeout_type, "start-to-close");
    assert_eq!(e.attempt, 2);
    let kinds: Vec<String> = describe(&mut c, "looper").await.history.into_iter().map(|h| h.kind).collect();
    assert_eq!(kinds, ["scheduled", "started", "retry-scheduled", "started", "timed-out"]);

    // An application error is retried per policy, then fails.
    c.start_activity(start_req("misbehaving", "flaky", json!({"do": "fail", "type": "Flaky", "message": "nope"})))
        .await
        .unwrap();
    let e = result(&mut c, "flaky", 30.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Failed as i32);
    assert_eq!(e.attempt, 2);
    assert_eq!(e.last_failure.unwrap().error_type, "Flaky");

    // A trap is a sandbox failure with its category as error type.
    c.start_activity(start_req("misbehaving", "trapper", json!({"do": "panic", "message": "boom"}))).await.unwrap();
    let e = result(&mut c, "trapper", 30.0).await;
    let f = e.last_failure.unwrap();
    assert_eq!((f.source.as_str(), f.error_type.as_str()), ("sandbox", "Trap"));
    assert!(f.message.ends_with("after a panic: boom"), "{}", f.message);
    // Its stderr is in the logs.
    let logs = describe(&mut c, "trapper").await.logs;
    assert!(logs.iter().any(|l| l.level == "stderr" && l.message == "boom"), "{logs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn async_completion_by_task_token_with_the_cli() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    c.start_activity(start_req("send-email", "mail-1", json!({"to": "ada@example.com", "subject": "hi"})))
        .await
        .unwrap();
    let outbox = server.dir.join("outbox/mail-1-1.json");
    let message = wait_for_file(&outbox).await;
    let e = describe(&mut c, "mail-1").await.execution.unwrap();
    assert_eq!(e.status, pb::ActivityStatus::Started as i32);
    assert!(e.pending_async);

    let token = message["task_token"].as_str().unwrap();
    let out = server.cli(&["complete", "--task-token", token, "--result", r#"{"message_id":"m-1"}"#]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e = result(&mut c, "mail-1", 10.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Completed as i32);
    assert_eq!(decode(&e.result), json!({"message_id": "m-1"}));

    // Completing again with the same result is a no-op; with another, an error.
    let out = server.cli(&["complete", "--task-token", token, "--result", r#"{"message_id":"m-1"}"#]);
    assert!(out.status.success());
    let out = server.cli(&["complete", "--task-token", token, "--result", r#"{"message_id":"other"}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already completed with a different result (FailedPrecondition)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn async_completion_by_activity_id_with_the_cli() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    c.start_activity(start_req("send-email", "mail-2", json!({"to": "bob@example.com", "subject": "yo"})))
        .await
        .unwrap();
    wait_for_file(&server.dir.join("outbox/mail-2-1.json")).await;
    // An external heartbeat by id is recorded with its details.
    let out = server.cli(&["heartbeat", "--id", "mail-2", "--details", r#"{"queued":true}"#]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", String::from_utf8_lossy(&out.stderr));
    let e = describe(&mut c, "mail-2").await.execution.unwrap();
    assert_eq!(decode(&e.heartbeat_details), json!({"queued": true}));
    let out = server.cli(&["complete", "--id", "mail-2", "--result", r#"{"ok":true}"#]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = server.cli(&["result", "mail-2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"ok\":true}\n");
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_terminate() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    // A guest that heartbeats and honours cancellation.
    c.start_activity(start_req("misbehaving", "polite", json!({"do": "wait-cancel", "ms": 20}))).await.unwrap();
    wait_status(&mut c, "polite", pb::ActivityStatus::Started).await;
    let out = server.cli(&["cancel", "polite"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("cancellation requested"), "{out:?}");
    let e = result(&mut c, "polite", 10.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Cancelled as i32);

    // One that ignores it is interrupted after the grace period (500ms).
    c.start_activity(start_req("misbehaving", "rude", json!({"do": "ignore-cancel", "ms": 20}))).await.unwrap();
    wait_status(&mut c, "rude", pb::ActivityStatus::Started).await;
    c.request_cancel_activity(pb::RequestCancelActivityRequest { activity_id: "rude".into(), run_id: String::new() })
        .await
        .unwrap();
    let e = result(&mut c, "rude", 10.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Cancelled as i32);

    // Terminate does not ask.
    c.start_activity(start_req("misbehaving", "doomed", json!({"do": "sleep", "ms": 60000}))).await.unwrap();
    wait_status(&mut c, "doomed", pb::ActivityStatus::Started).await;
    let out = server.cli(&["terminate", "doomed", "--reason", "enough"]);
    assert!(out.status.success());
    let e = result(&mut c, "doomed", 10.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Terminated as i32);
    assert_eq!(e.last_failure.unwrap().message, "enough");

    // Cancelling a closed execution is refused.
    let err = c
        .request_cancel_activity(pb::RequestCancelActivityRequest {
            activity_id: "doomed".into(),
            run_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "activity doomed is already terminated");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_stale_task_tokens_are_rejected() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    let mut req = start_req("send-email", "mail-3", json!({"to": "c@example.com", "subject": "s"}));
    req.start_to_close_timeout = secs(1.0);
    req.retry_policy =
        Some(pb::RetryPolicy { initial_interval: secs(0.1), maximum_attempts: Some(3), ..Default::default() });
    c.start_activity(req).await.unwrap();
    let first = wait_for_file(&server.dir.join("outbox/mail-3-1.json")).await;
    let token = first["task_token"].as_str().unwrap().to_string();
    let mut done = server.completions().await;
    let complete = |t: String| pb::CompleteActivityRequest {
        target: Some(pb::complete_activity_request::Target::TaskToken(t)),
        result: json(json!(1)),
    };
    // Forged: another signature.
    let (body, _) = token.split_once('.').unwrap();
    let err = done.complete_activity(complete(format!("{body}.AAAA"))).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = done.complete_activity(complete("nonsense".into())).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::PermissionDenied, "malformed task token"));
    // Stale: attempt 1 timed out and attempt 2 runs; the old token no longer counts.
    wait_for_file(&server.dir.join("outbox/mail-3-2.json")).await;
    let err = done.complete_activity(complete(token)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("attempt 1 of activity mail-3 is stale: the execution is on attempt 2"),
        "{}",
        err.message()
    );
    assert_eq!(describe(&mut c, "mail-3").await.execution.unwrap().status, pb::ActivityStatus::Started as i32);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_requests_get_precise_statuses_and_change_nothing() {
    let (server, _dir) = Server::start("[server]\nmax_payload = \"1KiB\"\n");
    let mut c = server.activities().await;
    c.start_activity(start_req("hello", "h1", json!({"name": "a"}))).await.unwrap();
    result(&mut c, "h1", 30.0).await;

    let cases: Vec<(pb::StartActivityRequest, Code, &str)> = vec![
        (start_req("", "x", json!(null)), Code::InvalidArgument, "activity_type is required"),
        (
            start_req("hello", &"x".repeat(300), json!(null)),
            Code::InvalidArgument,
            "activity_id is 300 bytes, over the limit of 256",
        ),
        (
            start_req("hello", "big", json!("y".repeat(2000))),
            Code::ResourceExhausted,
            "input is 2002 bytes, over the limit of 1024 bytes",
        ),
        (start_req("hello", "h1", json!({"name": "a"})), Code::Ok, ""),
        (
            pb::StartActivityRequest { priority: 9, ..start_req("hello", "p", json!(null)) },
            Code::InvalidArgument,
            "priority must be 1 (first) to 5, got 9",
        ),
        (
            pb::StartActivityRequest {
                retry_policy: Some(pb::RetryPolicy { backoff_coefficient: 0.5, ..Default::default() }),
                ..start_req("hello", "r", json!(null))
            },
            Code::InvalidArgument,
            "retry_policy.backoff_coefficient must be at least 1.0, got 0.5",
        ),
        (
            start_req("unconfigured-type", "u", json!(null)),
            Code::InvalidArgument,
            "one of schedule_to_close_timeout and start_to_close_timeout is required",
        ),
    ];
    for (req, code, message) in cases {
        match c.start_activity(req).await {
            Ok(_) => assert_eq!(code, Code::Ok),
            Err(e) => assert_eq!((e.code(), e.message()), (code, message)),
        }
    }
    // Once h1's second run has completed, a start that rejects duplicates is refused.
    result(&mut c, "h1", 30.0).await;
    let reject = pb::StartActivityRequest {
        id_reuse_policy: pb::IdReusePolicy::RejectDuplicate as i32,
        ..start_req("hello", "h1", json!(null))
    };
    let err = c.start_activity(reject).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::AlreadyExists, "activity h1 already ran (it is completed) and the reuse policy rejects duplicates")
    );
    // A request over the transport limit is refused before decoding.
    let huge = start_req("hello", "huge", json!("z".repeat(200_000)));
    let err = c.start_activity(huge).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    let err = c
        .describe_activity(pb::DescribeActivityRequest { activity_id: "nope".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::NotFound, "no activity nope"));
    let err = c.list_activities(pb::ListActivitiesRequest { page_size: 5000, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .list_activities(pb::ListActivitiesRequest { page_token: "zz".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "bad page token: it is not a page token"));
    let mut done = server.completions().await;
    let err = done.complete_activity(pb::CompleteActivityRequest { target: None, result: None }).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "set task_token or activity"));

    // Only h1 (one run: the second start returned it) and the unknown-type
    // start... which was refused: nothing else was stored.
    let all = c.list_activities(pb::ListActivitiesRequest::default()).await.unwrap().into_inner();
    let ids: Vec<&str> = all.executions.iter().map(|e| e.activity_id.as_str()).collect();
    assert_eq!(ids, ["h1", "h1"], "the allow-duplicate start of h1 made a second run, nothing else");
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_auth_guards_every_rpc() {
    let hash = sluice::api::hash_token("s3cret");
    let (server, _dir) = Server::start(&format!("[server.auth]\ntokens_sha256 = [\"{hash}\"]\n"));
    let mut c = server.activities().await;
    let err = c.list_activities(pb::ListActivitiesRequest::default()).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::Unauthenticated, "missing bearer token (authorization: Bearer <token>)")
    );

    let with = |token: &str| {
        let mut req = tonic::Request::new(pb::ListActivitiesRequest::default());
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        req
    };
    let err = c.list_activities(with("wrong")).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::Unauthenticated, "unknown bearer token"));
    assert!(c.list_activities(with("s3cret")).await.is_ok());

    // The CLI takes the token from SLUICE_TOKEN / --token.
    let out = server.cli(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing bearer token"));
    let out = server.cli(&["list", "--token", "s3cret"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn priorities_and_the_persistent_backlog() {
    // One slot: attempts wait in the store's backlog and leave it by priority.
    let (server, _dir) = Server::start("[queues.narrow]\nslots = 1\n");
    let mut c = server.activities().await;
    let start = |id: &str, priority: u32, ms: u64| pb::StartActivityRequest {
        task_queue: "narrow".into(),
        priority,
        ..start_req("misbehaving", id, json!({"do": "sleep", "ms": ms}))
    };
    // narrow is not a configured queue of misbehaving: nobody serves it yet.
    c.start_activity(start("first", 3, 300)).await.unwrap();
    let mut ops = OperatorServiceClient::connect(server.addr.clone()).await.unwrap();
    let q = ops
        .describe_task_queue(pb::DescribeTaskQueueRequest { task_queue: "narrow".into(), closed_counts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((q.backlog, q.running, q.served_here), (1, 0, false));
    drop(server);

    let cfg = "[queues.narrow]\nslots = 1\n";
    let (server, _dir) = Server::start(&format!(
        "{cfg}\n[activities.sleeper]\ncomponent = \"{}\"\nqueues = [\"narrow\"]\nstart_to_close_timeout = \"30s\"\n",
        sluice_test_programs::MISBEHAVING
    ));
    let mut c = server.activities().await;
    let start = |id: &str, priority: u32| pb::StartActivityRequest {
        task_queue: "narrow".into(),
        priority,
        ..start_req("sleeper", id, json!({"do": "sleep", "ms": 300}))
    };
    c.start_activity(start("a-low", 5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // a-low takes the slot
    c.start_activity(start("b-low", 5)).await.unwrap();
    c.start_activity(start("c-high", 1)).await.unwrap();
    let mut ops = OperatorServiceClient::connect(server.addr.clone()).await.unwrap();
    let q = ops
        .describe_task_queue(pb::DescribeTaskQueueRequest { task_queue: "narrow".into(), closed_counts: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((q.backlog, q.running, q.served_here, q.free_slots), (2, 1, true, 0));
    let b = result(&mut c, "b-low", 30.0).await;
    let h = result(&mut c, "c-high", 30.0).await;
    let started = |e: &pb::ActivityExecution| e.started_time.as_ref().map(|t| (t.seconds, t.nanos)).unwrap();
    assert!(started(&h) < started(&b), "priority 1 left the backlog before priority 5");
}

async fn wait_for_file(path: &std::path::Path) -> serde_json::Value {
    for _ in 0..400 {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_queue_dispatches_nothing_and_a_rate_limit_spaces_dispatches() {
    let cfg = format!(
        "[queues.paused]\nrate_limit = 0.0\n[queues.slow]\nrate_limit = 5.0\n\
         [activities.p]\ncomponent = \"{m}\"\nqueues = [\"paused\"]\nstart_to_close_timeout = \"10s\"\n\
         [activities.s]\ncomponent = \"{m}\"\nqueues = [\"slow\"]\nstart_to_close_timeout = \"10s\"\n",
        m = sluice_test_programs::MISBEHAVING
    );
    let (server, _dir) = Server::start(&cfg);
    let mut c = server.activities().await;
    c.start_activity(start_req("p", "held", json!({"do": "info"}))).await.unwrap();
    for i in 0..4 {
        c.start_activity(start_req("s", &format!("s{i}"), json!({"do": "info"}))).await.unwrap();
    }
    let mut starts = Vec::new();
    for i in 0..4 {
        let e = result(&mut c, &format!("s{i}"), 20.0).await;
        assert_eq!(e.status, pb::ActivityStatus::Completed as i32);
        let t = e.started_time.unwrap();
        starts.push(t.seconds as f64 + t.nanos as f64 / 1e9);
    }
    starts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for w in starts.windows(2) {
        assert!(w[1] - w[0] >= 0.15, "5/s means about 200 ms between dispatches: {starts:?}");
    }
    let e = describe(&mut c, "held").await.execution.unwrap();
    assert_eq!(e.status, pb::ActivityStatus::Scheduled as i32, "a paused queue keeps its backlog");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_the_api_to_clients_that_trust_its_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::create_dir_all(dir.path().join("outbox")).unwrap();
    std::fs::write(dir.path().join("sluice.toml"), config("[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"))
        .unwrap();
    let server = Server::start_in(dir.path());
    let port = server.addr.rsplit(':').next().unwrap();
    let https = format!("https://localhost:{port}");
    let ca = dir.path().join("cert.pem");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("SLUICE_ADDRESS", &https)
            .output()
            .unwrap()
    };
    let out = run(&["start", "hello", "--input", r#"{"name":"tls"}"#, "--wait", "--tls-ca", ca.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"greeting\":\"Hello, tls!\"}\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the CA the client refuses the server.
    let out = run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_describes_lists_and_watches() {
    let (server, _dir) = Server::start("");
    let out = server.cli(&["start", "resumable", "--id", "w1", "--input", r#"{"to":3,"step_ms":30}"#]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "w1\n");
    let out = server.cli(&["watch", "w1", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events[0]["event"], "snapshot");
    let last = events.last().unwrap();
    assert_eq!((last["event"].as_str(), last["status"].as_str()), (Some("transition"), Some("completed")));
    assert!(events.iter().any(|e| e["event"] == "progress"), "{events:?}");

    let out = server.cli(&["describe", "w1", "--json"]);
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["status"], "completed");
    assert_eq!(d["result"], json!({"started_at": 0, "counted": 3, "sum": 3}));
    let kinds: Vec<&str> = d["history"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["scheduled", "started", "completed"]);

    let out = server.cli(&["describe", "w1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status     completed   attempt 1"), "{text}");

    let out = server.cli(&["list", "--status", "completed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().nth(1).unwrap().starts_with("w1 "), "{text}");

    let out = server.cli(&["result", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: no activity nope (NotFound)\n");

    let out = server.cli(&["queue", "default", "--json"]);
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((q["backlog"].as_u64(), q["served_here"].as_bool()), (Some(0), Some(true)));
    let counted: u64 = q["counts"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert!(counted > 0, "executions counted by type and status: {q}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["list", "--address", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error: cannot connect to the sluice server at http://127.0.0.1:1")
    );
}

#[test]
fn serve_refuses_to_start_with_a_clear_error() {
    let serve = |dir: &std::path::Path, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--config"])
            .arg(dir.join("sluice.toml"))
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = serve(dir.path(), &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!("error: {}/sluice.toml: cannot read: No such file or directory (os error 2)\n", dir.path().display())
    );

    // A granted directory that does not exist (no outbox/ here).
    std::fs::write(dir.path().join("sluice.toml"), config("")).unwrap();
    let (code, err) = serve(dir.path(), &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "error: activity type send-email: cannot grant directory {}/outbox: it is not a directory\n",
            dir.path().display()
        )
    );

    // A component that does not exist.
    std::fs::create_dir(dir.path().join("outbox")).unwrap();
    let text = config("[activities.ghost]\ncomponent = \"ghost.wasm\"\nstart_to_close_timeout = \"1s\"\n");
    std::fs::write(dir.path().join("sluice.toml"), text).unwrap();
    let (code, err) = serve(dir.path(), &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "error: activity type ghost: cannot read component {}/ghost.wasm: No such file or directory (os error 2)\n",
            dir.path().display()
        )
    );

    // A listen address already taken.
    std::fs::write(dir.path().join("sluice.toml"), config("")).unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = serve(dir.path(), &["--listen", &addr]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with(&format!("error: cannot listen on {addr}: ")), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_type_that_reuses_instances_keeps_module_state_between_attempts() {
    let misbehaving = sluice_test_programs::MISBEHAVING;
    let (server, _dir) = Server::start(&format!(
        "[activities.counter]\ncomponent = \"{misbehaving}\"\nstart_to_close_timeout = \"10s\"\nslots = 1\nreuse_instances = true\n"
    ));
    let mut c = server.activities().await;
    let mut calls = Vec::new();
    for (ty, id) in [("counter", "c1"), ("counter", "c2"), ("misbehaving", "m1"), ("misbehaving", "m2")] {
        c.start_activity(start_req(ty, id, json!({"do": "count"}))).await.unwrap();
        calls.push(decode(&result(&mut c, id, 30.0).await.result)["calls"].as_u64().unwrap());
    }
    assert_eq!(calls, [1, 2, 1, 1], "reuse_instances keeps the instance; the default does not");
}
