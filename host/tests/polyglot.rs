//! The Python, JavaScript and C examples, built with the real `sluice build`
//! (which installs each toolchain on first use) and run through a real
//! `sluice serve`, must behave exactly like the Rust ones: same input, same
//! output bytes; resume from heartbeat details; application errors keep
//! their type and non-retryable flag; cancellation is acknowledged.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::server::*;
use serde_json::json;
use sluice::api::pb;

/// Builds `examples/<lang>/<name>` into the test's target folder (`http`:
/// against the world with wasi:http). A toolchain that cannot be installed
/// fails the test with `sluice build`'s message, which names the toolchain
/// and the reason.
fn build(lang: &str, name: &str, http: bool) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = root.join("examples").join(lang).join(name);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("polyglot").join(format!("{name}-{lang}.wasm"));
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("build")
        .args(http.then_some("--http"))
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run sluice build");
    assert!(
        output.status.success(),
        "`sluice build {}` failed, so the {lang} guests cannot be tested:\n{}",
        src.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// A server with the Rust `hello` and `resumable` plus `lang`'s.
fn server(lang: &str) -> (Server, tempfile::TempDir) {
    let hello = build(lang, "hello", false);
    let resumable = build(lang, "resumable", false);
    Server::start(&format!(
        r#"
[activities.hello-{lang}]
component = "{hello}"
start_to_close_timeout = "30s"

[activities.resumable-{lang}]
component = "{resumable}"
start_to_close_timeout = "60s"
heartbeat_timeout = "10s"
[activities.resumable-{lang}.retry]
initial_interval = "100ms"
"#,
        hello = hello.display(),
        resumable = resumable.display(),
    ))
}

async fn behaves_like_rust(lang: &str) {
    let (server, _dir) = server(lang);
    let mut c = server.activities().await;
    let ours = |t: &str| format!("{t}-{lang}");

    // Same input, same output bytes (escapes and non-ASCII included).
    for (n, input) in [json!({"name": "Ada"}), json!({"name": "Ada \"Lovelace\" é ☃"})].into_iter().enumerate() {
        for ty in ["hello".to_string(), ours("hello")] {
            c.start_activity(start_req(&ty, &format!("{ty}-{n}"), input.clone())).await.unwrap();
        }
        let rust = result(&mut c, &format!("hello-{n}"), 60.0).await;
        let guest = result(&mut c, &format!("{}-{n}", ours("hello")), 60.0).await;
        assert_eq!(guest.status, pb::ActivityStatus::Completed as i32, "{lang}: {guest:?}");
        assert_eq!(guest.result.as_ref().unwrap().data, rust.result.as_ref().unwrap().data, "{lang} output differs");
        assert_eq!(guest.result.as_ref().unwrap().encoding, "json/plain");
        // The same structured log record.
        let log = |logs: Vec<pb::LogRecord>| {
            logs.into_iter().find(|l| l.message == "greeting").map(|l| (l.level, l.fields)).expect("a greeting log")
        };
        let rust_log = log(describe(&mut c, &format!("hello-{n}")).await.logs);
        let guest_log = log(describe(&mut c, &format!("{}-{n}", ours("hello"))).await.logs);
        assert_eq!(guest_log, rust_log, "{lang}");
        assert_eq!(guest_log.1["name"], input["name"].as_str().unwrap());
    }

    // An application error keeps its type, message and non-retryable flag:
    // one attempt, then failed.
    for ty in ["hello".to_string(), ours("hello")] {
        c.start_activity(start_req(&ty, &format!("{ty}-empty"), json!({"name": "  "}))).await.unwrap();
    }
    let rust = result(&mut c, "hello-empty", 60.0).await;
    let guest = result(&mut c, &format!("{}-empty", ours("hello")), 60.0).await;
    assert_eq!(guest.status, pb::ActivityStatus::Failed as i32, "{lang}: {guest:?}");
    assert_eq!(guest.attempt, 1);
    let (rf, gf) = (rust.last_failure.unwrap(), guest.last_failure.unwrap());
    assert_eq!(
        (gf.source.as_str(), gf.error_type.as_str(), gf.message.as_str(), gf.non_retryable),
        (rf.source.as_str(), rf.error_type.as_str(), rf.message.as_str(), rf.non_retryable)
    );
    assert_eq!((gf.error_type.as_str(), gf.non_retryable), ("EmptyName", true));

    // Input in another encoding: refused by the SDK before the function runs.
    for ty in ["hello".to_string(), ours("hello")] {
        let mut req = start_req(&ty, &format!("{ty}-text"), json!(null));
        req.input = Some(pb::Payload { encoding: "text/plain".into(), data: b"Ada".to_vec() });
        c.start_activity(req).await.unwrap();
    }
    let rust = result(&mut c, "hello-text", 60.0).await.last_failure.unwrap();
    let guest = result(&mut c, &format!("{}-text", ours("hello")), 60.0).await.last_failure.unwrap();
    assert_eq!((guest.error_type.as_str(), guest.non_retryable), ("InvalidInput", true), "{lang}");
    assert_eq!(guest.message, rust.message);

    // A retryable error, then the next attempt resumes from the heartbeat.
    let input = json!({"from": 0, "to": 6, "fail_at": 3});
    for ty in ["resumable".to_string(), ours("resumable")] {
        c.start_activity(start_req(&ty, &format!("{ty}-resume"), input.clone())).await.unwrap();
    }
    let rust = result(&mut c, "resumable-resume", 60.0).await;
    let guest = result(&mut c, &format!("{}-resume", ours("resumable")), 60.0).await;
    assert_eq!(guest.status, pb::ActivityStatus::Completed as i32, "{lang}: {guest:?}");
    assert_eq!(guest.attempt, 2);
    assert_eq!(decode(&guest.result), json!({"started_at": 3, "counted": 3, "sum": 12}));
    assert_eq!(guest.result.as_ref().unwrap().data, rust.result.as_ref().unwrap().data);
    assert_eq!(decode(&guest.heartbeat_details), json!({"next": 6}));
    let d = describe(&mut c, &format!("{}-resume", ours("resumable"))).await;
    let kinds: Vec<String> = d.history.iter().map(|h| h.kind.clone()).collect();
    assert_eq!(kinds, ["scheduled", "started", "retry-scheduled", "started", "completed"], "{lang}");
    assert_eq!(d.execution.unwrap().last_failure.unwrap().error_type, "Interrupted");

    // Cancellation: the heartbeat answers it and the guest acknowledges.
    let id = format!("{}-cancel", ours("resumable"));
    c.start_activity(start_req(&ours("resumable"), &id, json!({"to": 100000, "step_ms": 20}))).await.unwrap();
    wait_status(&mut c, &id, pb::ActivityStatus::Started).await;
    c.request_cancel_activity(pb::RequestCancelActivityRequest { activity_id: id.clone(), run_id: String::new() })
        .await
        .unwrap();
    let e = result(&mut c, &id, 60.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Cancelled as i32, "{lang}: {e:?}");
    assert!(e.last_failure.as_ref().is_none_or(|f| f.source != "sandbox"), "{lang} had to be interrupted: {e:?}");

    // Pause: the heartbeat answers it, the guest stops with Paused (not
    // counted as an attempt), and resumes from its heartbeat when unpaused.
    let id = format!("{}-pause", ours("resumable"));
    let target = || Some(pb::ActivityRef { activity_id: id.clone(), run_id: String::new() });
    c.start_activity(start_req(&ours("resumable"), &id, json!({"to": 200, "step_ms": 20}))).await.unwrap();
    wait_status(&mut c, &id, pb::ActivityStatus::Started).await;
    c.pause_activity(pb::PauseActivityRequest { activity: target() }).await.unwrap();
    wait_status(&mut c, &id, pb::ActivityStatus::Scheduled).await;
    let e = describe(&mut c, &id).await.execution.unwrap();
    let failure = e.last_failure.clone().unwrap();
    assert_eq!((failure.source.as_str(), failure.error_type.as_str()), ("application", "Paused"), "{lang}: {e:?}");
    assert_eq!((e.paused, e.policy_attempt), (true, 1), "{lang}");
    c.unpause_activity(pb::UnpauseActivityRequest { activity: target(), jitter: None }).await.unwrap();
    let e = result(&mut c, &id, 60.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Completed as i32, "{lang}: {e:?}");
    assert!(decode(&e.result)["started_at"].as_i64().unwrap() > 0, "{lang} resumed: {e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_guests_behave_like_rust() {
    behaves_like_rust("python").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_guests_behave_like_rust() {
    behaves_like_rust("js").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn c_guests_behave_like_rust() {
    behaves_like_rust("c").await;
}

/// Answers every connection with one fixed JSON response; returns its port.
fn http_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = r#"{"ok":true}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn python_outbound_http_reaches_allow_listed_hosts_only() {
    let port = http_server();
    let fetch = build("python", "fetch", true);
    let (server, _dir) = Server::start(&format!(
        r#"
[activities.fetch-allowed]
component = "{fetch}"
start_to_close_timeout = "30s"
allow_http = ["127.0.0.1:{port}"]

[activities.fetch-denied]
component = "{fetch}"
start_to_close_timeout = "30s"
allow_http = ["*.example.com", "127.0.0.1:1"]
"#,
        fetch = fetch.display()
    ));
    let mut c = server.activities().await;
    let url = format!("http://127.0.0.1:{port}/status");
    c.start_activity(start_req("fetch-allowed", "allowed", json!({ "url": url }))).await.unwrap();
    c.start_activity(start_req("fetch-denied", "denied", json!({ "url": url }))).await.unwrap();

    let e = result(&mut c, "allowed", 60.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Completed as i32, "{e:?}");
    assert_eq!(decode(&e.result), json!({"status": 200, "content_type": "application/json", "body": "{\"ok\":true}"}));

    let e = result(&mut c, "denied", 60.0).await;
    assert_eq!(e.status, pb::ActivityStatus::Failed as i32, "{e:?}");
    assert_eq!(e.attempt, 1, "a denial is not retried");
    let f = e.last_failure.unwrap();
    assert_eq!((f.error_type.as_str(), f.non_retryable), ("HttpRequestDenied", true));
    assert!(f.message.contains("127.0.0.1 is not in this activity type's allow_http"), "{}", f.message);
    let logs = describe(&mut c, "denied").await.logs;
    let expected = format!("capability denied: HTTP GET {url} (not in allow_http: *.example.com, 127.0.0.1:1)");
    assert!(logs.iter().any(|l| l.message == expected), "{logs:?}");
}
