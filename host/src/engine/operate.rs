//! What operators do to executions: pause, unpause, reset, update options
//! and delete (Temporal's semantics; the transitions are `activity::operate`'s).

use std::sync::Arc;
use std::time::Duration;

use super::operations::{check_ids, check_name};
use super::{Engine, EngineError};
use crate::activity::{Execution, OptionsUpdate, Reject, ResetRequest, RetryPolicy, Timeouts};

/// Longest unpause jitter.
pub const MAX_JITTER: Duration = Duration::from_secs(24 * 3600);

/// New options, as a client sends them (durations and the retry policy
/// already checked at the API); `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct OptionsChange {
    pub task_queue: Option<String>,
    /// Merged field by field over the current timeouts, then resolved.
    pub timeouts: Option<Timeouts>,
    pub retry: Option<RetryPolicy>,
    pub priority: Option<u8>,
}

impl Engine {
    /// Stops dispatching new attempts of the execution.
    pub async fn pause(self: &Arc<Self>, activity_id: &str, run_id: Option<&str>) -> Result<Execution, EngineError> {
        check_ids(activity_id, run_id)?;
        Ok(self.mutate(activity_id, run_id, None, |e, _| e.pause().map(Some)).await?.exec)
    }

    /// Lets a paused execution be dispatched again, after a random delay of
    /// up to `jitter`.
    pub async fn unpause(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        jitter: Duration,
    ) -> Result<Execution, EngineError> {
        check_ids(activity_id, run_id)?;
        if jitter > MAX_JITTER {
            return Err(EngineError::Invalid(format!("jitter must be at most 24h, got {jitter:?}")));
        }
        let delay = Duration::from_millis(random_below(jitter.as_millis() as u64));
        Ok(self.mutate(activity_id, run_id, None, |e, now| e.unpause(delay, now).map(Some)).await?.exec)
    }

    /// Starts the execution's retry count over (see `Execution::reset`).
    pub async fn reset(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        req: ResetRequest,
    ) -> Result<Execution, EngineError> {
        check_ids(activity_id, run_id)?;
        Ok(self.mutate(activity_id, run_id, None, |e, now| e.reset(req, now).map(Some)).await?.exec)
    }

    /// Changes an open execution's queue, timeouts, retry policy or priority.
    pub async fn update_options(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        change: OptionsChange,
    ) -> Result<Execution, EngineError> {
        check_ids(activity_id, run_id)?;
        if let Some(q) = &change.task_queue {
            check_name("task_queue", q)?;
        }
        let m = self
            .mutate(activity_id, run_id, None, |e, _| {
                // Merged over what the execution has, then resolved as at start.
                let timeouts = match &change.timeouts {
                    Some(t) => Some(t.or(&e.timeouts).resolve().map_err(|err| Reject::InvalidOptions {
                        activity_id: e.activity_id.clone(),
                        reason: err.to_string(),
                    })?),
                    None => None,
                };
                let update = OptionsUpdate {
                    task_queue: change.task_queue.clone(),
                    timeouts,
                    retry: change.retry.clone(),
                    priority: change.priority,
                };
                e.update_options(update).map(Some)
            })
            .await?;
        Ok(m.exec)
    }

    /// Deletes an execution with its history and logs; an open one is
    /// terminated first.
    pub async fn delete(self: &Arc<Self>, activity_id: &str, run_id: Option<&str>) -> Result<(), EngineError> {
        check_ids(activity_id, run_id)?;
        let exec = self.get(activity_id, run_id).await?.value;
        if !exec.status.is_closed() {
            let reason = "deleted by an operator";
            self.mutate(activity_id, Some(&exec.run_id), None, |e, now| {
                if e.status.is_closed() { Ok(None) } else { e.terminate(reason, now).map(Some) }
            })
            .await?;
        }
        self.store.delete(&exec.run_id).await?;
        Ok(())
    }
}

/// A random number in `0..=max` (0 when `max` is 0).
fn random_below(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut bytes = [0u8; 8];
    // No randomness: no jitter, rather than failing the unpause.
    if getrandom::fill(&mut bytes).is_err() {
        return 0;
    }
    u64::from_le_bytes(bytes) % (max + 1)
}
