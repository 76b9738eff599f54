//! The `sluice` command line: argument definitions and dispatch.

mod build;
mod client;
mod commands;
mod run;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sluice runs activities — single well-defined actions — as sandboxed
/// WebAssembly components, with Temporal's activity semantics.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one attempt of an activity component in the sandbox and print
    /// its outcome, heartbeats and progress as they happen (the dev loop for
    /// writing activities).
    Run(run::RunArgs),
    /// Build a guest folder (Rust, Python, JavaScript or C) into an
    /// activity component, installing the language's toolchain on first use.
    Build(build::BuildArgs),
    /// Run the host: task queues, durable timers, retries, the WASM
    /// workers and the gRPC API, on the embedded store.
    Serve(serve::ServeArgs),
    /// Start an activity execution.
    Start(commands::StartArgs),
    /// Show an execution: status, timings, failure, heartbeat, history, logs.
    Describe(commands::DescribeArgs),
    /// Print an execution's result, waiting for it to close.
    Result(commands::ResultArgs),
    /// Follow an execution live: transitions, progress, heartbeats.
    Watch(commands::IdArgs),
    /// List executions, newest first.
    List(commands::ListArgs),
    /// Request cancellation (immediate if the execution is still scheduled).
    Cancel(commands::CancelArgs),
    /// End an execution without asking its attempt.
    Terminate(commands::TerminateArgs),
    /// Pause: no new attempt is dispatched (a running one may finish; a
    /// failed one's retry waits); schedule-to-close keeps running.
    Pause(commands::PauseArgs),
    /// Let a paused execution be dispatched again.
    Unpause(commands::UnpauseArgs),
    /// Start the retry count over: the next attempt is attempt 1 of the
    /// policy, now, with timeouts re-armed (a running attempt is reset at its
    /// next heartbeat or end).
    Reset(commands::ResetArgs),
    /// Change an open execution's task queue, priority, timeouts or retry policy.
    UpdateOptions(commands::UpdateOptionsArgs),
    /// Delete an execution with its history and logs (an open one is
    /// terminated first).
    Delete(commands::DeleteArgs),
    /// Complete a started attempt (by task token or activity id).
    Complete(commands::CompleteArgs),
    /// Fail a started attempt; the retry policy decides what follows.
    Fail(commands::FailArgs),
    /// Heartbeat a started attempt; prints whether cancellation was requested.
    Heartbeat(commands::HeartbeatArgs),
    /// Deploy a component (or a guest folder, built first) to a running
    /// server as a new version of an activity type; or roll back.
    Deploy(commands::DeployArgs),
    /// List the activity types: current version, versions, queues.
    Types(commands::TypesArgs),
    /// Show or change one activity type.
    Type(commands::TypeArgs),
    /// Show a task queue: backlog, running attempts, free slots.
    Queue(commands::QueueArgs),
    /// Print the SHA-256 of a bearer token, for `server.auth.tokens_sha256`.
    HashToken(commands::HashTokenArgs),
}

/// Exit codes of `sluice run`, documented in its `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Completed = 0,
    /// The host could not do what was asked (bad arguments, unreadable or
    /// invalid component, ...).
    HostError = 1,
    ApplicationError = 3,
    Pending = 4,
    Cancelled = 5,
    /// A sandbox failure (`run`) or a timeout (`result`).
    SandboxFailure = 6,
    Terminated = 7,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // Output piped into `head` ends the command quietly, as with other
        // command-line tools, instead of a panic on the closed pipe. The
        // server keeps ignoring SIGPIPE (a closed socket is an error there).
        // SAFETY: setting a signal's disposition to its default is sound
        // at any time; no handler runs.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::HostError.into();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Build(args) => build::build(args),
            Command::Serve(args) => serve::serve(args).await,
            Command::Start(a) => commands::start(a).await,
            Command::Describe(a) => commands::describe(a).await,
            Command::Result(a) => commands::result(a).await,
            Command::Watch(a) => commands::watch(a).await,
            Command::List(a) => commands::list(a).await,
            Command::Cancel(a) => commands::cancel(a).await,
            Command::Terminate(a) => commands::terminate(a).await,
            Command::Pause(a) => commands::pause(a).await,
            Command::Unpause(a) => commands::unpause(a).await,
            Command::Reset(a) => commands::reset(a).await,
            Command::UpdateOptions(a) => commands::update_options(a).await,
            Command::Delete(a) => commands::delete(a).await,
            Command::Complete(a) => commands::complete(a).await,
            Command::Fail(a) => commands::fail(a).await,
            Command::Heartbeat(a) => commands::heartbeat(a).await,
            Command::Queue(a) => commands::queue(a).await,
            Command::Deploy(a) => commands::deploy(a).await,
            Command::Types(a) => commands::types(a).await,
            Command::Type(a) => commands::activity_type(a).await,
            Command::HashToken(a) => commands::hash_token(a),
        }
    });
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            Exit::HostError.into()
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
