//! What the engine tells watchers (WatchActivity, long-polls), published
//! only after the change is committed.

use serde::Serialize;

use crate::activity::{HistoryKind, Status};
use crate::payload::Payload;

#[derive(Debug, Clone, Serialize)]
pub struct EngineEvent {
    pub activity_id: String,
    pub run_id: String,
    pub attempt: u32,
    pub at: u64,
    /// Written flat: `{"activity_id": …, "kind": "progress", "percent": …}`.
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EventKind {
    /// A transition (the history entry's kind) and the status after it.
    Transition {
        transition: HistoryKind,
        status: Status,
    },
    Progress {
        percent: Option<f32>,
        message: String,
    },
    Heartbeat {
        #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
        details: Option<Payload>,
    },
    /// A log record the attempt wrote (as kept: cut to 4 KiB).
    Log {
        level: String,
        message: String,
        fields: Vec<(String, String)>,
    },
}
