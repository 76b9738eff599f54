//! Classifying how an attempt ended: the guest's own outcome, or why the
//! sandbox stopped it (interrupt reason first, then payload and log caps,
//! refused memory growth, output overflow, the trap code).

use std::time::Duration;

use wasmtime::Trap;

use super::bindings::Outcome;
use super::control::InterruptReason;
use super::host_api::LogLimitExceeded;
use super::limits::Limits;
use super::report::{ApplicationError, AttemptOutcome, FailureKind, SandboxFailure};
use super::state::StoreState;
use super::wasi::Captured;
use crate::payload::{Payload, PayloadTooLarge};

pub(super) enum Stop {
    Error(wasmtime::Error),
    Interrupted(InterruptReason),
}

pub(super) fn guest_outcome(outcome: Outcome, limits: &Limits) -> AttemptOutcome {
    match outcome {
        Outcome::Completed(result) => {
            let result: Payload = result.into();
            match result.check_size("the result", limits.max_payload) {
                Ok(()) => AttemptOutcome::Completed { result },
                Err(e) => AttemptOutcome::SandboxFailure(failure_of(FailureKind::PayloadTooLarge, e)),
            }
        }
        Outcome::Pending => AttemptOutcome::Pending,
        Outcome::Cancelled(details) => AttemptOutcome::Cancelled { details: details.map(Into::into) },
        Outcome::Failed(e) => AttemptOutcome::Failed(ApplicationError {
            message: e.message,
            error_type: e.error_type,
            non_retryable: e.non_retryable,
            details: e.details.map(Into::into),
            next_retry_delay: e.next_retry_delay_ms.map(Duration::from_millis),
        }),
    }
}

pub(super) fn classify(stop: Stop, state: &StoreState, captured: &Captured, limits: &Limits) -> SandboxFailure {
    let err = match stop {
        Stop::Interrupted(reason) => return interrupted(reason, limits),
        Stop::Error(err) => err,
    };
    if let Some(reason) = state.host.control.interrupted() {
        return interrupted(reason, limits);
    }
    if let Some(e) = err.downcast_ref::<PayloadTooLarge>() {
        return failure_of(FailureKind::PayloadTooLarge, e);
    }
    if let Some(e) = err.downcast_ref::<LogLimitExceeded>() {
        return failure_of(FailureKind::OutputLimit, e);
    }
    let backtrace = err.downcast_ref::<wasmtime::WasmBacktrace>().map(|b| b.to_string());
    let with_bt = |mut f: SandboxFailure| {
        f.backtrace = backtrace.clone();
        f
    };
    if let Some(asked) = state.limiter.refused {
        return with_bt(failure(
            FailureKind::OutOfMemory,
            format!(
                "the activity needed more than its memory limit of {} (it asked for {})",
                bytesize::ByteSize(limits.memory),
                bytesize::ByteSize(asked)
            ),
        ));
    }
    if captured.overflowed() {
        return with_bt(failure(
            FailureKind::OutputLimit,
            format!(
                "the activity wrote more than {} to stdout or stderr; the output was truncated",
                bytesize::ByteSize(limits.max_output as u64)
            ),
        ));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => with_bt(failure(
            FailureKind::StackOverflow,
            "the activity overflowed its stack (runaway recursion?)".into(),
        )),
        Some(Trap::OutOfFuel) => with_bt(failure(
            FailureKind::FuelExhausted,
            format!("the activity used up its fuel ({} units)", limits.fuel.unwrap_or(0)),
        )),
        Some(trap) => {
            let mut message = format!("the activity trapped: {trap}");
            if *trap == Trap::MemoryOutOfBounds {
                message
                    .push_str(" (deep recursion that overflows a shadow stack in linear memory looks like this too)");
            }
            if let Some(panic) = panic_message(&captured.stderr()) {
                message.push_str(&format!(" after a panic: {panic}"));
            }
            with_bt(failure(FailureKind::Trap, message))
        }
        None => with_bt(failure(FailureKind::Host, format!("the host could not run the activity: {err:#}"))),
    }
}

fn interrupted(reason: InterruptReason, limits: &Limits) -> SandboxFailure {
    let (kind, message) = match reason {
        InterruptReason::Timeout => (
            FailureKind::Timeout,
            format!(
                "the activity ran past its {} deadline and was interrupted",
                limits.timeout.map(|t| humantime::format_duration(t).to_string()).unwrap_or_default()
            ),
        ),
        InterruptReason::HeartbeatTimeout => {
            (FailureKind::HeartbeatTimeout, "no heartbeat within the heartbeat timeout; interrupted".into())
        }
        InterruptReason::Cancelled => {
            (FailureKind::Cancelled, "the activity did not stop after cancellation was requested; interrupted".into())
        }
        InterruptReason::Terminated => (FailureKind::Terminated, "the execution was terminated".into()),
        InterruptReason::Shutdown => (FailureKind::Shutdown, "the host is shutting down".into()),
    };
    failure(kind, message)
}

/// The message of a Rust guest's panic, from its stderr.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let at = text.rfind("panicked at ")?;
    let rest = &text[at..];
    // "panicked at src/lib.rs:1:2:\nmessage\nnote: ..."
    let message = rest.lines().nth(1)?.trim();
    Some(message.to_string())
}

pub(super) fn failure(kind: FailureKind, message: String) -> SandboxFailure {
    SandboxFailure { kind, message, backtrace: None }
}

pub(super) fn failure_of(kind: FailureKind, e: impl std::fmt::Display) -> SandboxFailure {
    failure(kind, e.to_string())
}
