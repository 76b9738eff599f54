//! Following executions: describe, result, watch, list.

use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use serde_json::{Value, json};

use super::super::Exit;
use super::super::client::{self, Connection, execution_json, payload_json, print_json, rpc_error, status_name};
use super::{RESULT_EXIT_CODES, parse_duration};
use crate::api::convert::pb_duration;
use crate::api::pb;

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

#[derive(Debug, Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub id: IdArgs,
    /// Log records to show (1-1000), oldest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub logs: u32,
    /// Show the logs that follow a previous describe's (it prints the token).
    #[arg(long)]
    pub logs_page_token: Option<String>,
}

pub async fn describe(a: DescribeArgs) -> anyhow::Result<Exit> {
    let DescribeArgs { id: a, logs: logs_page_size, logs_page_token } = a;
    let mut c = client::activities(a.conn.channel().await?);
    let d = c
        .describe_activity(pb::DescribeActivityRequest {
            activity_id: a.activity_id.clone(),
            run_id: a.run.unwrap_or_default(),
            logs_page_size,
            logs_page_token: logs_page_token.unwrap_or_default(),
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
        v["next_logs_page_token"] = json!(Some(&d.next_logs_page_token).filter(|t| !t.is_empty()));
        print_json(&v);
        return Ok(Exit::Completed);
    }
    println!("activity   {} (run {})", e.activity_id, e.run_id);
    println!("type       {}   queue {}   priority {}", e.activity_type, e.task_queue, e.priority);
    let mut status = format!("{}   attempt {}", status_name(e.status), e.attempt);
    if e.policy_attempt != e.attempt {
        status.push_str(&format!(" ({} since reset)", e.policy_attempt));
    }
    if e.paused {
        status.push_str("   paused");
    }
    if e.reset_pending {
        status.push_str("   reset at the attempt's next heartbeat or end");
    }
    if !e.version.is_empty() {
        status.push_str(&format!("   version {}", e.version));
    }
    if !e.pinned_version.is_empty() {
        status.push_str(&format!(" (pinned {})", e.pinned_version));
    }
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
        if !d.next_logs_page_token.is_empty() {
            println!("  … more: sluice describe {} --logs-page-token {}", a.activity_id, d.next_logs_page_token);
        }
    }
    Ok(Exit::Completed)
}

fn show_time(t: &Option<pbjson_types::Timestamp>) -> String {
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
    let mut c = client::activities(a.conn.channel().await?);
    fetch_result(&mut c, &a.activity_id, a.run.as_deref().unwrap_or(""), a.wait, a.conn.json).await
}

/// The exit status `result` reports for an execution in `status`.
pub(super) fn exit_of(status: i32, closed: bool) -> Exit {
    match pb::ActivityStatus::try_from(status) {
        _ if !closed => Exit::Pending,
        Ok(pb::ActivityStatus::Completed) => Exit::Completed,
        Ok(pb::ActivityStatus::Failed) => Exit::ApplicationError,
        Ok(pb::ActivityStatus::Cancelled) => Exit::Cancelled,
        Ok(pb::ActivityStatus::TimedOut) => Exit::SandboxFailure,
        _ => Exit::Terminated,
    }
}

pub(super) async fn fetch_result(
    c: &mut crate::api::pb::activity_service_client::ActivityServiceClient<client::Chan>,
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
    let exit = exit_of(e.status, r.closed);
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
    let mut c = client::activities(a.conn.channel().await?);
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
                Some(Event::Log(l)) => {
                    json!({"event": "log", "level": l.level, "message": l.message, "fields": l.fields})
                }
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
                Some(Event::Log(l)) => {
                    let fields: String = l.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
                    line(format!("log {:<5} {}{fields}", l.level, l.message))
                }
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
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::activity::Status::ALL.map(|s| s.as_str())))]
    pub status: Option<String>,
    /// Only this activity type.
    #[arg(long = "type")]
    pub activity_type: Option<String>,
    /// Only this task queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only ids starting with this.
    #[arg(long)]
    pub id_prefix: Option<String>,
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
    let mut c = client::activities(a.conn.channel().await?);
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
            activity_id_prefix: a.id_prefix.unwrap_or_default(),
            scheduled_after: None,
            scheduled_before: None,
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
