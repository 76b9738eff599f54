//! Connecting the CLI to a Sluice server, and showing what it returns.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::api::pb;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's address.
    #[arg(long, env = "SLUICE_ADDRESS", default_value = "http://127.0.0.1:7233", global = true)]
    pub address: String,
    /// Bearer token, when the server requires one.
    #[arg(long, env = "SLUICE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to verify an https:// server with.
    #[arg(long, env = "SLUICE_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

pub type Chan = InterceptedService<Channel, Bearer>;

impl Connection {
    pub async fn channel(&self) -> anyhow::Result<Chan> {
        let mut endpoint = Endpoint::from_shared(self.address.clone())
            .with_context(|| format!("bad server address {:?} (write e.g. http://127.0.0.1:7233)", self.address))?;
        if let Some(ca) = &self.tls_ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            endpoint = endpoint.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))?;
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to the sluice server at {}", self.address))?;
        let bearer = match &self.token {
            Some(t) => Some(format!("Bearer {t}").parse().context("the token has characters a header cannot carry")?),
            None => None,
        };
        Ok(InterceptedService::new(channel, Bearer(bearer)))
    }
}

/// Largest reply the CLI reads: a description carries up to four payloads
/// of the server's max_payload, plus history and a page of logs.
const MAX_REPLY: usize = 64 << 20;

/// An ActivityService client that reads replies up to [`MAX_REPLY`].
pub fn activities(channel: Chan) -> pb::activity_service_client::ActivityServiceClient<Chan> {
    pb::activity_service_client::ActivityServiceClient::new(channel).max_decoding_message_size(MAX_REPLY)
}

/// A gRPC error as the CLI reports it.
pub fn rpc_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", s.message(), s.code())
}

pub fn payload_json(p: &Option<pb::Payload>) -> Value {
    match p {
        None => Value::Null,
        Some(p) if p.encoding == crate::payload::JSON || p.encoding.is_empty() => {
            serde_json::from_slice(&p.data).unwrap_or_else(|_| json!({ "encoding": p.encoding, "bytes": p.data.len() }))
        }
        Some(p) => json!({ "encoding": p.encoding, "bytes": p.data.len() }),
    }
}

pub fn json_payload(text: &str, what: &str) -> anyhow::Result<pb::Payload> {
    let p = crate::payload::Payload::json_text(text).with_context(|| format!("{what} is not valid JSON"))?;
    Ok(pb::Payload { encoding: p.encoding, data: p.data })
}

pub fn status_name(s: i32) -> &'static str {
    crate::api::convert::status_filter(s).ok().flatten().map_or("unknown", |s| s.as_str())
}

/// A timestamp as Unix milliseconds (JSON null when unset).
pub fn time(t: &Option<pbjson_types::Timestamp>) -> Value {
    t.as_ref().map_or(Value::Null, |t| json!(t.seconds * 1000 + (t.nanos / 1_000_000) as i64))
}

fn dur(d: &Option<pbjson_types::Duration>) -> Value {
    d.as_ref().map_or(Value::Null, |d| {
        json!(format!("{}", humantime::format_duration(std::time::Duration::new(d.seconds as u64, d.nanos as u32))))
    })
}

pub fn failure_json(f: &Option<pb::Failure>) -> Value {
    f.as_ref().map_or(Value::Null, |f| {
        json!({
            "source": f.source, "error_type": f.error_type, "message": f.message,
            "non_retryable": f.non_retryable, "details": payload_json(&f.details),
        })
    })
}

/// An execution as JSON (times in Unix milliseconds).
pub fn execution_json(e: &pb::ActivityExecution) -> Value {
    json!({
        "activity_id": e.activity_id, "run_id": e.run_id, "activity_type": e.activity_type,
        "task_queue": e.task_queue, "status": status_name(e.status), "attempt": e.attempt,
        "priority": e.priority, "scheduled_time": time(&e.scheduled_time),
        "current_attempt_scheduled_time": time(&e.current_attempt_scheduled_time),
        "started_time": time(&e.started_time), "close_time": time(&e.close_time),
        "last_heartbeat_time": time(&e.last_heartbeat_time),
        "heartbeat_details": payload_json(&e.heartbeat_details),
        "progress": e.progress.as_ref().map(|p| json!({"percent": p.percent, "message": p.message})),
        "last_failure": failure_json(&e.last_failure), "last_worker": e.last_worker,
        "cancel_requested": e.cancel_requested, "pending_async": e.pending_async,
        "result": payload_json(&e.result), "timeout_type": e.timeout_type,
        "schedule_to_close_timeout": dur(&e.schedule_to_close_timeout),
        "schedule_to_start_timeout": dur(&e.schedule_to_start_timeout),
        "start_to_close_timeout": dur(&e.start_to_close_timeout),
        "heartbeat_timeout": dur(&e.heartbeat_timeout),
        "paused": e.paused, "policy_attempt": e.policy_attempt, "reset_pending": e.reset_pending,
        "version": e.version, "pinned_version": e.pinned_version,
    })
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &Value) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
