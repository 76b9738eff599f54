//! `sluice start --inputs FILE`: many executions started in StartActivities
//! requests and, with --wait, followed on WatchActivities streams.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;

use super::super::Exit;
use super::super::client::{
    self, Chan, execution_json, json_payload, payload_json, print_json, rpc_error, status_name,
};
use super::StartArgs;
use crate::api::pb;

type Activities = pb::activity_service_client::ActivityServiceClient<Chan>;

/// Starts per request, and the inputs' bytes per request (the server takes
/// about one payload's worth, 2 MiB by default, per request).
const STARTS_PER_REQUEST: usize = 1000;
const BYTES_PER_REQUEST: usize = 1 << 20;
/// Ids per WatchActivities stream (the server's limit).
const IDS_PER_WATCH: usize = 10_000;

pub async fn start_many(a: &StartArgs, file: &Path) -> anyhow::Result<Exit> {
    let inputs = read_inputs(file)?;
    let template = super::start::request(a)?;
    let mut c = client::activities(a.conn.channel().await?);
    let mut started = Vec::with_capacity(inputs.len());
    let mut refused = 0;
    let mut chunk: Vec<(usize, pb::StartActivityRequest)> = Vec::new();
    let mut bytes = 0;
    for (line, input) in inputs {
        // Sent before it would outgrow a request (an input over the budget
        // goes alone, and the server says whether it fits).
        if !chunk.is_empty() && (chunk.len() == STARTS_PER_REQUEST || bytes + input.data.len() > BYTES_PER_REQUEST) {
            refused += send(&mut c, std::mem::take(&mut chunk), &mut started, a.conn.json).await?;
            bytes = 0;
        }
        bytes += input.data.len();
        chunk.push((line, pb::StartActivityRequest { input: Some(input), ..template.clone() }));
    }
    refused += send(&mut c, chunk, &mut started, a.conn.json).await?;
    let mut exit = if refused > 0 { Exit::HostError } else { Exit::Completed };
    if a.wait {
        let first_not_completed = follow(&mut c, &started, a.conn.json).await?;
        if exit == Exit::Completed {
            exit = first_not_completed;
        }
    }
    if refused > 0 {
        say!("{refused} of {} start(s) refused", started.len() + refused);
    }
    Ok(exit)
}

/// The non-empty lines of `file` (`-`: standard input), each as JSON.
fn read_inputs(file: &Path) -> anyhow::Result<Vec<(usize, pb::Payload)>> {
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot read --inputs {}", file.display()))?,
        ))
    };
    let mut inputs = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read --inputs {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        inputs.push((i + 1, json_payload(&line, &format!("line {} of {}", i + 1, file.display()))?));
    }
    anyhow::ensure!(!inputs.is_empty(), "--inputs {} holds no inputs (one JSON value per line)", file.display());
    Ok(inputs)
}

/// Sends one StartActivities request; prints each started id (or the
/// refusal, on stderr). Returns how many were refused.
async fn send(
    c: &mut Activities,
    chunk: Vec<(usize, pb::StartActivityRequest)>,
    started: &mut Vec<String>,
    json: bool,
) -> anyhow::Result<usize> {
    let lines: Vec<usize> = chunk.iter().map(|(l, _)| *l).collect();
    let starts = chunk.into_iter().map(|(_, r)| r).collect();
    let r = c.start_activities(pb::StartActivitiesRequest { starts }).await.map_err(rpc_error)?.into_inner();
    let mut refused = 0;
    for (line, o) in lines.into_iter().zip(r.outcomes) {
        match o.outcome {
            Some(pb::start_activity_outcome::Outcome::Started(s)) => {
                if json {
                    print_json(&serde_json::json!({"line": line, "activity_id": s.activity_id, "run_id": s.run_id}));
                } else {
                    println!("{}", s.activity_id);
                }
                started.push(s.activity_id);
            }
            Some(pb::start_activity_outcome::Outcome::Error(e)) => {
                say!("line {line}: refused: {}", e.message);
                refused += 1;
            }
            None => anyhow::bail!("the server answered a start of line {line} with no outcome"),
        }
    }
    Ok(refused)
}

/// Prints each execution's outcome as it closes; the exit status of the
/// first one that did not complete.
async fn follow(c: &mut Activities, ids: &[String], json: bool) -> anyhow::Result<Exit> {
    let mut exit = Exit::Completed;
    for chunk in ids.chunks(IDS_PER_WATCH) {
        let req = pb::WatchActivitiesRequest { activity_ids: chunk.to_vec(), ..Default::default() };
        let mut stream = c.watch_activities(req).await.map_err(rpc_error)?.into_inner();
        while let Some(ev) = stream.message().await.map_err(rpc_error)? {
            let e = ev.execution.unwrap_or_default();
            let this = super::activity::exit_of(e.status, true);
            if exit == Exit::Completed {
                exit = this;
            }
            if json {
                print_json(&execution_json(&e));
            } else if this == Exit::Completed {
                println!("{} completed {}", e.activity_id, payload_json(&e.result));
            } else {
                let why = e.last_failure.as_ref().map(|f| format!(": {} {}: {}", f.source, f.error_type, f.message));
                println!(
                    "{} {} after {} attempt(s){}",
                    e.activity_id,
                    status_name(e.status),
                    e.attempt,
                    why.unwrap_or_default()
                );
            }
        }
    }
    Ok(exit)
}
