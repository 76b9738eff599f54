//! Counts through a range, heartbeating its position, and resumes from the
//! last heartbeat when an attempt is retried.
//!
//! Input: `{"from": 0, "to": 10, "step_ms": 0, "fail_at": null}`.
//! Output: `{"started_at": N, "counted": M, "sum": S}` where `started_at` is
//! where this attempt began (the last heartbeat's `next`, or `from`) and
//! `sum` is the sum of the numbers counted by this attempt.
//! With `fail_at: K` an attempt that reaches K before finishing fails with a
//! retryable `Interrupted` error, the way a crash would stop it; the next
//! attempt picks up at K.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_guest::{ActivityError, Context};

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    from: u64,
    to: u64,
    /// Pause after each number, to make the activity long-running.
    #[serde(default)]
    step_ms: u64,
    /// Fail the first time this number is reached (attempt 1 only).
    #[serde(default)]
    fail_at: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Position {
    next: u64,
}

#[derive(Serialize)]
struct Output {
    started_at: u64,
    counted: u64,
    sum: u64,
}

fn count(ctx: &Context, input: Input) -> Result<Output, ActivityError> {
    let start = match ctx.last_heartbeat::<Position>()? {
        Some(pos) => pos.next,
        None => input.from,
    };
    let mut sum = 0;
    for n in start..input.to {
        if input.fail_at == Some(n) && ctx.info().attempt == 1 {
            return Err(ActivityError::new("Interrupted", format!("stopped at {n}")));
        }
        sum += n;
        ctx.heartbeat(&Position { next: n + 1 })?;
        let done = n + 1 - input.from;
        let total = input.to.saturating_sub(input.from).max(1);
        ctx.progress(Some(done as f32 * 100.0 / total as f32), &format!("counted {}", n + 1));
        if input.step_ms > 0 {
            std::thread::sleep(Duration::from_millis(input.step_ms));
        }
    }
    Ok(Output { started_at: start, counted: input.to.saturating_sub(start), sum })
}

sluice_guest::export_activity!(count);
