//! `sluice run`: one attempt of a component in the sandbox, reported as it
//! happens. The dev loop for people writing activities.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytesize::ByteSize;
use clap::Args;
use tokio::sync::mpsc;

use super::Exit;
use crate::payload::Payload;
use crate::sandbox::{
    ActivityInfo, Allocation, AttemptControl, AttemptEvent, AttemptOutcome, AttemptReport, AttemptRequest, DirGrant,
    Grants, InterruptReason, Limits, Sandbox, SandboxConfig,
};
use crate::util::{hostname, now_ms};

const EXIT_CODES: &str = "\
Exit status:
  0  the activity completed (its result is printed on stdout)
  1  the host could not run it (bad arguments, unreadable or invalid component)
  3  the activity returned an application error
  4  the activity returned pending (to be completed externally)
  5  the activity was cancelled
  6  the sandbox stopped it (trap, timeout, memory, stack, output or fuel limit)";

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RunArgs {
    /// The activity component (.wasm) to run.
    pub component: PathBuf,

    /// The activity input, as JSON.
    #[arg(long, default_value = "null", conflicts_with = "input_file")]
    pub input: String,

    /// Read the input JSON from this file (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    pub input_file: Option<PathBuf>,

    /// Heartbeat details left by a previous attempt (JSON), to resume from.
    #[arg(long, value_name = "JSON")]
    pub heartbeat_details: Option<String>,

    /// The attempt number the activity sees.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub attempt: u32,

    /// The activity type the activity sees [default: the file name].
    #[arg(long)]
    pub activity_type: Option<String>,

    /// The activity id the activity sees [default: a random one].
    #[arg(long)]
    pub activity_id: Option<String>,

    /// Wall-clock deadline of the attempt (e.g. `500ms`, `30s`, `5m`);
    /// `0` for none. A guest past it is interrupted, even in a tight loop.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Cap on the guest's memory (e.g. `64MiB`).
    #[arg(long, default_value = "512MiB")]
    pub memory: ByteSize,

    /// Instruction budget (wasmtime fuel units); unlimited when absent.
    #[arg(long)]
    pub fuel: Option<u64>,

    /// Cap on each of stdout, stderr and the log.
    #[arg(long, default_value = "1MiB")]
    pub max_output: ByteSize,

    /// Cap on the result and on heartbeat details.
    #[arg(long, default_value = "2MiB")]
    pub max_payload: ByteSize,

    /// Give the guest an environment variable (repeatable). Nothing is
    /// inherited from the host.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Let the guest read a host directory, seen inside as GUEST (default:
    /// the same path). Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<String>,

    /// Like --dir, but the guest may also write.
    #[arg(long = "dir-rw", value_name = "HOST[::GUEST]")]
    pub dirs_rw: Vec<String>,

    /// Let the guest make wasi:http requests to this host (HOST, HOST:PORT,
    /// *.DOMAIN or *.DOMAIN:PORT; repeatable). Nothing is allowed by default.
    #[arg(long = "allow-http", value_name = "HOST[:PORT]")]
    pub allow_http: Vec<crate::sandbox::HttpRule>,

    /// Request cancellation after this long; the guest sees it on its next
    /// heartbeat. (Ctrl-C does the same; a second Ctrl-C interrupts.)
    #[arg(long, value_parser = humantime::parse_duration)]
    pub cancel_after: Option<Duration>,

    /// How long a guest may take to stop after cancellation is requested
    /// before it is interrupted.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub cancel_grace: Duration,

    /// Print events and the outcome as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,

    /// Where compiled components are cached.
    #[arg(long, env = "SLUICE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not use the compiled-component cache.
    #[arg(long)]
    pub no_cache: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn json_arg(what: &str, text: &str) -> anyhow::Result<Payload> {
    Payload::json_text(text).with_context(|| format!("{what} is not valid JSON"))
}

pub async fn run(args: RunArgs) -> anyhow::Result<Exit> {
    let input = match &args.input_file {
        Some(path) if path.as_os_str() == "-" => {
            let text = std::io::read_to_string(std::io::stdin()).context("cannot read the input from stdin")?;
            json_arg("the input", &text)?
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the input file {}", path.display()))?;
            json_arg(&format!("the input file {}", path.display()), &text)?
        }
        None => json_arg("--input", &args.input)?,
    };
    let last_heartbeat = args.heartbeat_details.as_deref().map(|t| json_arg("--heartbeat-details", t)).transpose()?;

    let limits = Limits {
        memory: args.memory.as_u64(),
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        fuel: args.fuel,
        max_output: args.max_output.as_u64() as usize,
        max_payload: args.max_payload.as_u64() as usize,
    };
    input.check_size("the input", limits.max_payload)?;
    if let Some(details) = &last_heartbeat {
        details.check_size("--heartbeat-details", limits.max_payload)?;
    }
    let mut grants = Grants { env: args.env.clone(), dirs: Vec::new(), http: args.allow_http.clone() };
    for (specs, writable) in [(&args.dirs, false), (&args.dirs_rw, true)] {
        for spec in specs {
            let grant = DirGrant::parse(spec, writable)?;
            if !grant.host.is_dir() {
                bail!("cannot grant directory {}: it is not a directory", grant.host.display());
            }
            grants.dirs.push(grant);
        }
    }

    let sandbox = Sandbox::new(SandboxConfig {
        allocation: Allocation::Pooling { instances: 4 },
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(crate::sandbox::ComponentCache::default_dir)
        },
        ..SandboxConfig::default()
    })?;
    let component = sandbox.load(&args.component, limits.fuel.is_some())?;

    let activity_type = args
        .activity_type
        .clone()
        .unwrap_or_else(|| args.component.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    let activity_id = args.activity_id.clone().unwrap_or_else(|| format!("run-{}", uuid::Uuid::new_v4()));
    let now = now_ms();
    let host_queue = format!("sluice-run@{}", hostname());
    let info = ActivityInfo {
        activity_id: activity_id.clone(),
        run_id: uuid::Uuid::new_v4().to_string(),
        activity_type: activity_type.clone(),
        task_queue: "sluice-run".into(),
        attempt: args.attempt,
        scheduled_time_ms: now,
        current_attempt_scheduled_time_ms: now,
        started_time_ms: now,
        schedule_to_close_deadline_ms: None,
        start_to_close_deadline_ms: limits.timeout.map(|t| now + t.as_millis() as u64),
        heartbeat_timeout_ms: None,
        host_task_queue: host_queue,
    };

    let out = Printer { json: args.json };
    out.start(&activity_type, &args, &limits);
    let control = Arc::new(AttemptControl::new());
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let req = AttemptRequest {
        warm: None,
        info,
        input,
        last_heartbeat,
        // `sluice run` has no server to complete against; the token only
        // names the attempt so a guest's hand-off code can be exercised.
        task_token: crate::token::AttemptToken::Fixed(format!("local:{activity_id}:{}", args.attempt)),
        limits,
        grants,
        control: control.clone(),
        events: Some(events_tx),
    };
    let mut attempt = tokio::spawn({
        let component = component.clone();
        async move { component.run(req).await }
    });

    let mut cancel_at = args.cancel_after.map(|d| tokio::time::Instant::now() + d);
    let mut interrupt_at: Option<tokio::time::Instant> = None;
    let report = loop {
        tokio::select! {
            report = &mut attempt => break report.context("the attempt task failed")?,
            Some(event) = events.recv() => out.event(&event),
            () = crate::util::sleep_until(cancel_at) => {
                cancel_at = None;
                control.request_cancel();
                interrupt_at = Some(tokio::time::Instant::now() + args.cancel_grace);
                out.note("cancellation requested");
            }
            () = crate::util::sleep_until(interrupt_at) => {
                interrupt_at = None;
                control.interrupt(InterruptReason::Cancelled);
            }
            _ = tokio::signal::ctrl_c() => {
                if control.cancel_requested() {
                    control.interrupt(InterruptReason::Cancelled);
                } else {
                    control.request_cancel();
                    interrupt_at = Some(tokio::time::Instant::now() + args.cancel_grace);
                    out.note("cancellation requested (Ctrl-C again to interrupt)");
                }
            }
        }
    };
    while let Ok(event) = events.try_recv() {
        out.event(&event);
    }
    Ok(out.finish(&report))
}

/// Lines of guest stdout/stderr shown per stream in human output.
const MAX_SHOWN_LINES: usize = 40;

/// Prints what happens: to stderr for people (the result alone goes to
/// stdout, so it can be piped), or as JSON lines on stdout with `--json`.
struct Printer {
    json: bool,
}

impl Printer {
    fn line(&self, value: serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{value}");
        let _ = stdout.flush();
    }

    fn start(&self, activity_type: &str, args: &RunArgs, limits: &Limits) {
        if self.json {
            return;
        }
        let timeout = limits.timeout.map(|t| humantime::format_duration(t).to_string());
        say!(
            "running {activity_type} ({}), attempt {}, timeout {}, memory {}",
            args.component.display(),
            args.attempt,
            timeout.as_deref().unwrap_or("none"),
            ByteSize(limits.memory),
        );
    }

    fn note(&self, message: &str) {
        if self.json {
            self.line(serde_json::json!({ "event": "note", "message": message }));
        } else {
            say!("  {message}");
        }
    }

    fn event(&self, event: &AttemptEvent) {
        if self.json {
            self.line(serde_json::to_value(event).unwrap_or_default());
            return;
        }
        match event {
            AttemptEvent::Heartbeat { details } => match details {
                Some(d) => say!("  heartbeat  {d}"),
                None => say!("  heartbeat"),
            },
            AttemptEvent::Progress { percent, message } => match percent {
                Some(p) => say!("  progress   {p:>5.1}%  {message}"),
                None => say!("  progress   {message}"),
            },
            AttemptEvent::Log { level, message, fields } => {
                let fields: String = fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
                say!("  log {level:<6} {message}{fields}");
            }
        }
    }

    fn finish(&self, report: &AttemptReport) -> Exit {
        let exit = match &report.outcome {
            AttemptOutcome::Completed { .. } => Exit::Completed,
            AttemptOutcome::Pending => Exit::Pending,
            AttemptOutcome::Cancelled { .. } => Exit::Cancelled,
            AttemptOutcome::Failed(_) => Exit::ApplicationError,
            AttemptOutcome::SandboxFailure(_) => Exit::SandboxFailure,
        };
        if self.json {
            let mut value = serde_json::to_value(report).unwrap_or_default();
            value["event"] = "outcome".into();
            self.line(value);
            return exit;
        }
        for (name, output) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
            let text = String::from_utf8_lossy(&output.bytes);
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(MAX_SHOWN_LINES);
            if skip > 0 {
                say!("  {name} | [{skip} earlier lines not shown; --json prints everything]");
            }
            for line in &lines[skip..] {
                say!("  {name} | {line}");
            }
            if output.truncated {
                say!("  {name} | [truncated at the output limit]");
            }
        }
        for denial in &report.denials {
            say!("  {denial}");
        }
        let took = humantime::format_duration(Duration::from_micros(report.duration.as_micros() as u64));
        match &report.outcome {
            AttemptOutcome::Completed { result } => {
                say!("completed in {took}");
                let _ = writeln!(std::io::stdout(), "{result}");
            }
            AttemptOutcome::Pending => {
                say!("pending after {took}: the activity will be completed externally");
            }
            AttemptOutcome::Cancelled { details } => {
                say!("cancelled after {took}");
                if let Some(d) = details {
                    say!("  details: {d}");
                }
            }
            AttemptOutcome::Failed(e) => {
                let kind = if e.error_type.is_empty() { String::new() } else { format!(" {}", e.error_type) };
                let retry = if e.non_retryable { "non-retryable" } else { "retryable" };
                say!("failed after {took}: application error{kind} ({retry}): {}", e.message);
                if let Some(d) = &e.details {
                    say!("  details: {d}");
                }
                if let Some(delay) = e.next_retry_delay {
                    say!("  next retry in {}", humantime::format_duration(delay));
                }
            }
            AttemptOutcome::SandboxFailure(f) => {
                say!("sandbox failure ({}) after {took}: {}", f.kind, f.message);
                if let Some(bt) = &f.backtrace {
                    for line in bt.lines().take(12) {
                        say!("  {line}");
                    }
                }
            }
        }
        if exit != Exit::Completed
            && let Some(d) = &report.last_heartbeat
        {
            say!("last heartbeat details: {d}  (resume with --heartbeat-details '{d}')");
        }
        exit
    }
}
