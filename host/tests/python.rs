//! Clients in Python (grpcio, stubs generated from our proto): an external
//! worker serving a queue, and the async-email example's mail service.

mod common;

use std::path::Path;
use std::process::Command;

use common::server::*;
use serde_json::json;
use sluice::api::pb;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs a Python script; fails the test with a clear message if Python or
/// grpcio is missing rather than skipping.
fn python(script: &str, args: &[&str], addr: &str) -> String {
    let out = Command::new("python3")
        .arg(repo().join(script))
        .args(args)
        .env("SLUICE_ADDRESS", addr)
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for this test ({e}); install Python 3"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}). If grpcio is missing: pip install grpcio grpcio-tools\n{stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_worker_polls_a_queue_and_completes_tasks() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    for (id, input) in [
        ("s1", json!({"text": "hello"})),
        ("s2", json!({"text": "grpc"})),
        ("s3", json!({"text": "nope", "fail": true})),
    ] {
        let mut req = start_req("shout", id, input);
        req.task_queue = "py".into();
        req.start_to_close_timeout = secs(30.0);
        c.start_activity(req).await.unwrap();
    }
    let addr = server.addr.trim_start_matches("http://").to_string();
    let log = python("tests/python/external_worker.py", &["--queue", "py", "--count", "3"], &addr);
    assert_eq!(log.lines().count(), 3, "{log}");

    let e = result(&mut c, "s1", 10.0).await;
    assert_eq!(decode(&e.result), json!({"shout": "HELLO!", "attempt": 1}));
    assert!(e.last_worker.starts_with("external:py-worker-"), "{}", e.last_worker);
    assert_eq!(decode(&e.heartbeat_details), json!({"step": 1}));
    assert_eq!(decode(&result(&mut c, "s2", 10.0).await.result), json!({"shout": "GRPC!", "attempt": 1}));
    let e = result(&mut c, "s3", 10.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Failed as i32);
    let f = e.last_failure.unwrap();
    assert_eq!((f.error_type.as_str(), f.non_retryable), ("Refused", true));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mail_service_completes_async_email_activities() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    for i in 0..3 {
        let id = format!("mail-{i}");
        c.start_activity(start_req("send-email", &id, json!({"to": format!("u{i}@example.com"), "subject": "hi"})))
            .await
            .unwrap();
    }
    let outbox = server.dir.join("outbox");
    let addr = server.addr.trim_start_matches("http://").to_string();
    let log = python(
        "examples/async-email/mail_service.py",
        &["--outbox", outbox.to_str().unwrap(), "--count", "3", "--timeout", "60"],
        &addr,
    );
    assert_eq!(log.lines().filter(|l| l.starts_with("sending to u")).count(), 3, "{log}");
    for i in 0..3 {
        let e = result(&mut c, &format!("mail-{i}"), 10.0).await;
        assert_eq!(e.status, pb::ActivityStatus::Completed as i32);
        assert_eq!(decode(&e.result)["to"], format!("u{i}@example.com"));
    }
    // A bad address fails at once, without reaching the mail service.
    c.start_activity(start_req("send-email", "bad", json!({"to": "nobody", "subject": "x"}))).await.unwrap();
    let e = result(&mut c, "bad", 10.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Failed as i32);
    assert_eq!(e.last_failure.unwrap().error_type, "InvalidAddress");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_helper_starts_many_in_batches_and_follows_them_on_one_stream() {
    let (server, _dir) = Server::start("");
    let addr = server.addr.trim_start_matches("http://").to_string();
    let out = python("tests/python/many.py", &["--count", "50"], &addr);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 51, "{out}");
    let mut closed: Vec<&str> = lines[..50].to_vec();
    closed.sort();
    let mut expected: Vec<String> =
        (0..50).map(|i| format!("py-{i} ACTIVITY_STATUS_COMPLETED {{\"greeting\":\"Hello, n{i}!\"}}")).collect();
    expected.sort();
    assert_eq!(closed, expected);
    assert_eq!(lines[50], "refused 1 activity_type is required");
}
