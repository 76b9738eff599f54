//! How an attempt ended: the outcome, its failure categories, and the full
//! report with captured output.

use std::time::Duration;

use serde::Serialize;

use crate::payload::Payload;

/// How an attempt ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// The guest returned a result.
    Completed {
        #[serde(serialize_with = "as_json")]
        result: Payload,
    },
    /// The guest handed the work off; it will be completed externally.
    Pending,
    /// The guest acknowledged a cancellation request.
    Cancelled {
        #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
        details: Option<Payload>,
    },
    /// The guest reported an application error.
    Failed(ApplicationError),
    /// The sandbox stopped the guest (trap, limit, deadline, ...).
    SandboxFailure(SandboxFailure),
}

fn as_json<S: serde::Serializer>(p: &Payload, s: S) -> Result<S::Ok, S::Error> {
    p.to_json_value().serialize(s)
}

/// An error the activity reported on purpose.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationError {
    pub message: String,
    pub error_type: String,
    pub non_retryable: bool,
    #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
    pub details: Option<Payload>,
    pub next_retry_delay: Option<Duration>,
}

/// The sandbox ended the attempt; `kind` says why in one word.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxFailure {
    pub kind: FailureKind,
    pub message: String,
    /// The guest's wasm backtrace, when it trapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<String>,
}

/// The categories of sandbox failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The start-to-close deadline passed; the guest was interrupted.
    Timeout,
    /// No heartbeat within the heartbeat timeout; the guest was interrupted.
    HeartbeatTimeout,
    /// Interrupted after ignoring a cancellation request.
    Cancelled,
    /// Interrupted because the execution was terminated.
    Terminated,
    /// Interrupted because the host is shutting down.
    Shutdown,
    /// The guest needed more memory than its cap.
    OutOfMemory,
    /// The guest overflowed its stack.
    StackOverflow,
    /// The guest used up its fuel.
    FuelExhausted,
    /// stdout, stderr or the log went over the output cap.
    OutputLimit,
    /// The result or heartbeat details went over the payload cap.
    PayloadTooLarge,
    /// The guest trapped (panic, unreachable, bad memory access, ...).
    Trap,
    /// The host could not run the guest (e.g. no free instance slot).
    Host,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(v.as_str().unwrap_or("unknown"))
    }
}

/// Bytes a guest wrote to a stream, and whether some were refused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Output {
    #[serde(serialize_with = "lossy")]
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

fn lossy<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// The full account of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    /// The latest heartbeat details, to hand to the next attempt.
    #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
    pub last_heartbeat: Option<Payload>,
    /// Socket uses and other capability checks the sandbox refused.
    pub denials: Vec<String>,
    pub stdout: Output,
    pub stderr: Output,
    pub duration: Duration,
    /// The attempt ran in a warm instance kept from an earlier attempt.
    pub warm: bool,
}

impl AttemptReport {
    /// An attempt the host could not run at all.
    pub fn host_failure(message: String, last_heartbeat: Option<Payload>) -> AttemptReport {
        AttemptReport {
            outcome: AttemptOutcome::SandboxFailure(SandboxFailure {
                kind: FailureKind::Host,
                message,
                backtrace: None,
            }),
            last_heartbeat,
            denials: Vec::new(),
            stdout: Output::default(),
            stderr: Output::default(),
            duration: Duration::ZERO,
            warm: false,
        }
    }
}

impl From<SandboxFailure> for AttemptOutcome {
    fn from(f: SandboxFailure) -> Self {
        AttemptOutcome::SandboxFailure(f)
    }
}
