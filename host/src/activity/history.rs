//! An execution's history: one entry per transition, written by [`record`]
//! from the transition's [`Change`] and nowhere else.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::execution::{Change, Execution, Millis, Status};
use super::failure::Failure;

/// What a history entry records. Closing entries are named after the
/// status they close with (`completed`, `timed-out`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    Scheduled,
    Started,
    PendingAsync,
    RetryScheduled,
    CancelRequested,
    Closed(Status),
    Paused,
    Unpaused,
    Reset,
    OptionsUpdated,
}

impl HistoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Scheduled => Status::Scheduled.as_str(),
            HistoryKind::Started => Status::Started.as_str(),
            HistoryKind::PendingAsync => "pending-async",
            HistoryKind::RetryScheduled => "retry-scheduled",
            HistoryKind::CancelRequested => "cancel-requested",
            HistoryKind::Closed(status) => status.as_str(),
            HistoryKind::Paused => "paused",
            HistoryKind::Unpaused => "unpaused",
            HistoryKind::Reset => "reset",
            HistoryKind::OptionsUpdated => "options-updated",
        }
    }

    pub fn parse(s: &str) -> Option<HistoryKind> {
        Some(match s {
            "pending-async" => HistoryKind::PendingAsync,
            "retry-scheduled" => HistoryKind::RetryScheduled,
            "cancel-requested" => HistoryKind::CancelRequested,
            "paused" => HistoryKind::Paused,
            "unpaused" => HistoryKind::Unpaused,
            "reset" => HistoryKind::Reset,
            "options-updated" => HistoryKind::OptionsUpdated,
            _ => match Status::parse(s)? {
                Status::Scheduled => HistoryKind::Scheduled,
                Status::Started => HistoryKind::Started,
                closed => HistoryKind::Closed(closed),
            },
        })
    }
}

impl std::fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HistoryKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HistoryKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        HistoryKind::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown history kind {s:?}")))
    }
}

/// One transition in an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Millis,
    pub attempt: u32,
    pub kind: HistoryKind,
    pub detail: serde_json::Value,
}

/// The history entry recording `change` (which left the execution as `e`),
/// or `None` when the change is not a transition (a heartbeat).
pub fn record(change: &Change, e: &Execution, now: Millis) -> Option<HistoryEntry> {
    let (kind, attempt, detail) = match change {
        Change::Scheduled => (HistoryKind::Scheduled, e.attempt, json!({ "task_queue": e.task_queue })),
        Change::Started { attempt } => {
            (HistoryKind::Started, *attempt, json!({ "worker": e.worker, "version": e.version }))
        }
        Change::PendingAsync => (HistoryKind::PendingAsync, e.attempt, json!({})),
        Change::RetryScheduled { failed_attempt, at } => {
            (HistoryKind::RetryScheduled, *failed_attempt, json!({ "failure": e.last_failure, "next_attempt_at": at }))
        }
        Change::CancelRequested => (HistoryKind::CancelRequested, e.attempt, json!({})),
        Change::Paused => (HistoryKind::Paused, e.attempt, json!({})),
        Change::Unpaused => (HistoryKind::Unpaused, e.attempt, json!({ "next_attempt_at": e.dispatchable_at() })),
        Change::Reset { pending } => (HistoryKind::Reset, e.attempt, json!({ "at_attempt_end": pending })),
        Change::OptionsUpdated => (
            HistoryKind::OptionsUpdated,
            e.attempt,
            json!({ "task_queue": e.task_queue, "priority": e.priority, "timeouts": e.timeouts, "retry": e.retry }),
        ),
        Change::Closed(status) => {
            let detail = match status {
                Status::Completed => json!({ "result_bytes": e.result.as_ref().map_or(0, |r| r.data.len()) }),
                _ => json!({ "failure": e.last_failure.as_ref().map(summary), "timeout": e.timeout_type }),
            };
            (HistoryKind::Closed(*status), e.attempt, detail)
        }
        Change::Heartbeat { .. } | Change::AlreadyDone => return None,
    };
    Some(HistoryEntry { at: now, attempt, kind, detail })
}

/// Longest failure message kept in a history entry; the execution's
/// `last_failure` has it whole.
const MAX_MESSAGE: usize = 1024;

/// A failure as a history entry tells it: without its details payload and
/// with its message cut, so that 200 entries stay small.
fn summary(f: &Failure) -> serde_json::Value {
    let cut = (0..=MAX_MESSAGE.min(f.message.len())).rev().find(|i| f.message.is_char_boundary(*i)).unwrap_or(0);
    let mut message = f.message[..cut].to_string();
    if cut < f.message.len() {
        message.push('…');
    }
    json!({
        "source": f.source,
        "error_type": f.error_type,
        "message": message,
        "non_retryable": f.non_retryable,
    })
}

/// A change with its history entry: what a store commits and the engine
/// then acts on, whichever path (start, claim, timer, recovery, outcome)
/// produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub change: Change,
    pub history: Option<HistoryEntry>,
}

impl Transition {
    /// `change`, which left the execution as `e` at `now`, with its entry.
    pub fn new(change: Change, e: &Execution, now: Millis) -> Transition {
        let history = record(&change, e, now);
        Transition { change, history }
    }
}
