//! The `sluice` command line: argument definitions and dispatch.

/// Like `eprintln!`, but a closed stderr (say, piped into `head`) is not a crash.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sluice runs activities — single well-defined actions — as sandboxed
/// WebAssembly components, with Temporal's activity semantics.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, propagate_version = true)]
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
    SandboxFailure = 6,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
