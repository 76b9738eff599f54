//! OTLP trace export (OTLP/HTTP with JSON bodies): a span per execution,
//! from its scheduling to its close, and a span per WASM attempt under it,
//! with the activity id, run id, type and attempt as attributes. Spans are
//! queued (never blocking the engine), sent in batches by a background
//! task, and dropped — counted — when the collector cannot keep up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::activity::{Execution, Millis, Status, TraceContext, new_span_id};

/// Spans waiting to be sent, at most; more are dropped.
const QUEUE: usize = 10_000;
/// Spans per request, at most.
const BATCH: usize = 512;
/// Longest a span waits before its batch is sent.
const LINGER: Duration = Duration::from_millis(500);

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub start: Millis,
    pub end: Millis,
    pub attributes: Vec<(&'static str, String)>,
    pub error: Option<String>,
}

/// Where spans go: an OTLP/HTTP collector.
pub struct Tracer {
    tx: mpsc::Sender<Span>,
    pub dropped: Arc<AtomicU64>,
}

impl Tracer {
    /// Starts the exporter sending to `endpoint` (e.g. `http://127.0.0.1:4318`;
    /// `/v1/traces` is added), for service `service`.
    pub fn spawn(endpoint: &str, service: String) -> anyhow::Result<Tracer> {
        let target = Target::parse(endpoint)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(export(target, service, rx));
        Ok(Tracer { tx, dropped })
    }

    fn send(&self, span: Span) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The span of an execution that just closed.
    pub fn execution(&self, e: &Execution) {
        let Some(t) = &e.trace else { return };
        let error = match e.status {
            Status::Completed => None,
            other => Some(e.last_failure.as_ref().map_or_else(|| other.to_string(), |f| f.message.clone())),
        };
        self.send(Span {
            trace_id: t.trace_id.clone(),
            span_id: t.span_id.clone(),
            parent_span_id: t.parent_span_id.clone(),
            name: format!("activity {}", e.activity_type),
            start: e.scheduled_at,
            end: e.closed_at.unwrap_or(e.scheduled_at),
            attributes: attributes(e, e.attempt),
            error,
        });
    }

    /// The span of one attempt of `e` (`outcome` is how it ended).
    pub fn attempt(&self, e: &Execution, start: Millis, end: Millis, error: Option<String>) {
        let Some(t) = &e.trace else { return };
        self.send(Span {
            trace_id: t.trace_id.clone(),
            span_id: new_span_id(),
            parent_span_id: Some(t.span_id.clone()),
            name: format!("attempt {}", e.activity_type),
            start,
            end,
            attributes: attributes(e, e.policy_attempt()),
            error,
        });
    }
}

fn attributes(e: &Execution, attempt: u32) -> Vec<(&'static str, String)> {
    vec![
        ("sluice.activity_id", e.activity_id.clone()),
        ("sluice.run_id", e.run_id.clone()),
        ("sluice.activity_type", e.activity_type.clone()),
        ("sluice.task_queue", e.task_queue.clone()),
        ("sluice.attempt", attempt.to_string()),
        ("sluice.status", e.status.to_string()),
    ]
}

/// A trace context for a new execution: the caller's, else a new trace.
pub fn context(traceparent: Option<&str>, traced: bool) -> Option<TraceContext> {
    match traceparent.and_then(TraceContext::from_traceparent) {
        Some(t) => Some(t),
        None => traced.then(TraceContext::new_root),
    }
}

/// An `http://host:port/path` collector endpoint.
struct Target {
    authority: String,
    path: String,
}

impl Target {
    fn parse(endpoint: &str) -> anyhow::Result<Target> {
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
            anyhow::anyhow!("traces.otlp_endpoint {endpoint:?}: give an http:// address, e.g. http://127.0.0.1:4318")
        })?;
        let (authority, base) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() {
            anyhow::bail!("traces.otlp_endpoint {endpoint:?}: no host");
        }
        let base = base.trim_end_matches('/');
        let path = if base.ends_with("v1/traces") {
            format!("/{base}")
        } else if base.is_empty() {
            "/v1/traces".into()
        } else {
            format!("/{base}/v1/traces")
        };
        Ok(Target { authority: authority.to_string(), path })
    }
}

async fn export(target: Target, service: String, mut rx: mpsc::Receiver<Span>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = body(&service, &batch).to_string();
        if let Err(e) = post(&target, &body).await {
            tracing::warn!("cannot export {} spans to http://{}{}: {e}", batch.len(), target.authority, target.path);
        }
    }
}

fn body(service: &str, spans: &[Span]) -> Value {
    let nanos = |ms: Millis| (ms as u128 * 1_000_000).to_string();
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut v = json!({
                "traceId": s.trace_id,
                "spanId": s.span_id,
                "name": s.name,
                "kind": 1,
                "startTimeUnixNano": nanos(s.start),
                "endTimeUnixNano": nanos(s.end.max(s.start)),
                "attributes": s.attributes.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect::<Vec<_>>(),
                "status": match &s.error { None => json!({"code": 1}), Some(m) => json!({"code": 2, "message": m}) },
            });
            if let Some(p) = &s.parent_span_id {
                v["parentSpanId"] = p.clone().into();
            }
            v
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "sluice", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}]
    }]})
}

/// One HTTP/1.1 POST; an error unless the collector answers 2xx.
async fn post(target: &Target, body: &str) -> anyhow::Result<()> {
    let connect = tokio::net::TcpStream::connect(&target.authority);
    let mut stream = tokio::time::timeout(Duration::from_secs(5), connect).await??;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        target.path,
        target.authority,
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut head)).await??;
    let status = std::str::from_utf8(&head[9..12]).unwrap_or("000");
    if !status.starts_with('2') {
        anyhow::bail!("the collector answered {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_traces_path() {
        let path = |e: &str| Target::parse(e).map(|t| (t.authority, t.path));
        assert_eq!(path("http://127.0.0.1:4318").unwrap(), ("127.0.0.1:4318".into(), "/v1/traces".into()));
        assert_eq!(path("http://c:4318/otlp/").unwrap().1, "/otlp/v1/traces");
        assert_eq!(path("http://c:4318/v1/traces").unwrap().1, "/v1/traces");
        assert!(path("https://c").unwrap_err().to_string().contains("give an http:// address"));
    }
}
