//! `sluice start`: schedule an activity, and optionally wait for its result.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::json;

use super::super::Exit;
use super::super::client::{Connection, json_payload, print_json, rpc_error};
use super::activity::fetch_result;
use super::{RESULT_EXIT_CODES, parse_duration};
use crate::api::convert::pb_duration;
use crate::api::pb;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IfRunning {
    /// Refuse the start.
    Fail,
    /// Return the running execution.
    UseExisting,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IfClosed {
    /// Start a new run.
    Allow,
    /// Start a new run only if the last one did not complete.
    AllowFailedOnly,
    /// Refuse the start.
    Reject,
}

#[derive(Debug, Args)]
#[command(after_help = RESULT_EXIT_CODES)]
pub struct StartArgs {
    /// The activity type.
    pub activity_type: String,
    /// The input, as JSON.
    #[arg(long, default_value = "null")]
    pub input: String,
    /// The activity id [default: generated].
    #[arg(long)]
    pub id: Option<String>,
    /// The task queue [default: the type's first queue].
    #[arg(long)]
    pub queue: Option<String>,
    #[command(flatten)]
    pub timeouts: super::TimeoutArgs,
    /// Attempts in all (0 = unlimited) [default: the type's].
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Delay before the first retry [default: the type's].
    #[arg(long, value_parser = parse_duration)]
    pub retry_initial_interval: Option<Duration>,
    /// 1 (first) to 5 [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub priority: Option<u32>,
    /// Makes the start idempotent.
    #[arg(long)]
    pub request_id: Option<String>,
    #[arg(long, value_enum, default_value = "fail")]
    pub if_running: IfRunning,
    #[arg(long, value_enum, default_value = "allow")]
    pub if_closed: IfClosed,
    /// Run every attempt on this version of the type (a label from `sluice
    /// type describe`) [default: the current version when each attempt starts].
    #[arg(long)]
    pub version: Option<String>,
    /// Share the queue fairly with other keys (say a tenant id): within a
    /// priority, keys with waiting attempts are served in proportion to
    /// their weights.
    #[arg(long)]
    pub fairness_key: Option<String>,
    /// The fairness key's weight, 0.001 to 1000 [default: 1].
    #[arg(long, requires = "fairness_key")]
    pub fairness_weight: Option<f64>,
    /// Start one execution per line of this file of JSON inputs (`-`:
    /// standard input), many per request; prints each generated id.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "id", "request_id"])]
    pub inputs: Option<std::path::PathBuf>,
    /// Wait for the outcome and print it (exit status as for `result`; with
    /// --inputs, each outcome as it closes, and the status of the first
    /// execution that did not complete).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn start(a: StartArgs) -> anyhow::Result<Exit> {
    if let Some(file) = &a.inputs {
        return super::many::start_many(&a, file).await;
    }
    let channel = a.conn.channel().await?;
    let mut c = super::super::client::activities(channel.clone());
    let req = request(&a)?;
    let r = c.start_activity(req).await.map_err(rpc_error)?.into_inner();
    if !a.wait {
        if a.conn.json {
            print_json(&json!({"activity_id": r.activity_id, "run_id": r.run_id, "started": r.started}));
        } else {
            let what = if r.started { "started" } else { "already exists" };
            say!("{what}: activity {} run {}", r.activity_id, r.run_id);
            println!("{}", r.activity_id);
        }
        return Ok(Exit::Completed);
    }
    fetch_result(&mut c, &r.activity_id, &r.run_id, Duration::from_secs(300), a.conn.json).await
}

/// The start request the arguments describe.
pub(super) fn request(a: &StartArgs) -> anyhow::Result<pb::StartActivityRequest> {
    let retry = (a.max_attempts.is_some() || a.retry_initial_interval.is_some()).then(|| pb::RetryPolicy {
        initial_interval: a.retry_initial_interval.map(pb_duration),
        maximum_attempts: a.max_attempts,
        ..Default::default()
    });
    Ok(pb::StartActivityRequest {
        activity_id: a.id.clone().unwrap_or_default(),
        activity_type: a.activity_type.clone(),
        task_queue: a.queue.clone().unwrap_or_default(),
        input: Some(json_payload(&a.input, "--input")?),
        schedule_to_close_timeout: a.timeouts.schedule_to_close.map(pb_duration),
        schedule_to_start_timeout: a.timeouts.schedule_to_start.map(pb_duration),
        start_to_close_timeout: a.timeouts.start_to_close.map(pb_duration),
        heartbeat_timeout: a.timeouts.heartbeat_timeout.map(pb_duration),
        retry_policy: retry,
        priority: a.priority.unwrap_or(0),
        request_id: a.request_id.clone().unwrap_or_default(),
        id_conflict_policy: match a.if_running {
            IfRunning::Fail => pb::IdConflictPolicy::Fail,
            IfRunning::UseExisting => pb::IdConflictPolicy::UseExisting,
        } as i32,
        id_reuse_policy: match a.if_closed {
            IfClosed::Allow => pb::IdReusePolicy::AllowDuplicate,
            IfClosed::AllowFailedOnly => pb::IdReusePolicy::AllowDuplicateFailedOnly,
            IfClosed::Reject => pb::IdReusePolicy::RejectDuplicate,
        } as i32,
        version: a.version.clone().unwrap_or_default(),
        fairness_key: a.fairness_key.clone().unwrap_or_default(),
        fairness_weight: a.fairness_weight.unwrap_or(0.0),
    })
}
