//! The client commands: each one RPC (or a stream) against a server, one
//! file per concern.

mod activity;
mod completion;
mod deploy;
mod many;
mod operate;
mod operator;
mod start;

use std::time::Duration;

pub use activity::*;
pub use completion::*;
pub use deploy::*;
pub use operate::*;
pub use operator::*;
pub use start::*;

pub(super) const RESULT_EXIT_CODES: &str = "\
Exit status:
  0  completed (the result is printed)
  1  error (cannot connect, unknown activity, ...)
  3  failed
  4  not closed yet (the wait passed)
  5  cancelled
  6  timed out
  7  terminated";

/// The four timeouts, as `start` and `update-options` take them.
#[derive(Debug, clap::Args)]
pub struct TimeoutArgs {
    #[arg(long, value_parser = parse_duration)]
    pub schedule_to_close: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    pub schedule_to_start: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    pub start_to_close: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    pub heartbeat_timeout: Option<Duration>,
}

pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}
