//! The HTTP listener of the real binary: the JSON API (same validation and
//! errors as gRPC), event streams, the OpenAPI document and metrics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::common::server::*;

/// One HTTP/1.1 request: (status, body).
fn request(server: &Server, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(&server.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(rest) } else { rest.to_string() };
    (status, body)
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
}

fn json_request(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, body) = request(server, method, path, text.as_deref(), None);
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_json_api_starts_waits_lists_and_operates_like_grpc() {
    let (server, _dir) = Server::start("");
    let (status, started) = json_request(
        &server,
        "POST",
        "/api/v1/activities",
        Some(json!({"activity_id": "web-1", "activity_type": "hello", "input": {"json": {"name": "Web"}}})),
    );
    assert_eq!(status, 200, "{started}");
    assert_eq!((started["activity_id"].as_str(), started["started"].as_bool()), (Some("web-1"), Some(true)));
    let (status, done) = json_request(&server, "GET", "/api/v1/activities/web-1/result?wait=10s", None);
    assert_eq!(status, 200);
    assert_eq!(done["execution"]["status"], "ACTIVITY_STATUS_COMPLETED", "{done}");
    assert_eq!(done["execution"]["result"], json!({"json": {"greeting": "Hello, Web!"}}));
    let (_, page) = json_request(&server, "GET", "/api/v1/activities?status=completed&activity_type=hello", None);
    assert!(page["executions"].as_array().unwrap().iter().any(|e| e["activity_id"] == "web-1"), "{page}");
    let (_, described) = json_request(&server, "GET", "/api/v1/activities/web-1?logs_page_size=5", None);
    assert_eq!(described["history"].as_array().unwrap().last().unwrap()["kind"], "completed");

    // Operating: pause and unpause a waiting execution, over HTTP.
    json_request(
        &server,
        "POST",
        "/api/v1/activities",
        Some(json!({"activity_id": "idle-1", "activity_type": "hello", "task_queue": "idle"})),
    );
    let (status, paused) = json_request(&server, "POST", "/api/v1/activities/idle-1/pause", None);
    assert_eq!((status, paused["execution"]["paused"].as_bool()), (200, Some(true)), "{paused}");
    let (status, batch) = json_request(
        &server,
        "POST",
        "/api/v1/batch/operation",
        Some(json!({"query": "queue = \"idle\"", "operation": "terminate", "reason": "web"})),
    );
    assert_eq!((status, batch["applied"].as_str()), (200, Some("1")), "{batch}");
    let (status, _) = json_request(&server, "DELETE", "/api/v1/activities/idle-1", None);
    assert_eq!(status, 200);
    let (_, types) = json_request(&server, "GET", "/api/v1/types", None);
    assert!(types["activity_types"].as_array().unwrap().iter().any(|t| t["name"] == "hello"));
    let (_, queue) = json_request(&server, "GET", "/api/v1/queues/default?closed_counts=true", None);
    assert_eq!(queue["served_here"], true, "{queue}");
    let hello_counts = queue["counts"].as_array().unwrap().iter().find(|c| c["activity_type"] == "hello").cloned();
    assert_eq!(hello_counts.unwrap()["status"], "ACTIVITY_STATUS_COMPLETED");

    // A deploy over HTTP: the component is the body.
    let wasm = std::fs::read(sluice_test_programs::HELLO).unwrap();
    let (status, body) = raw_put(&server, "/api/v1/types/web-greet/versions?version=w1&set=slots%3D2", &wasm);
    assert_eq!(status, 200, "{body}");
    let deployed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (deployed["activity_type"]["current_version"].as_str(), deployed["activity_type"]["slots"].as_u64()),
        (Some("w1"), Some(2))
    );
    let (status, body) = raw_put(&server, "/api/v1/types/web-greet/versions", b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("the body is empty"), "{body}");
    let (status, body) = raw_put(&server, "/api/v1/types/web-greet/versions?colour=red", &wasm);
    assert_eq!(status, 400);
    assert!(body.contains("unknown query parameter") && body.contains("colour"), "{body}");
    let (status, body) = raw_put(&server, "/api/v1/types/web-greet/versions", b"not wasm");
    assert_eq!(status, 400);
    assert!(body.contains("not a WebAssembly file"), "{body}");
}

/// A PUT with a binary body: (status, body).
fn raw_put(server: &Server, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(&server.http).unwrap();
    write!(s, "PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/wasm\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    s.write_all(body).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    (head.split(' ').nth(1).unwrap().parse().unwrap(), rest.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_http_error_has_the_grpc_meaning_and_a_json_body() {
    let hash = sluice::api::hash_token("s3cret");
    let (server, _dir) = Server::start(&format!("[server.auth]\ntokens_sha256 = [\"{hash}\"]\n"));
    let t = Some("s3cret");
    let check = |method: &str, path: &str, body: Option<&str>, token: Option<&str>, want: (u16, &str, &str)| {
        let (status, text) = request(&server, method, path, body, token);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {text}"));
        assert_eq!(status, want.0, "{method} {path}: {text}");
        assert_eq!(v["code"], want.1, "{method} {path}: {text}");
        assert!(v["message"].as_str().unwrap().contains(want.2), "{method} {path}: {text}");
    };
    check("GET", "/api/v1/activities", None, None, (401, "UNAUTHENTICATED", "missing bearer token"));
    check("GET", "/metrics", None, Some("wrong"), (401, "UNAUTHENTICATED", "unknown bearer token"));
    check("GET", "/api/v1/activities/nope", None, t, (404, "NOT_FOUND", "no activity nope"));
    check("POST", "/api/v1/activities", Some("not json"), t, (400, "INVALID_ARGUMENT", "the body is not JSON"));
    check("POST", "/api/v1/activities", Some("[1]"), t, (400, "INVALID_ARGUMENT", "must be a JSON object"));
    check("POST", "/api/v1/activities", Some("{}"), t, (400, "INVALID_ARGUMENT", "activity_type is required"));
    check(
        "POST",
        "/api/v1/activities",
        Some(r#"{"activity_type": "hello", "colour": 1}"#),
        t,
        (400, "INVALID_ARGUMENT", "colour"),
    );
    check(
        "POST",
        "/api/v1/activities",
        Some(r#"{"activity_type": "hello", "priority": 9}"#),
        t,
        (400, "INVALID_ARGUMENT", "priority must be 1 (first) to 5"),
    );
    check(
        "POST",
        "/api/v1/activities",
        Some(r#"{"activity_type": "hello", "start_to_close_timeout": "soon"}"#),
        t,
        (400, "INVALID_ARGUMENT", "start_to_close_timeout"),
    );
    let big = format!(r#"{{"activity_type": "hello", "input": {{"json": "{}"}}}}"#, "x".repeat(3 << 20));
    check("POST", "/api/v1/activities", Some(&big), t, (413, "RESOURCE_EXHAUSTED", "over the limit"));
    check(
        "POST",
        "/api/v1/activities/x/complete",
        Some(r#"{"result": {"json": 1}}"#),
        t,
        (404, "NOT_FOUND", "no activity x"),
    );
    check(
        "POST",
        "/api/v1/tasks/complete",
        Some(r#"{"task_token": "forged"}"#),
        t,
        (403, "PERMISSION_DENIED", "token"),
    );
    check("GET", "/api/v1/nothing-here", None, t, (404, "NOT_FOUND", "no such route"));
    check("PUT", "/api/v1/activities", None, t, (405, "INVALID_ARGUMENT", "does not take that method"));
    check("GET", "/api/v1/types/none", None, t, (404, "NOT_FOUND", "no activity type none"));
    // A start id that exists, with the reject policy.
    let start = r#"{"activity_id": "dup", "activity_type": "hello", "task_queue": "idle"}"#;
    assert_eq!(request(&server, "POST", "/api/v1/activities", Some(start), t).0, 200);
    check("POST", "/api/v1/activities", Some(start), t, (409, "ALREADY_EXISTS", "dup"));
    check("POST", "/api/v1/activities/dup/unpause", None, t, (400, "FAILED_PRECONDITION", "is not paused"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_activity_streams_its_events_as_server_sent_events() {
    let (server, _dir) = Server::start("");
    let (status, _) = json_request(
        &server,
        "POST",
        "/api/v1/activities",
        Some(
            json!({"activity_id": "sse-1", "activity_type": "resumable", "input": {"json": {"to": 3, "step_ms": 100}}}),
        ),
    );
    assert_eq!(status, 200);
    let mut s = TcpStream::connect(&server.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /api/v1/activities/sse-1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(s).lines() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            seen.push(name.to_string());
        }
        if line.starts_with("data: ")
            && line.contains("ACTIVITY_STATUS_COMPLETED")
            && line.contains("\"kind\":\"completed\"")
        {
            break;
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("snapshot"), "{seen:?}");
    assert!(seen.contains(&"progress".to_string()) && seen.contains(&"heartbeat".to_string()), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("transition"), "{seen:?}");

    // A log record streams as the attempt writes it (here, before it goes
    // pending). The execution waits on a queue nobody serves until the
    // stream is open, so the record cannot come before it.
    let start = json!({"activity_id": "sse-2", "activity_type": "misbehaving", "task_queue": "parked",
                       "input": {"json": {"do": "pending"}}});
    assert_eq!(json_request(&server, "POST", "/api/v1/activities", Some(start)).0, 200);
    let mut s = TcpStream::connect(&server.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /api/v1/activities/sse-2/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut lines = BufReader::new(s).lines().map(|l| l.unwrap());
    // The snapshot is sent once the stream follows the execution.
    assert!(lines.by_ref().any(|l| l == "event: snapshot"), "the stream opens with a snapshot");
    let moved = server.cli(&["update-options", "sse-2", "--queue", "default"]);
    assert!(moved.status.success(), "{}", String::from_utf8_lossy(&moved.stderr));
    let mut last_event = String::new();
    let log = loop {
        let line = lines.next().expect("the stream goes on");
        if let Some(name) = line.strip_prefix("event: ") {
            last_event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ")
            && last_event == "log"
        {
            break serde_json::from_str::<Value>(data).unwrap();
        }
    };
    assert_eq!(log["attempt"], 1);
    assert_eq!(log["message"], "handing off", "{log}");
    assert!(log["fields"]["token"].as_str().is_some_and(|t| t.len() > 20), "{log}");
}

/// The value of a sample line `name{labels} value`, 0 if absent.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_ran_and_parse_as_prometheus_text() {
    let (server, _dir) = Server::start("");
    let before = request(&server, "GET", "/metrics", None, None).1;
    let mut c = server.activities().await;
    for i in 0..5 {
        c.start_activity(start_req("hello", &format!("m{i}"), json!({"name": "M"}))).await.unwrap();
    }
    c.start_activity(start_req("hello", "m-bad", json!({"name": ""}))).await.unwrap();
    for i in 0..5 {
        result(&mut c, &format!("m{i}"), 30.0).await;
    }
    result(&mut c, "m-bad", 30.0).await;
    let (status, after) = request(&server, "GET", "/metrics", None, None);
    assert_eq!(status, 200);
    let started = r#"sluice_activities_started_total{activity_type="hello",task_queue="default"}"#;
    assert_eq!(sample(&after, started) - sample(&before, started), 6.0, "{after}");
    let completed = r#"sluice_activities_closed_total{activity_type="hello",task_queue="default",status="completed"}"#;
    assert_eq!(sample(&after, completed) - sample(&before, completed), 5.0);
    let failed = r#"sluice_attempt_failures_total{activity_type="hello",category="application"}"#;
    assert_eq!(sample(&after, failed) - sample(&before, failed), 1.0);
    let waited = r#"sluice_schedule_to_start_seconds_count{activity_type="hello",task_queue="default"}"#;
    assert_eq!(sample(&after, waited) - sample(&before, waited), 6.0);
    assert!(sample(&after, r#"sluice_attempt_duration_seconds_count{activity_type="hello"}"#) >= 6.0);
    assert!(sample(&after, "sluice_store_commit_seconds_count") > sample(&before, "sluice_store_commit_seconds_count"));
    assert!(sample(&after, "sluice_store_fsync_seconds_count") > 0.0);
    assert!(sample(&after, "sluice_sandbox_instantiate_seconds_count") >= 6.0);
    assert!(after.contains(r#"sluice_queue_free_slots{task_queue="default"} 16"#), "{after}");
    assert!(after.contains(r#"sluice_queue_backlog{task_queue="default"} 0"#));
    // The text format: HELP/TYPE comments, samples `name{labels} value`, `# EOF` last.
    for line in after.lines() {
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF", "{line}");
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(name.starts_with("sluice_") && name.chars().next().unwrap().is_ascii_alphabetic(), "{line}");
    }
    assert_eq!(after.lines().last(), Some("# EOF"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_served() {
    let (server, _dir) = Server::start("");
    let (status, doc) = json_request(&server, "GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    let kept: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    assert!(doc == kept, "the served document differs from host/openapi.json");
}

/// The API against its own OpenAPI document, with schemathesis (PyPI): a
/// bounded run of generated requests on every route, checking that none
/// gets a server error and every reply — status, content type, headers,
/// body — is one the document allows. (Long-polls and event streams are
/// left to the tests above: generated waits would only make it slow.)
#[tokio::test(flavor = "multi_thread")]
async fn the_http_api_conforms_to_its_openapi_document() {
    let (server, dir) = Server::start("");
    let out = std::process::Command::new("schemathesis")
        // Its example database goes there, not into the source tree.
        .current_dir(dir.path())
        .args(["run", &format!("http://{}/api/v1/openapi.json", server.http)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        ])
        .args(["--max-examples", "5", "--request-timeout", "10", "--seed", "1"])
        .args(["--exclude-path-regex", "(/result|/events|/tasks/poll)$"])
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis is installed (python3 -m pip install schemathesis; .ci/run does)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found problems:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("passed"), "{report}");
}
