//! Deploying components to a running server and looking after types:
//! deploy (a file or a guest folder, built first), rollback, types,
//! type describe / update / remove-version.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::super::Exit;
use super::super::client::{Chan, Connection, print_json, rpc_error};
use crate::api::pb;
use crate::build::{BuildOptions, Toolchains};
use pb::operator_service_client::OperatorServiceClient;

/// Bytes per upload message.
const CHUNK: usize = 256 << 10;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The component (.wasm) or a guest folder (built with `sluice build` first).
    #[arg(required_unless_present = "rollback")]
    pub path: Option<PathBuf>,
    /// The activity type to deploy it as (created on its first deploy).
    #[arg(long = "type", required_unless_present = "rollback", conflicts_with = "rollback")]
    pub activity_type: Option<String>,
    /// Serve the type on this task queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// The version's label [default: v<n>].
    #[arg(long)]
    pub version: Option<String>,
    /// Change a setting, as in sluice.toml's [activities.NAME]: key=value
    /// (TOML value; dotted keys, e.g. retry.maximum_attempts=3). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Instead of deploying: make an earlier version of TYPE current again.
    #[arg(long, value_name = "TYPE", conflicts_with_all = ["path", "queue", "version", "set"])]
    pub rollback: Option<String>,
    /// With --rollback: the version to make current [default: the one before the current].
    #[arg(long, requires = "rollback")]
    pub to: Option<String>,
    #[command(flatten)]
    pub conn: Connection,
}

fn operator(c: Chan) -> OperatorServiceClient<Chan> {
    OperatorServiceClient::new(c).max_decoding_message_size(16 << 20)
}

pub async fn deploy(a: DeployArgs) -> anyhow::Result<Exit> {
    let mut c = operator(a.conn.channel().await?);
    if let Some(name) = &a.rollback {
        let r = c
            .rollback_activity_type(pb::RollbackActivityTypeRequest {
                name: name.clone(),
                to: a.to.clone().unwrap_or_default(),
            })
            .await
            .map_err(rpc_error)?;
        let t = r.into_inner().activity_type.unwrap_or_default();
        report(&a.conn, &format!("rolled {} back to {}", t.name, t.current_version), &t);
        return Ok(Exit::Completed);
    }
    let path = a.path.clone().expect("clap requires a path");
    let name = a.activity_type.clone().expect("clap requires --type");
    let file = if path.is_dir() {
        let opts =
            BuildOptions { dir: path, out: None, language: None, http: false, toolchains: Toolchains::new(None)? };
        let built = tokio::task::spawn_blocking(move || crate::build::build(&opts)).await??;
        eprintln!("built {}", built.component.display());
        built.component
    } else {
        path
    };
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let header = pb::DeployHeader {
        activity_type: name,
        task_queue: a.queue.clone().unwrap_or_default(),
        version: a.version.clone().unwrap_or_default(),
        set: a.set.clone(),
        size: bytes.len() as u64,
        deployed_by: whoami(),
    };
    let mut chunks = vec![pb::DeployChunk { part: Some(pb::deploy_chunk::Part::Header(header)) }];
    chunks
        .extend(bytes.chunks(CHUNK).map(|b| pb::DeployChunk { part: Some(pb::deploy_chunk::Part::Data(b.to_vec())) }));
    let r = c.deploy_component(tokio_stream::iter(chunks)).await.map_err(rpc_error)?;
    let t = r.into_inner().activity_type.unwrap_or_default();
    report(&a.conn, &format!("deployed {} {} ({} bytes)", t.name, t.current_version, bytes.len()), &t);
    Ok(Exit::Completed)
}

/// `user@host`, as the deploy records it.
fn whoami() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "someone".into());
    format!("{user}@{}", crate::util::hostname())
}

fn report(conn: &Connection, what: &str, t: &pb::ActivityType) {
    if conn.json {
        print_json(&type_json(t));
    } else {
        println!("{what}; new attempts of {} run {}", t.name, t.current_version);
    }
}

fn time(t: &Option<pbjson_types::Timestamp>) -> String {
    let Some(t) = t else { return String::new() };
    let at = UNIX_EPOCH + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn type_json(t: &pb::ActivityType) -> Value {
    json!({
        "name": t.name,
        "current_version": t.current_version,
        "task_queues": t.task_queues,
        "component": t.component,
        "versions": t.versions.iter().map(|v| json!({
            "label": v.label, "hash": v.hash, "size": v.size,
            "deployed_at": time(&v.deployed_at), "deployed_by": v.deployed_by,
        })).collect::<Vec<_>>(),
        "settings": serde_json::from_str::<Value>(&t.settings_json).unwrap_or_default(),
        "slots": t.slots, "memory_bytes": t.memory_bytes,
        "env": t.env, "dirs": t.dirs, "allow_http": t.allow_http,
    })
}

#[derive(Debug, Args)]
pub struct TypesArgs {
    #[command(flatten)]
    pub conn: Connection,
}

pub async fn types(a: TypesArgs) -> anyhow::Result<Exit> {
    let mut c = operator(a.conn.channel().await?);
    let r = c.list_activity_types(pb::ListActivityTypesRequest {}).await.map_err(rpc_error)?.into_inner();
    if a.conn.json {
        print_json(&Value::Array(r.activity_types.iter().map(type_json).collect()));
        return Ok(Exit::Completed);
    }
    if r.activity_types.is_empty() {
        println!("no activity types: deploy one with `sluice deploy FILE.wasm --type NAME`");
    }
    for t in &r.activity_types {
        println!(
            "{:<20} {:<10} {} version(s)   queues {}",
            t.name,
            t.current_version,
            t.versions.len(),
            t.task_queues.join(", ")
        );
    }
    Ok(Exit::Completed)
}

#[derive(Debug, Args)]
pub struct TypeArgs {
    #[command(subcommand)]
    pub command: TypeCommand,
}

#[derive(Debug, Subcommand)]
pub enum TypeCommand {
    /// Show a type: versions (label, hash, size, deployed at, by whom), the
    /// current one, queues, limits, grants and settings.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Change settings safe to change at run time (slots, timeouts, retry,
    /// queues; env, dirs and allow_http need an operator token).
    Update {
        name: String,
        /// key=value, as for `sluice deploy --set`. Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE", required = true)]
        set: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Remove a version that is not current and no open execution uses.
    RemoveVersion {
        name: String,
        version: String,
        #[command(flatten)]
        conn: Connection,
    },
}

pub async fn activity_type(a: TypeArgs) -> anyhow::Result<Exit> {
    match a.command {
        TypeCommand::Describe { name, conn } => {
            let mut c = operator(conn.channel().await?);
            let r = c.describe_activity_type(pb::DescribeActivityTypeRequest { name }).await.map_err(rpc_error)?;
            let t = r.into_inner().activity_type.unwrap_or_default();
            if conn.json {
                print_json(&type_json(&t));
            } else {
                describe(&t);
            }
        }
        TypeCommand::Update { name, set, conn } => {
            let mut c = operator(conn.channel().await?);
            let r = c.update_activity_type(pb::UpdateActivityTypeRequest { name, set }).await.map_err(rpc_error)?;
            let t = r.into_inner().activity_type.unwrap_or_default();
            if conn.json {
                print_json(&type_json(&t));
            } else {
                println!("updated {}: {}", t.name, t.settings_json);
            }
        }
        TypeCommand::RemoveVersion { name, version, conn } => {
            let mut c = operator(conn.channel().await?);
            let r = c
                .remove_type_version(pb::RemoveTypeVersionRequest { name, version: version.clone() })
                .await
                .map_err(rpc_error)?;
            let t = r.into_inner().activity_type.unwrap_or_default();
            if conn.json {
                print_json(&type_json(&t));
            } else {
                println!("removed version {version} of {}", t.name);
            }
        }
    }
    Ok(Exit::Completed)
}

fn describe(t: &pb::ActivityType) {
    println!("type       {}", t.name);
    println!("current    {}", if t.current_version.is_empty() { "(none)" } else { &t.current_version });
    println!("queues     {}", t.task_queues.join(", "));
    let slots = if t.slots == 0 { "no per-type cap".to_string() } else { t.slots.to_string() };
    println!("slots      {slots}   memory {}", bytesize::ByteSize(t.memory_bytes));
    if !t.env.is_empty() || !t.dirs.is_empty() || !t.allow_http.is_empty() {
        println!(
            "grants     env [{}]  dirs [{}]  http [{}]",
            t.env.join(", "),
            t.dirs.join(", "),
            t.allow_http.join(", ")
        );
    }
    println!("settings   {}", t.settings_json);
    println!("versions");
    for v in &t.versions {
        let mark = if v.label == t.current_version { "*" } else { " " };
        println!(
            " {mark} {:<10} {}…  {:>10}  {}  by {}",
            v.label,
            &v.hash[..12.min(v.hash.len())],
            bytesize::ByteSize(v.size).to_string(),
            time(&v.deployed_at),
            v.deployed_by
        );
    }
}
