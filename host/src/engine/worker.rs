//! External workers: processes in any language that long-poll a task queue
//! and run attempts themselves, beside (or instead of) the WASM workers.

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, EngineError};
use crate::activity::{Change, Execution};
use crate::store::QueueStats;
use crate::token::TaskToken;

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
    /// Records what follows a claim: watchers hear of the start and the
    /// timer learns the attempt's deadlines.
    pub(super) fn after_claim(&self, e: &Execution, now: u64) {
        let change = Change::Started { attempt: e.attempt };
        let h = super::mutate::history_for(&change, e, now);
        self.act(e, &change, h.as_ref(), now);
    }

    /// Takes one attempt from `queue` for an external worker, waiting up to
    /// `wait` for one to become available.
    pub async fn poll(
        self: &Arc<Self>,
        queue: &str,
        identity: &str,
        types: Vec<String>,
        wait: Duration,
    ) -> Result<Option<PolledTask>, EngineError> {
        super::mutate::check_name("task_queue", queue)?;
        super::mutate::check_name("identity", identity)?;
        let worker = format!("{EXTERNAL_PREFIX}{identity}");
        let types = (!types.is_empty()).then_some(types);
        let deadline = tokio::time::Instant::now() + wait;
        let wake = self.queue_notify(queue);
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.clock.now();
            if let Some(v) = self.store.claim(queue, types.clone(), &worker, 1, now).await?.pop() {
                let e = v.value;
                self.after_claim(&e, now);
                let task_token = self.signer.sign(&TaskToken {
                    activity_id: e.activity_id.clone(),
                    run_id: e.run_id.clone(),
                    attempt: e.attempt,
                });
                return Ok(Some(PolledTask { execution: e, task_token }));
            }
            let next = self.store.next_dispatch(queue, types.clone()).await?;
            let wake_at = next
                .map(|t| tokio::time::Instant::now() + Duration::from_millis(t.saturating_sub(self.clock.now())))
                .map_or(deadline, |t| t.min(deadline));
            tokio::select! {
                () = tokio::time::sleep_until(wake_at) => {}
                () = &mut notified => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Backlog and running counts of a queue.
    pub async fn queue_stats(&self, queue: &str) -> Result<QueueStats, EngineError> {
        super::mutate::check_name("task_queue", queue)?;
        Ok(self.store.queue_stats(queue).await?)
    }

    /// (name, component path, component hash, queues) of each configured type.
    pub fn activity_types(&self) -> Vec<(String, String, String, Vec<String>)> {
        let mut v: Vec<_> = self
            .types
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    t.config.component.display().to_string(),
                    t.component.hash.clone(),
                    t.config.queues.clone(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// A page of executions.
    pub async fn list(
        &self,
        filter: crate::store::ListFilter,
    ) -> Result<(Vec<Execution>, Option<String>), EngineError> {
        Ok(self.store.list(filter).await?)
    }
}
