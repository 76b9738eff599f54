//! An execution's row values as a transition writes them, encoded before
//! they reach a store's writer (which then spends its time writing, not
//! encoding); shared by the backends.

use super::record;
use super::{LogEntry, StoreError};
use crate::activity::{Execution, HistoryEntry, Transition};

/// Longest history kept per execution; past it the oldest entries after the
/// first ("scheduled") are dropped.
pub const MAX_HISTORY: i64 = 200;

/// A new execution with its JSON already made, so the (single) writer
/// thread does not spend its time encoding.
pub struct Encoded {
    pub exec: Execution,
    pub options: String,
    pub state: String,
}

impl Encoded {
    pub fn new(exec: Execution) -> Result<Encoded, StoreError> {
        Ok(Encoded { options: record::options_json(&exec)?, state: record::state_json(&exec)?, exec })
    }
}

/// The columns a transition rewrites, encoded off the writer thread.
pub struct Row {
    pub run_id: String,
    pub task_queue: String,
    pub priority: u8,
    /// Only when the transition changed them.
    pub options: Option<String>,
    pub status: &'static str,
    pub dispatch_at: Option<i64>,
    pub deadline_at: Option<i64>,
    pub worker: Option<String>,
    pub closed_at: Option<i64>,
    pub state: String,
}

impl Row {
    pub fn new(exec: &Execution, options_changed: bool) -> Result<Row, StoreError> {
        Ok(Row {
            run_id: exec.run_id.clone(),
            task_queue: exec.task_queue.clone(),
            priority: exec.priority,
            options: options_changed.then(|| record::options_json(exec)).transpose()?,
            status: exec.status.as_str(),
            dispatch_at: exec.dispatchable_at().map(|t| t as i64),
            deadline_at: exec.next_deadline().map(|t| t as i64),
            worker: exec.worker.clone(),
            closed_at: exec.closed_at.map(|t| t as i64),
            state: record::state_json(exec)?,
        })
    }
}

/// A new run's history as inserted, a JSON array, and its length: the
/// `scheduled` entry, and the `started` one of an eager start.
pub fn first_history(scheduled: &Transition, started: Option<&Transition>) -> Result<(String, i64), StoreError> {
    let entries: Vec<&HistoryEntry> =
        [Some(scheduled), started].into_iter().flatten().filter_map(|t| t.history.as_ref()).collect();
    Ok((serde_json::to_string(&entries)?, entries.len() as i64))
}

pub fn encoded_history(h: Option<&HistoryEntry>) -> Result<Option<String>, StoreError> {
    Ok(h.map(serde_json::to_string).transpose()?)
}

/// Log records with their fields encoded, off the writer thread.
pub fn encoded_logs(logs: &[LogEntry]) -> Result<Vec<(LogEntry, String)>, StoreError> {
    logs.iter().map(|l| Ok((l.clone(), serde_json::to_string(&l.fields)?))).collect()
}
