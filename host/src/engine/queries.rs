//! Reading executions: describe, list, queue counts.

use super::mutate::not_found;
use super::operations::{check_ids, check_name};
use super::{Description, Engine, EngineError};
use crate::activity::Execution;
use crate::store::{ListFilter, LogPage, QueueStats, Versioned};

impl Engine {
    /// The execution (the latest run, or the given one).
    pub async fn execution(&self, activity_id: &str, run_id: Option<&str>) -> Result<Execution, EngineError> {
        Ok(self.get(activity_id, run_id).await?.value)
    }

    pub(super) async fn get(
        &self,
        activity_id: &str,
        run_id: Option<&str>,
    ) -> Result<Versioned<Execution>, EngineError> {
        check_ids(activity_id, run_id)?;
        self.store.get(activity_id, run_id).await?.ok_or_else(|| EngineError::NotFound(not_found(activity_id, run_id)))
    }

    /// The execution with its history and a page of its logs (one read).
    pub async fn describe(
        &self,
        activity_id: &str,
        run_id: Option<&str>,
        logs: LogPage,
    ) -> Result<Description, EngineError> {
        check_ids(activity_id, run_id)?;
        let d = self
            .store
            .describe(activity_id, run_id, logs)
            .await?
            .ok_or_else(|| EngineError::NotFound(not_found(activity_id, run_id)))?;
        Ok(Description { execution: d.exec.value, history: d.history, logs: d.logs, next_logs_page: d.next_logs })
    }

    /// A page of executions.
    pub async fn list(&self, filter: ListFilter) -> Result<(Vec<Execution>, Option<String>), EngineError> {
        if let Some(t) = &filter.activity_type {
            check_name("activity_type", t)?;
        }
        if let Some(q) = &filter.task_queue {
            check_name("task_queue", q)?;
        }
        Ok(self.store.list(filter).await?)
    }

    /// Backlog and running counts of a queue.
    /// `closed`: also the closed executions by type and status (reads every
    /// retained row of the queue).
    pub async fn queue_stats(&self, queue: &str, closed: bool) -> Result<QueueStats, EngineError> {
        check_name("task_queue", queue)?;
        Ok(self.store.queue_stats(queue, closed).await?)
    }
}
