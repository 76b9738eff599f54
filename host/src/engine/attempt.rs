//! Running one claimed attempt in the sandbox: heartbeats persisted
//! (throttled, latest details never lost), progress and logs recorded, the
//! outcome committed through the state machine.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::{Engine, EventKind, Running};
use crate::activity::{Change, Execution, Failure, FailureSource, Progress, Reject, TimeoutType};
use crate::payload::Payload;
use crate::sandbox::{
    ActivityInfo, AttemptControl, AttemptEvent, AttemptOutcome, AttemptReport, AttemptRequest, FailureKind,
};
use crate::store::{LogEntry, Versioned};
use crate::token::TaskToken;

/// Longest gap between persisted heartbeats of a busy guest.
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

pub(super) async fn run(
    engine: Arc<Engine>,
    claimed: Versioned<Execution>,
    _slots: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
) {
    let exec = claimed.value.clone();
    let Some(ty) = engine.types.get(&exec.activity_type) else { return };
    let now = engine.clock.now();
    let attempt = exec.attempt;
    let control = Arc::new(AttemptControl::new());
    if exec.cancel_requested_at.is_some() {
        control.request_cancel();
    }
    engine.running.lock().unwrap().insert(exec.run_id.clone(), Running { attempt, control: control.clone() });

    // The sandbox deadline: the earlier of start-to-close and schedule-to-close.
    let deadline = [exec.start_to_close_deadline(), exec.schedule_to_close_deadline()].into_iter().flatten().min();
    let timeout = deadline.map(|d| Duration::from_millis(d.saturating_sub(now).max(1)));
    let token =
        engine.signer.sign(&TaskToken { activity_id: exec.activity_id.clone(), run_id: exec.run_id.clone(), attempt });
    let (tx, mut events) = mpsc::unbounded_channel();
    let req = AttemptRequest {
        info: info(&engine, &exec, deadline),
        input: exec.input.clone(),
        last_heartbeat: exec.heartbeat_details.clone(),
        task_token: token,
        limits: ty.config.limits(engine.max_payload, timeout),
        grants: ty.grants.clone(),
        control: control.clone(),
        events: Some(tx),
        warm: ty.warm.clone(),
    };
    let component = ty.component.clone();
    let span = tracing::info_span!("attempt", activity_id = %exec.activity_id, run_id = %exec.run_id, attempt);
    let mut run = tokio::spawn(tracing::Instrument::instrument(async move { component.run(req).await }, span));

    let interval =
        exec.timeouts.heartbeat.map_or(MAX_HEARTBEAT_INTERVAL, |h| h.mul_f64(0.8).min(MAX_HEARTBEAT_INTERVAL));
    // The first heartbeat is persisted at once, later ones at most every `interval`.
    let long_ago = tokio::time::Instant::now().checked_sub(interval).unwrap_or_else(tokio::time::Instant::now);
    let mut beat = Beats { pending: None, progress: None, last_flush: long_ago, interval };
    let mut logs = Vec::new();
    let mut version = Some(claimed);
    let report = loop {
        let flush_at = beat.pending.as_ref().map(|_| beat.last_flush + beat.interval);
        tokio::select! {
            r = &mut run => break r,
            Some(event) = events.recv() => {
                beat.record(&engine, &exec, event, &mut logs);
                if beat.pending.is_some() && beat.last_flush.elapsed() >= beat.interval {
                    beat.flush(&engine, &exec, &control, &mut version).await;
                }
            }
            () = crate::util::sleep_until(flush_at) => beat.flush(&engine, &exec, &control, &mut version).await,
        }
    };
    while let Ok(event) = events.try_recv() {
        beat.record(&engine, &exec, event, &mut logs);
    }
    engine.running.lock().unwrap().remove(&exec.run_id);
    match report {
        Ok(report) => finish(&engine, &exec, report, beat.progress.take(), logs, version).await,
        Err(e) => tracing::error!(activity_id = %exec.activity_id, "attempt task failed: {e}"),
    }
    engine.queue_notify(&exec.task_queue).notify_waiters();
}

fn info(engine: &Engine, e: &Execution, deadline: Option<u64>) -> ActivityInfo {
    ActivityInfo {
        activity_id: e.activity_id.clone(),
        run_id: e.run_id.clone(),
        activity_type: e.activity_type.clone(),
        task_queue: e.task_queue.clone(),
        attempt: e.attempt,
        scheduled_time_ms: e.scheduled_at,
        current_attempt_scheduled_time_ms: e.attempt_scheduled_at,
        started_time_ms: e.started_at.unwrap_or_default(),
        schedule_to_close_deadline_ms: e.schedule_to_close_deadline(),
        start_to_close_deadline_ms: deadline,
        heartbeat_timeout_ms: e.timeouts.heartbeat.map(|d| d.as_millis() as u64),
        host_task_queue: super::host_queue(&engine.host_id),
    }
}

/// Heartbeats and progress of the attempt, persisted at most every
/// `interval` but always with the latest details (a trailing flush).
struct Beats {
    /// Latest heartbeat not yet persisted: (details, when).
    pending: Option<(Option<Payload>, u64)>,
    progress: Option<Progress>,
    last_flush: tokio::time::Instant,
    interval: Duration,
}

impl Beats {
    fn record(&mut self, engine: &Engine, e: &Execution, event: AttemptEvent, logs: &mut Vec<LogEntry>) {
        let now = engine.clock.now();
        match event {
            AttemptEvent::Heartbeat { details } => {
                engine.publish(e, e.attempt, now, EventKind::Heartbeat { details: details.clone() });
                self.pending = Some((details, now));
            }
            AttemptEvent::Progress { percent, message } => {
                engine.publish(e, e.attempt, now, EventKind::Progress { percent, message: message.clone() });
                self.progress = Some(Progress { percent, message, at: now });
            }
            AttemptEvent::Log { level, message, fields } => {
                logs.push(LogEntry { at: now, attempt: e.attempt, level: level.to_string(), message, fields });
            }
        }
    }

    async fn flush(
        &mut self,
        engine: &Arc<Engine>,
        e: &Execution,
        control: &AttemptControl,
        known: &mut Option<Versioned<Execution>>,
    ) {
        let Some((details, at)) = self.pending.take() else { return };
        self.last_flush = tokio::time::Instant::now();
        let progress = self.progress.clone();
        let result = engine
            .mutate(&e.activity_id, Some(&e.run_id), known.take(), |x, _| {
                let change = x.heartbeat(e.attempt, details.clone(), at)?;
                if progress.is_some() {
                    x.progress = progress.clone();
                }
                Ok(change)
            })
            .await;
        match result {
            Ok((_, Change::Heartbeat { cancel_requested: true })) => control.request_cancel(),
            Ok(_) => {}
            // The attempt no longer counts (timed out, closed): stop it.
            Err(err) => {
                tracing::debug!(activity_id = %e.activity_id, "heartbeat refused, interrupting: {err}");
                control.interrupt(crate::sandbox::InterruptReason::Timeout);
            }
        }
    }
}

/// Commits the attempt's outcome and stores its logs.
async fn finish(
    engine: &Arc<Engine>,
    e: &Execution,
    report: AttemptReport,
    progress: Option<Progress>,
    mut logs: Vec<LogEntry>,
    known: Option<Versioned<Execution>>,
) {
    let now = engine.clock.now();
    for (level, out) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        let text = String::from_utf8_lossy(&out.bytes);
        logs.extend(text.lines().map(|l| LogEntry {
            at: now,
            attempt: e.attempt,
            level: level.into(),
            message: l.into(),
            fields: vec![],
        }));
    }
    logs.extend(report.denials.iter().map(|d| LogEntry {
        at: now,
        attempt: e.attempt,
        level: "warn".into(),
        message: d.clone(),
        fields: vec![],
    }));
    let attempt = e.attempt;
    let outcome = report.outcome;
    let details = report.last_heartbeat;
    // Interrupts the engine caused were recorded when they were decided.
    let engine_caused = matches!(
        &outcome,
        AttemptOutcome::SandboxFailure(f) if matches!(f.kind, FailureKind::HeartbeatTimeout | FailureKind::Cancelled | FailureKind::Terminated | FailureKind::Shutdown)
    );
    if !engine_caused {
        let result = engine
            .mutate(&e.activity_id, Some(&e.run_id), known, |x, now| {
                if x.attempt == attempt && !x.status.is_closed() {
                    x.heartbeat_details = details.clone();
                    if progress.is_some() {
                        x.progress = progress.clone();
                    }
                }
                apply(x, attempt, &outcome, now)
            })
            .await;
        if let Err(err) = result {
            tracing::debug!(activity_id = %e.activity_id, "attempt outcome not recorded: {err}");
        }
    }
    if let Err(err) = engine.store.append_logs(&e.run_id, logs).await {
        tracing::error!(activity_id = %e.activity_id, "cannot store logs: {err}");
    }
}

fn apply(x: &mut Execution, attempt: u32, outcome: &AttemptOutcome, now: u64) -> Result<Change, Reject> {
    match outcome {
        AttemptOutcome::Completed { result } => x.complete(attempt, result.clone(), now),
        AttemptOutcome::Pending => x.set_pending(attempt),
        AttemptOutcome::Cancelled { details } => x.report_cancelled(attempt, details.clone(), now),
        AttemptOutcome::Failed(a) => x.fail(
            attempt,
            Failure {
                source: FailureSource::Application,
                error_type: a.error_type.clone(),
                message: a.message.clone(),
                non_retryable: a.non_retryable,
                details: a.details.clone(),
                next_retry_delay: a.next_retry_delay,
            },
            now,
        ),
        AttemptOutcome::SandboxFailure(f) if f.kind == FailureKind::Timeout => {
            // The sandbox deadline and the durable timer mark the same moment.
            let t = if x.schedule_to_close_deadline().is_some_and(|d| now >= d) {
                TimeoutType::ScheduleToClose
            } else {
                TimeoutType::StartToClose
            };
            x.fail(attempt, Failure::timeout(t), now)
        }
        AttemptOutcome::SandboxFailure(f) => {
            let kind = f.kind.to_string();
            x.fail(
                attempt,
                Failure::new(FailureSource::Sandbox(kind.clone()), &sandbox_error_type(&kind), f.message.clone()),
                now,
            )
        }
    }
}

/// `out-of-memory` → `OutOfMemory`: the error type of a sandbox failure,
/// usable in `non_retryable_error_types`.
fn sandbox_error_type(kind: &str) -> String {
    kind.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect()
}
