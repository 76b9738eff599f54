//! External workers: processes in any language that long-poll a task queue
//! and run attempts themselves, beside (or instead of) this host's workers.

use std::sync::Arc;
use std::time::Duration;

use super::claim::Want;
use super::operations::check_name;
use super::{Engine, EngineError};
use crate::activity::Execution;

/// Worker ids of external workers carry this prefix, so that recovery
/// never mistakes them for this host's own.
pub const EXTERNAL_PREFIX: &str = "external:";

/// A task handed to an external worker.
#[derive(Debug, Clone)]
pub struct PolledTask {
    pub execution: Execution,
    pub task_token: String,
}

impl Engine {
    /// Takes one attempt from `queue` for an external worker, waiting up to
    /// `wait` for one to become available.
    pub async fn poll(
        self: &Arc<Self>,
        queue: &str,
        identity: &str,
        types: Vec<String>,
        wait: Duration,
    ) -> Result<Option<PolledTask>, EngineError> {
        check_name("task_queue", queue)?;
        check_name("identity", identity)?;
        let worker = format!("{EXTERNAL_PREFIX}{identity}");
        let want = Want { queue, types: (!types.is_empty()).then_some(types), worker: &worker, limit: 1, idle: None };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((claimed, ())) = self.claim_or_wait(&want, (), tokio::time::sleep_until(deadline)).await? {
                let execution = claimed.into_iter().next().expect("claimed one").value;
                let task_token = self.task_token(&execution);
                return Ok(Some(PolledTask { execution, task_token }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
}
