//! The client commands: each one RPC (or a stream) against a server.

use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::Exit;
use super::client::{self, Connection, execution_json, json_payload, payload_json, print_json, rpc_error, status_name};
use crate::api::convert::pb_duration;
use crate::api::pb;
use pb::activity_service_client::ActivityServiceClient;
use pb::completion_service_client::CompletionServiceClient;
use pb::operator_service_client::OperatorServiceClient;

const RESULT_EXIT_CODES: &str = "\
Exit status:
  0  completed (the result is printed)
  1  error (cannot connect, unknown activity, ...)
  3  failed
  4  not closed yet (the wait passed)
  5  cancelled
  6  timed out
  7  terminated";

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

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
    #[arg(long, value_parser = parse_duration)]
    pub schedule_to_close: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    pub schedule_to_start: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    pub start_to_close: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    pub heartbeat_timeout: Option<Duration>,
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
    /// Wait for the outcome and print it (exit status as for `result`).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn start(a: StartArgs) -> anyhow::Result<Exit> {
    let channel = a.conn.channel().await?;
    let mut c = ActivityServiceClient::new(channel.clone());
    let retry = (a.max_attempts.is_some() || a.retry_initial_interval.is_some()).then(|| pb::RetryPolicy {
        initial_interval: a.retry_initial_interval.map(pb_duration),
        maximum_attempts: a.max_attempts.unwrap_or(0),
        ..Default::default()
    });
    let req = pb::StartActivityRequest {
        activity_id: a.id.clone().unwrap_or_default(),
        activity_type: a.activity_type.clone(),
        task_queue: a.queue.clone().unwrap_or_default(),
        input: Some(json_payload(&a.input, "--input")?),
        schedule_to_close_timeout: a.schedule_to_close.map(pb_duration),
        schedule_to_start_timeout: a.schedule_to_start.map(pb_duration),
        start_to_close_timeout: a.start_to_close.map(pb_duration),
        heartbeat_timeout: a.heartbeat_timeout.map(pb_duration),
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
    };
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

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The activity id.
    pub activity_id: String,
    /// A specific run [default: the latest].
    #[arg(long)]
    pub run: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn describe(a: IdArgs) -> anyhow::Result<Exit> {
    let mut c = ActivityServiceClient::new(a.conn.channel().await?);
    let d = c
        .describe_activity(pb::DescribeActivityRequest {
            activity_id: a.activity_id,
            run_id: a.run.unwrap_or_default(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    let e = d.execution.unwrap_or_default();
    if a.conn.json {
        let mut v = execution_json(&e);
        v["history"] = d
            .history
            .iter()
            .map(|h| json!({"time": client::time(&h.time), "attempt": h.attempt, "kind": h.kind, "detail": serde_json::from_str::<Value>(&h.detail_json).unwrap_or_default()}))
            .collect();
        v["logs"] = d
            .logs
            .iter()
            .map(|l| json!({"time": client::time(&l.time), "attempt": l.attempt, "level": l.level, "message": l.message, "fields": l.fields}))
            .collect();
        print_json(&v);
        return Ok(Exit::Completed);
    }
    println!("activity   {} (run {})", e.activity_id, e.run_id);
    println!("type       {}   queue {}   priority {}", e.activity_type, e.task_queue, e.priority);
    let mut status = format!("{}   attempt {}", status_name(e.status), e.attempt);
    if e.cancel_requested {
        status.push_str("   cancel requested");
    }
    if e.pending_async {
        status.push_str("   pending async completion");
    }
    if !e.timeout_type.is_empty() {
        status.push_str(&format!("   ({} timeout)", e.timeout_type));
    }
    println!("status     {status}");
    println!("scheduled  {}", show_time(&e.scheduled_time));
    if e.started_time.is_some() {
        println!("started    {}   by {}", show_time(&e.started_time), e.last_worker);
    }
    if e.close_time.is_some() {
        println!("closed     {}", show_time(&e.close_time));
    }
    if e.result.is_some() {
        println!("result     {}", payload_json(&e.result));
    }
    if let Some(f) = &e.last_failure {
        println!(
            "last failure  {} {}: {}{}",
            f.source,
            f.error_type,
            f.message,
            if f.non_retryable { " (non-retryable)" } else { "" }
        );
    }
    if e.heartbeat_details.is_some() {
        println!("heartbeat  {}", payload_json(&e.heartbeat_details));
    }
    if e.last_heartbeat_time.is_some() {
        println!("last beat  {}", show_time(&e.last_heartbeat_time));
    }
    if let Some(p) = &e.progress {
        println!("progress   {}{}", p.percent.map(|p| format!("{p:.0}% ")).unwrap_or_default(), p.message);
    }
    println!("history");
    for h in &d.history {
        println!(
            "  {}  {:<16} attempt {}  {}",
            show_time(&h.time),
            h.kind,
            h.attempt,
            if h.detail_json == "{}" { "" } else { &h.detail_json }
        );
    }
    if !d.logs.is_empty() {
        println!("logs");
        for l in &d.logs {
            let fields: String = l.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
            println!("  [{}] {:<6} {}{}", l.attempt, l.level, l.message, fields);
        }
    }
    Ok(Exit::Completed)
}

fn show_time(t: &Option<prost_types::Timestamp>) -> String {
    match t {
        Some(t) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32)).to_string()
        }
        None => "-".into(),
    }
}

#[derive(Debug, Args)]
#[command(after_help = RESULT_EXIT_CODES)]
pub struct ResultArgs {
    /// The activity id.
    pub activity_id: String,
    /// A specific run [default: the latest].
    #[arg(long)]
    pub run: Option<String>,
    /// How long to wait for it to close.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn result(a: ResultArgs) -> anyhow::Result<Exit> {
    let mut c = ActivityServiceClient::new(a.conn.channel().await?);
    fetch_result(&mut c, &a.activity_id, a.run.as_deref().unwrap_or(""), a.wait, a.conn.json).await
}

async fn fetch_result(
    c: &mut ActivityServiceClient<client::Chan>,
    activity_id: &str,
    run_id: &str,
    wait: Duration,
    json_out: bool,
) -> anyhow::Result<Exit> {
    let r = c
        .get_activity_result(pb::GetActivityResultRequest {
            activity_id: activity_id.into(),
            run_id: run_id.into(),
            wait: Some(pb_duration(wait)),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    let e = r.execution.unwrap_or_default();
    let exit = match pb::ActivityStatus::try_from(e.status) {
        _ if !r.closed => Exit::Pending,
        Ok(pb::ActivityStatus::Completed) => Exit::Completed,
        Ok(pb::ActivityStatus::Failed) => Exit::ApplicationError,
        Ok(pb::ActivityStatus::Cancelled) => Exit::Cancelled,
        Ok(pb::ActivityStatus::TimedOut) => Exit::SandboxFailure,
        _ => Exit::Terminated,
    };
    if json_out {
        print_json(&execution_json(&e));
        return Ok(exit);
    }
    match exit {
        Exit::Completed => println!("{}", payload_json(&e.result)),
        Exit::Pending => say!("activity {activity_id} is still {} (attempt {})", status_name(e.status), e.attempt),
        _ => {
            say!("activity {activity_id} {} after {} attempt(s)", status_name(e.status), e.attempt);
            if let Some(f) = &e.last_failure {
                say!("  {} {}: {}", f.source, f.error_type, f.message);
            }
            if e.heartbeat_details.is_some() {
                say!("  last heartbeat details: {}", payload_json(&e.heartbeat_details));
            }
        }
    }
    Ok(exit)
}

pub async fn watch(a: IdArgs) -> anyhow::Result<Exit> {
    use pb::watch_activity_event::Event;
    let mut c = ActivityServiceClient::new(a.conn.channel().await?);
    let mut stream = c
        .watch_activity(pb::WatchActivityRequest {
            activity_id: a.activity_id.clone(),
            run_id: a.run.unwrap_or_default(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    let bar = indicatif::ProgressBar::new(100);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    // Without a terminal the bar is hidden; print the lines plainly instead.
    let line = |text: String| if bar.is_hidden() { println!("{text}") } else { bar.println(text) };
    let mut last_status = 0;
    while let Some(ev) = stream.message().await.map_err(rpc_error)? {
        if a.conn.json {
            let v = match &ev.event {
                Some(Event::Snapshot(e)) => json!({"event": "snapshot", "execution": execution_json(e)}),
                Some(Event::Transition(t)) => {
                    json!({"event": "transition", "kind": t.kind, "status": status_name(t.status), "attempt": ev.attempt})
                }
                Some(Event::Progress(p)) => json!({"event": "progress", "percent": p.percent, "message": p.message}),
                Some(Event::Heartbeat(h)) => json!({"event": "heartbeat", "details": payload_json(&h.details)}),
                None => continue,
            };
            println!("{v}");
        } else {
            match &ev.event {
                Some(Event::Snapshot(e)) => {
                    line(format!(
                        "{} {} is {} (attempt {})",
                        e.activity_type,
                        e.activity_id,
                        status_name(e.status),
                        e.attempt
                    ));
                    if let Some(p) = &e.progress {
                        show_progress(&bar, p);
                    }
                }
                Some(Event::Transition(t)) => {
                    line(format!("{:<16} attempt {}  → {}", t.kind, ev.attempt, status_name(t.status)))
                }
                Some(Event::Progress(p)) if bar.is_hidden() => line(format!(
                    "progress  {}{}",
                    p.percent.map(|p| format!("{p:.0}% ")).unwrap_or_default(),
                    p.message
                )),
                Some(Event::Progress(p)) => show_progress(&bar, p),
                Some(Event::Heartbeat(h)) if bar.is_hidden() => line(format!("heartbeat {}", payload_json(&h.details))),
                Some(Event::Heartbeat(h)) => bar.set_message(format!("heartbeat {}", payload_json(&h.details))),
                None => {}
            }
        }
        last_status = match &ev.event {
            Some(Event::Snapshot(e)) => e.status,
            Some(Event::Transition(t)) => t.status,
            _ => last_status,
        };
    }
    bar.finish_and_clear();
    Ok(match pb::ActivityStatus::try_from(last_status) {
        Ok(pb::ActivityStatus::Completed) => Exit::Completed,
        Ok(pb::ActivityStatus::Failed) => Exit::ApplicationError,
        Ok(pb::ActivityStatus::Cancelled) => Exit::Cancelled,
        Ok(pb::ActivityStatus::TimedOut) => Exit::SandboxFailure,
        Ok(pb::ActivityStatus::Terminated) => Exit::Terminated,
        _ => Exit::Pending,
    })
}

fn show_progress(bar: &indicatif::ProgressBar, p: &pb::Progress) {
    if let Some(pct) = p.percent {
        bar.set_position(pct.round() as u64);
    }
    bar.set_message(p.message.clone());
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status.
    #[arg(long, value_parser = ["scheduled", "started", "completed", "failed", "cancelled", "terminated", "timed-out"])]
    pub status: Option<String>,
    /// Only this activity type.
    #[arg(long = "type")]
    pub activity_type: Option<String>,
    /// Only this task queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Executions per page (1-1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
    /// Continue from a previous page.
    #[arg(long)]
    pub page_token: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn list(a: ListArgs) -> anyhow::Result<Exit> {
    let mut c = ActivityServiceClient::new(a.conn.channel().await?);
    let status = match a.status.as_deref() {
        None => pb::ActivityStatus::Unspecified,
        Some(s) => match crate::activity::Status::parse(s) {
            Some(st) => crate::api::convert::pb_status(st),
            None => anyhow::bail!("unknown status {s}"),
        },
    };
    let r = c
        .list_activities(pb::ListActivitiesRequest {
            status: status as i32,
            activity_type: a.activity_type.unwrap_or_default(),
            task_queue: a.queue.unwrap_or_default(),
            page_size: a.page_size,
            page_token: a.page_token.unwrap_or_default(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    if a.conn.json {
        print_json(&json!({
            "executions": r.executions.iter().map(execution_json).collect::<Vec<_>>(),
            "next_page_token": r.next_page_token,
        }));
        return Ok(Exit::Completed);
    }
    println!("{:<38} {:<16} {:<12} {:>7}  QUEUE", "ACTIVITY ID", "TYPE", "STATUS", "ATTEMPT");
    for e in &r.executions {
        println!(
            "{:<38} {:<16} {:<12} {:>7}  {}",
            e.activity_id,
            e.activity_type,
            status_name(e.status),
            e.attempt,
            e.task_queue
        );
    }
    if !r.next_page_token.is_empty() {
        say!("more: --page-token {}", r.next_page_token);
    }
    Ok(Exit::Completed)
}

pub async fn cancel(a: IdArgs) -> anyhow::Result<Exit> {
    let mut c = ActivityServiceClient::new(a.conn.channel().await?);
    let r = c
        .request_cancel_activity(pb::RequestCancelActivityRequest {
            activity_id: a.activity_id.clone(),
            run_id: a.run.unwrap_or_default(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    if a.conn.json {
        print_json(&json!({"status": status_name(r.status)}));
    } else if r.status == pb::ActivityStatus::Cancelled as i32 {
        println!("cancelled {}", a.activity_id);
    } else {
        println!(
            "cancellation requested: {} is {} and learns it on its next heartbeat",
            a.activity_id,
            status_name(r.status)
        );
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct TerminateArgs {
    #[command(flatten)]
    pub id: IdArgs,
    /// Why (recorded as the failure message).
    #[arg(long, default_value = "terminated from the CLI")]
    pub reason: String,
}

pub async fn terminate(a: TerminateArgs) -> anyhow::Result<Exit> {
    let mut c = ActivityServiceClient::new(a.id.conn.channel().await?);
    c.terminate_activity(pb::TerminateActivityRequest {
        activity_id: a.id.activity_id.clone(),
        run_id: a.id.run.unwrap_or_default(),
        reason: a.reason,
    })
    .await
    .map_err(rpc_error)?;
    if !a.id.conn.json {
        println!("terminated {}", a.id.activity_id);
    }
    Ok(Exit::Completed)
}

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

#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The task queue.
    pub task_queue: String,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn queue(a: QueueArgs) -> anyhow::Result<Exit> {
    let mut c = OperatorServiceClient::new(a.conn.channel().await?);
    let r = c
        .describe_task_queue(pb::DescribeTaskQueueRequest { task_queue: a.task_queue.clone() })
        .await
        .map_err(rpc_error)?
        .into_inner();
    if a.conn.json {
        print_json(&json!({
            "task_queue": a.task_queue, "backlog": r.backlog, "running": r.running,
            "served_here": r.served_here, "free_slots": r.free_slots, "activity_types": r.activity_types,
        }));
    } else {
        println!("queue       {}", a.task_queue);
        println!("backlog     {}", r.backlog);
        println!("running     {}", r.running);
        if r.served_here {
            println!("free slots  {}", r.free_slots);
            println!("types       {}", r.activity_types.join(", "));
        } else {
            println!("(no WASM workers here; external workers may poll it)");
        }
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct HashTokenArgs {
    /// The token [default: read from stdin].
    pub token: Option<String>,
}

pub fn hash_token(a: HashTokenArgs) -> anyhow::Result<Exit> {
    let token = match a.token {
        Some(t) => t,
        None => std::io::read_to_string(std::io::stdin())?,
    };
    println!("{}", crate::api::hash_token(token.trim()));
    Ok(Exit::Completed)
}
