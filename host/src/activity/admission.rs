//! Whether a start request creates a new run, returns an existing one, or
//! is refused: request-id idempotency, id conflict and id reuse policies.

use serde::{Deserialize, Serialize};

use super::execution::{Execution, Status};

/// What to do when the id belongs to a running execution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// Refuse the start (ALREADY_EXISTS).
    #[default]
    Fail,
    /// Return the running execution.
    UseExisting,
}

/// What to do when the id belongs to a closed execution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReusePolicy {
    /// Start a new run.
    #[default]
    AllowDuplicate,
    /// Start a new run only if the last one did not complete.
    AllowDuplicateFailedOnly,
    /// Refuse the start.
    RejectDuplicate,
}

/// The verdict on a start request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Create a new run.
    New,
    /// Return this existing run (same request id, or use-existing).
    Existing { run_id: String },
    /// Refuse, with the reason.
    Rejected(String),
}

/// Decides a start request for an id whose latest run is `latest`.
pub fn admit(
    latest: Option<&Execution>,
    request_id: Option<&str>,
    conflict: ConflictPolicy,
    reuse: ReusePolicy,
) -> Admission {
    let Some(latest) = latest else { return Admission::New };
    if request_id.is_some() && latest.request_id.as_deref() == request_id {
        return Admission::Existing { run_id: latest.run_id.clone() };
    }
    let id = &latest.activity_id;
    if !latest.status.is_closed() {
        return match conflict {
            ConflictPolicy::Fail => Admission::Rejected(format!(
                "activity {id} is already running (run {}); use conflict policy use-existing to get it",
                latest.run_id
            )),
            ConflictPolicy::UseExisting => Admission::Existing { run_id: latest.run_id.clone() },
        };
    }
    match reuse {
        ReusePolicy::AllowDuplicate => Admission::New,
        ReusePolicy::AllowDuplicateFailedOnly if latest.status != Status::Completed => Admission::New,
        ReusePolicy::AllowDuplicateFailedOnly => {
            Admission::Rejected(format!("activity {id} already completed and the reuse policy allows failed runs only"))
        }
        ReusePolicy::RejectDuplicate => Admission::Rejected(format!(
            "activity {id} already ran (it is {}) and the reuse policy rejects duplicates",
            latest.status
        )),
    }
}
