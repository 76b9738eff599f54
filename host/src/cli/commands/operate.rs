//! Steering executions as an operator: pause, unpause, reset, update
//! options, delete — one execution by id, or every one a query matches
//! (cancel and terminate take a query too).

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::super::Exit;
use super::super::client::{self, Connection, print_json, rpc_error, status_name};
use super::parse_duration;
use crate::api::convert::pb_duration;
use crate::api::pb;

/// One execution by id, or those a query matches.
#[derive(Debug, Args)]
pub struct Selection {
    /// The activity id (or use --query).
    #[arg(required_unless_present = "query", conflicts_with = "query")]
    pub activity_id: Option<String>,
    /// A specific run [default: the latest].
    #[arg(long, conflicts_with = "query")]
    pub run: Option<String>,
    /// Every execution matching conditions joined by AND, e.g.
    /// 'type = "resize" AND status = "scheduled"' (fields: type, status, queue).
    /// Without --yes, only counts them.
    #[arg(long)]
    pub query: Option<String>,
    /// With --query: apply the operation (otherwise a dry run that counts).
    #[arg(long, requires = "query")]
    pub yes: bool,
    #[command(flatten)]
    pub conn: Connection,
}

impl Selection {
    fn activity(&self) -> Option<pb::ActivityRef> {
        Some(pb::ActivityRef {
            activity_id: self.activity_id.clone().unwrap_or_default(),
            run_id: self.run.clone().unwrap_or_default(),
        })
    }
}

/// Runs `req` as a batch over `sel.query` (a dry run without --yes);
/// `None` when the selection is one execution.
async fn batch(sel: &Selection, mut req: pb::BatchOperationRequest) -> anyhow::Result<Option<Exit>> {
    let Some(query) = &sel.query else { return Ok(None) };
    req.query = query.clone();
    req.dry_run = !sel.yes;
    let op = req.operation.clone();
    let mut c = client::activities(sel.conn.channel().await?);
    let r = c.batch_operation(req).await.map_err(rpc_error)?.into_inner();
    if sel.conn.json {
        let errors: Vec<_> =
            r.errors.iter().map(|e| json!({"activity_id": e.activity_id, "message": e.message})).collect();
        print_json(
            &json!({"matched": r.matched, "applied": r.applied, "failed": r.failed, "errors": errors, "dry_run": !sel.yes}),
        );
    } else if !sel.yes {
        println!("{} executions match; run again with --yes to {op} them", r.matched);
    } else {
        println!("{op}: {} matched, {} done, {} refused", r.matched, r.applied, r.failed);
        for e in &r.errors {
            println!("  {}: {}", e.activity_id, e.message);
        }
        if r.failed > r.errors.len() as u64 {
            println!("  … and {} more", r.failed - r.errors.len() as u64);
        }
    }
    Ok(Some(if r.failed > 0 { Exit::HostError } else { Exit::Completed }))
}

fn op(operation: &str) -> pb::BatchOperationRequest {
    pb::BatchOperationRequest { operation: operation.into(), ..Default::default() }
}

/// Prints what an operation left: the execution's status and flags.
fn show(conn: &Connection, what: &str, e: Option<pb::ActivityExecution>) {
    let e = e.unwrap_or_default();
    if conn.json {
        print_json(&client::execution_json(&e));
        return;
    }
    let mut flags = String::new();
    if e.paused {
        flags.push_str(", paused");
    }
    if e.reset_pending {
        flags.push_str(", reset at the running attempt's next heartbeat or end");
    }
    println!("{what} {}: {} (attempt {} of the policy){flags}", e.activity_id, status_name(e.status), e.policy_attempt);
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub sel: Selection,
}

pub async fn cancel(a: CancelArgs) -> anyhow::Result<Exit> {
    if let Some(exit) = batch(&a.sel, op("cancel")).await? {
        return Ok(exit);
    }
    let id = a.sel.activity_id.clone().unwrap_or_default();
    let mut c = client::activities(a.sel.conn.channel().await?);
    let r = c
        .request_cancel_activity(pb::RequestCancelActivityRequest {
            activity_id: id.clone(),
            run_id: a.sel.run.clone().unwrap_or_default(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    if a.sel.conn.json {
        print_json(&json!({"status": status_name(r.status)}));
    } else if r.status == pb::ActivityStatus::Cancelled as i32 {
        println!("cancelled {id}");
    } else {
        println!("cancellation requested: {id} is {} and learns it on its next heartbeat", status_name(r.status));
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct TerminateArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Why (recorded as the failure message).
    #[arg(long, default_value = "terminated from the CLI")]
    pub reason: String,
}

pub async fn terminate(a: TerminateArgs) -> anyhow::Result<Exit> {
    if let Some(exit) = batch(&a.sel, pb::BatchOperationRequest { reason: a.reason.clone(), ..op("terminate") }).await?
    {
        return Ok(exit);
    }
    let id = a.sel.activity_id.clone().unwrap_or_default();
    let mut c = client::activities(a.sel.conn.channel().await?);
    c.terminate_activity(pb::TerminateActivityRequest {
        activity_id: id.clone(),
        run_id: a.sel.run.clone().unwrap_or_default(),
        reason: a.reason,
    })
    .await
    .map_err(rpc_error)?;
    if !a.sel.conn.json {
        println!("terminated {id}");
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub sel: Selection,
}

pub async fn pause(a: PauseArgs) -> anyhow::Result<Exit> {
    if let Some(exit) = batch(&a.sel, op("pause")).await? {
        return Ok(exit);
    }
    let mut c = client::activities(a.sel.conn.channel().await?);
    let r = c.pause_activity(pb::PauseActivityRequest { activity: a.sel.activity() }).await.map_err(rpc_error)?;
    show(&a.sel.conn, "paused", r.into_inner().execution);
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct UnpauseArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Dispatch after a random delay of up to this (e.g. 30s; at most 24h),
    /// so many unpaused executions do not all start at once.
    #[arg(long, value_parser = parse_duration)]
    pub jitter: Option<Duration>,
}

pub async fn unpause(a: UnpauseArgs) -> anyhow::Result<Exit> {
    let jitter = a.jitter.map(pb_duration);
    if let Some(exit) = batch(&a.sel, pb::BatchOperationRequest { jitter, ..op("unpause") }).await? {
        return Ok(exit);
    }
    let mut c = client::activities(a.sel.conn.channel().await?);
    let r = c
        .unpause_activity(pb::UnpauseActivityRequest { activity: a.sel.activity(), jitter })
        .await
        .map_err(rpc_error)?;
    show(&a.sel.conn, "unpaused", r.into_inner().execution);
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Stay paused if paused (a reset otherwise unpauses).
    #[arg(long)]
    pub keep_paused: bool,
    /// Forget the heartbeat details, so the next attempt starts afresh.
    #[arg(long)]
    pub reset_heartbeat: bool,
}

pub async fn reset(a: ResetArgs) -> anyhow::Result<Exit> {
    let (keep_paused, reset_heartbeat) = (a.keep_paused, a.reset_heartbeat);
    if let Some(exit) = batch(&a.sel, pb::BatchOperationRequest { keep_paused, reset_heartbeat, ..op("reset") }).await?
    {
        return Ok(exit);
    }
    let mut c = client::activities(a.sel.conn.channel().await?);
    let r = c
        .reset_activity(pb::ResetActivityRequest { activity: a.sel.activity(), keep_paused, reset_heartbeat })
        .await
        .map_err(rpc_error)?;
    show(&a.sel.conn, "reset", r.into_inner().execution);
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub sel: Selection,
}

pub async fn delete(a: DeleteArgs) -> anyhow::Result<Exit> {
    if let Some(exit) = batch(&a.sel, op("delete")).await? {
        return Ok(exit);
    }
    let mut c = client::activities(a.sel.conn.channel().await?);
    c.delete_activity(pb::DeleteActivityRequest { activity: a.sel.activity() }).await.map_err(rpc_error)?;
    if !a.sel.conn.json {
        println!("deleted {}", a.sel.activity_id.as_deref().unwrap_or_default());
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct UpdateOptionsArgs {
    /// The activity id.
    pub activity_id: String,
    /// A specific run [default: the latest].
    #[arg(long)]
    pub run: Option<String>,
    /// Move it to this task queue (from its next attempt).
    #[arg(long)]
    pub queue: Option<String>,
    /// 1 (first) to 5.
    #[arg(long)]
    pub priority: Option<u32>,
    #[command(flatten)]
    pub timeouts: super::TimeoutArgs,
    /// Replace the retry policy with one allowing this many attempts in all
    /// (0: unlimited); its other fields take the defaults unless given.
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// With the new retry policy: the delay before the first retry.
    #[arg(long, value_parser = parse_duration, requires = "max_attempts")]
    pub initial_interval: Option<Duration>,
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn update_options(a: UpdateOptionsArgs) -> anyhow::Result<Exit> {
    let mut mask = Vec::new();
    let mut field = |name: &str, set: bool| {
        if set {
            mask.push(name.to_string());
        }
    };
    field("task_queue", a.queue.is_some());
    field("priority", a.priority.is_some());
    let t = &a.timeouts;
    field("schedule_to_close_timeout", t.schedule_to_close.is_some());
    field("schedule_to_start_timeout", t.schedule_to_start.is_some());
    field("start_to_close_timeout", t.start_to_close.is_some());
    field("heartbeat_timeout", t.heartbeat_timeout.is_some());
    field("retry_policy", a.max_attempts.is_some());
    if mask.is_empty() {
        bail!("nothing to change: give --queue, --priority, a timeout or --max-attempts");
    }
    let mut c = client::activities(a.conn.channel().await?);
    let r = c
        .update_activity_options(pb::UpdateActivityOptionsRequest {
            activity: Some(pb::ActivityRef { activity_id: a.activity_id, run_id: a.run.unwrap_or_default() }),
            update_mask: mask,
            task_queue: a.queue.unwrap_or_default(),
            priority: a.priority.unwrap_or_default(),
            schedule_to_close_timeout: t.schedule_to_close.map(pb_duration),
            schedule_to_start_timeout: t.schedule_to_start.map(pb_duration),
            start_to_close_timeout: t.start_to_close.map(pb_duration),
            heartbeat_timeout: t.heartbeat_timeout.map(pb_duration),
            retry_policy: a.max_attempts.map(|n| pb::RetryPolicy {
                maximum_attempts: Some(n),
                initial_interval: a.initial_interval.map(pb_duration),
                ..Default::default()
            }),
        })
        .await
        .map_err(rpc_error)?;
    let e = r.into_inner().execution.unwrap_or_default();
    if a.conn.json {
        print_json(&client::execution_json(&e));
    } else {
        println!("updated {}: queue {}, priority {}", e.activity_id, e.task_queue, e.priority);
    }
    Ok(Exit::Completed)
}
