//! OTLP trace export of the real binary to a small in-test OTLP/HTTP
//! receiver: a span per execution (continuing the caller's W3C trace) and
//! one per attempt under it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::common::server::*;

/// Accepts OTLP/HTTP JSON posts; every span received, flattened.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut length, mut line) = (0, String::new());
            let mut path = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if path.is_empty() {
                    path = line.split(' ').nth(1).unwrap_or_default().to_string();
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                line.clear();
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let doc: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(path, "/v1/traces");
            for rs in doc["resourceSpans"].as_array().unwrap() {
                assert_eq!(rs["resource"]["attributes"][0]["value"]["stringValue"], "sluice-test");
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    sink.lock().unwrap().extend(ss["spans"].as_array().unwrap().iter().cloned());
                }
            }
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    (addr, spans)
}

fn attribute(span: &Value, key: &str) -> String {
    let attrs = span["attributes"].as_array().unwrap();
    let a = attrs.iter().find(|a| a["key"] == key).unwrap_or_else(|| panic!("no {key} in {span}"));
    a["value"]["stringValue"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_and_attempts_are_exported_as_spans_in_the_callers_trace() {
    let (collector, spans) = receiver();
    let config = format!("[traces]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"sluice-test\"\n");
    let (server, _dir) = Server::start(&config);
    let mut c = server.activities().await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut req = tonic::Request::new(start_req("hello", "traced", json!({"name": "T"})));
    req.metadata_mut().insert("traceparent", format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap());
    c.start_activity(req).await.unwrap();
    c.start_activity(start_req("hello", "untraced", json!({"name": "U"}))).await.unwrap();
    result(&mut c, "traced", 30.0).await;
    result(&mut c, "untraced", 30.0).await;

    let find = |id: &str, name: &str| {
        spans.lock().unwrap().iter().find(|s| attribute(s, "sluice.activity_id") == id && s["name"] == name).cloned()
    };
    for _ in 0..100 {
        if find("traced", "activity hello").is_some() && find("untraced", "activity hello").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let execution = find("traced", "activity hello").expect("the execution's span");
    assert_eq!(execution["traceId"], trace, "it continues the caller's trace");
    assert_eq!(execution["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(execution["status"]["code"], 1);
    assert_eq!(attribute(&execution, "sluice.activity_type"), "hello");
    assert_eq!(attribute(&execution, "sluice.status"), "completed");
    assert!(!attribute(&execution, "sluice.run_id").is_empty());
    let attempt = find("traced", "attempt hello").expect("the attempt's span");
    assert_eq!(attempt["traceId"], trace);
    assert_eq!(attempt["parentSpanId"], execution["spanId"], "the attempt is under the execution");
    assert_eq!(attribute(&attempt, "sluice.attempt"), "1");
    let start: u128 = execution["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u128 = execution["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(end >= start && end - start < 30_000_000_000, "{start}..{end}");

    let root = find("untraced", "activity hello").expect("an untraced start gets a trace of its own");
    assert_ne!(root["traceId"], trace);
    assert_eq!(root["traceId"].as_str().unwrap().len(), 32);
    assert!(root.get("parentSpanId").is_none());
}
