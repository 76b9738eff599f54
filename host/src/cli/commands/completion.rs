//! Completing an attempt from outside, by task token or activity id:
//! complete, fail, heartbeat.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::super::Exit;
use super::super::client::{Connection, json_payload, print_json, rpc_error, status_name};
use super::parse_duration;
use crate::api::convert::pb_duration;
use crate::api::pb;
use pb::completion_service_client::CompletionServiceClient;

/// Names the attempt to complete, fail or heartbeat.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// The task token the activity handed out.
    #[arg(long)]
    pub task_token: Option<String>,
    /// The activity id (its current attempt).
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArg {
    /// With --id: a specific run [default: the latest].
    #[arg(long, requires = "id")]
    pub run: Option<String>,
}

fn target_ref(t: &TargetArgs, run: &RunArg) -> (Option<String>, Option<pb::ActivityRef>) {
    match (&t.task_token, &t.id) {
        (Some(tok), _) => (Some(tok.clone()), None),
        (None, Some(id)) => {
            (None, Some(pb::ActivityRef { activity_id: id.clone(), run_id: run.run.clone().unwrap_or_default() }))
        }
        _ => (None, None),
    }
}

macro_rules! target_of {
    ($module:ident, $t:expr, $run:expr) => {
        match target_ref($t, $run) {
            (Some(tok), _) => Some(pb::$module::Target::TaskToken(tok)),
            (None, Some(r)) => Some(pb::$module::Target::Activity(r)),
            _ => None,
        }
    };
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArg,
    /// The result, as JSON.
    #[arg(long, default_value = "null")]
    pub result: String,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn complete(a: CompleteArgs) -> anyhow::Result<Exit> {
    let mut c = CompletionServiceClient::new(a.conn.channel().await?);
    c.complete_activity(pb::CompleteActivityRequest {
        target: target_of!(complete_activity_request, &a.target, &a.run),
        result: Some(json_payload(&a.result, "--result")?),
    })
    .await
    .map_err(rpc_error)?;
    if !a.conn.json {
        say!("completed");
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct FailArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArg,
    /// What went wrong.
    #[arg(long)]
    pub message: String,
    /// Machine-readable error type (matched against non-retryable types).
    #[arg(long = "type", default_value = "")]
    pub error_type: String,
    /// Fail the execution without retrying.
    #[arg(long)]
    pub non_retryable: bool,
    /// Details, as JSON.
    #[arg(long)]
    pub details: Option<String>,
    /// Retry after this delay instead of the policy's.
    #[arg(long, value_parser = parse_duration)]
    pub retry_after: Option<Duration>,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn fail(a: FailArgs) -> anyhow::Result<Exit> {
    let mut c = CompletionServiceClient::new(a.conn.channel().await?);
    let r = c
        .fail_activity(pb::FailActivityRequest {
            target: target_of!(fail_activity_request, &a.target, &a.run),
            failure: Some(pb::Failure {
                source: String::new(),
                error_type: a.error_type,
                message: a.message,
                non_retryable: a.non_retryable,
                details: a.details.as_deref().map(|d| json_payload(d, "--details")).transpose()?,
                next_retry_delay: a.retry_after.map(pb_duration),
            }),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    if a.conn.json {
        print_json(&json!({"status": status_name(r.status)}));
    } else {
        say!("failed; the activity is now {}", status_name(r.status));
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArg,
    /// Details to record, as JSON.
    #[arg(long)]
    pub details: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn heartbeat(a: HeartbeatArgs) -> anyhow::Result<Exit> {
    let mut c = CompletionServiceClient::new(a.conn.channel().await?);
    let r = c
        .record_heartbeat(pb::RecordHeartbeatRequest {
            target: target_of!(record_heartbeat_request, &a.target, &a.run),
            details: a.details.as_deref().map(|d| json_payload(d, "--details")).transpose()?,
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    if a.conn.json {
        print_json(&json!({"cancel_requested": r.cancel_requested}));
    } else if r.cancel_requested {
        println!("cancellation requested");
    } else {
        println!("ok");
    }
    Ok(Exit::Completed)
}
