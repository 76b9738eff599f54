//! Operators' commands: queue counts, token hashes.

use clap::Args;
use serde_json::json;

use super::super::Exit;
use super::super::client::{Connection, print_json, rpc_error, status_name};
use crate::api::pb;
use pb::operator_service_client::OperatorServiceClient;

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
        .describe_task_queue(pb::DescribeTaskQueueRequest { task_queue: a.task_queue.clone(), closed_counts: true })
        .await
        .map_err(rpc_error)?
        .into_inner();
    if a.conn.json {
        let counts: Vec<_> = r
            .counts
            .iter()
            .map(|c| json!({"activity_type": c.activity_type, "status": status_name(c.status), "count": c.count}))
            .collect();
        print_json(&json!({
            "task_queue": a.task_queue, "backlog": r.backlog, "running": r.running,
            "served_here": r.served_here, "free_slots": r.free_slots, "activity_types": r.activity_types,
            "paused": r.paused, "rate_limit": r.rate_limit, "counts": counts,
        }));
    } else {
        println!("queue       {}", a.task_queue);
        println!("backlog     {}", r.backlog);
        println!("running     {}", r.running);
        if r.served_here {
            let rate = match r.rate_limit {
                Some(0.0) => "   paused (rate 0)".to_string(),
                Some(rate) => format!("   {rate}/s"),
                None => String::new(),
            };
            println!("free slots  {}{rate}", r.free_slots);
            println!("types       {}", r.activity_types.join(", "));
        } else {
            println!("(no WASM workers here; external workers may poll it)");
        }
        for c in &r.counts {
            println!("  {:<20} {:<11} {}", c.activity_type, status_name(c.status), c.count);
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
