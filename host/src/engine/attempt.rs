//! Running one claimed attempt through the attempt runner: heartbeats
//! persisted (throttled, latest details never lost), progress and logs
//! recorded, the outcome committed through the state machine.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::logbook::LogBook;
use super::{AttemptCall, Engine, EventKind};
use crate::activity::{AttemptEnd, Change, Execution, Failure, FailureSource, Millis, Outcome, Progress};
use crate::payload::Payload;
use crate::sandbox::{ActivityInfo, AttemptControl, AttemptEvent, AttemptOutcome, AttemptReport, FailureKind};
use crate::store::{Committed, Versioned};

/// Longest gap between persisted heartbeats of a busy guest.
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

pub(super) async fn run(
    engine: Arc<Engine>,
    claimed: Committed,
    slots: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
) {
    let Committed { value: exec, version, .. } = claimed;
    let now = engine.clock.now();
    let attempt = exec.attempt;
    let control = Arc::new(AttemptControl::new());
    if exec.cancel_requested_at.is_some() {
        control.request_cancel();
    }
    control.set_paused(exec.paused);
    engine.running.insert(&exec.run_id, attempt, control.clone());

    // The attempt's deadline: the earlier of start-to-close and schedule-to-close.
    let deadline = [exec.start_to_close_deadline(), exec.schedule_to_close_deadline()].into_iter().flatten().min();
    let (tx, mut events) = mpsc::unbounded_channel();
    let call = AttemptCall {
        info: info(&engine, &exec, deadline),
        input: exec.input.clone(),
        last_heartbeat: exec.heartbeat_details.clone(),
        task_token: engine.attempt_token(&exec),
        version: exec.version.clone(),
        timeout: deadline.map(|d| Duration::from_millis(d.saturating_sub(now).max(1))),
        control: control.clone(),
        events: tx,
    };
    // The runner runs the attempt where it runs guests (for WASM, on the
    // guest threads); this task follows its events meanwhile.
    let span = tracing::info_span!("attempt", activity_id = %exec.activity_id, run_id = %exec.run_id, attempt);
    let mut run = std::pin::pin!(tracing::Instrument::instrument(span.in_scope(|| engine.runner.run(call)), span));

    let interval =
        exec.timeouts.heartbeat.map_or(MAX_HEARTBEAT_INTERVAL, |h| h.mul_f64(0.8).min(MAX_HEARTBEAT_INTERVAL));
    // The first heartbeat is persisted at once, later ones at most every `interval`.
    let mut beat = Beats { pending: None, progress: None, last_flush: None, interval: interval.as_millis() as u64 };
    let mut logs = LogBook::new(attempt);
    // The stored row's version while `exec` is still that row (until a
    // heartbeat is written): the outcome then needs no read first.
    let mut known = Some(version);
    let report = loop {
        let flush = async {
            match beat.flush_at() {
                Some(at) => engine.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut run => break r,
            Some(event) = events.recv() => {
                beat.record(&engine, &exec, event, &mut logs);
                if beat.flush_at().is_some_and(|at| engine.clock.now() >= at) {
                    Box::pin(beat.flush(&engine, &exec, &control, &mut known)).await;
                }
            }
            () = flush => Box::pin(beat.flush(&engine, &exec, &control, &mut known)).await,
        }
    };
    while let Ok(event) = events.try_recv() {
        beat.record(&engine, &exec, event, &mut logs);
    }
    engine.running.remove(&exec.run_id);
    // A slot is a place to run a guest: it is free once the guest is done,
    // while the outcome is written (a store round trip, and an fsync).
    let type_capped = engine.registry.get(&exec.activity_type).is_some_and(|t| t.slots.is_some());
    drop(slots);
    if type_capped {
        // The dispatcher may have passed the type over for want of a slot
        // of its own (a queue slot wakes it by itself).
        engine.wake.wake_queue(&exec.task_queue);
    }
    Box::pin(finish(&engine, exec, report, beat.progress.take(), logs, known)).await;
}

fn info(engine: &Engine, e: &Execution, deadline: Option<u64>) -> ActivityInfo {
    ActivityInfo {
        activity_id: e.activity_id.clone(),
        run_id: e.run_id.clone(),
        activity_type: e.activity_type.clone(),
        task_queue: e.task_queue.clone(),
        // As the retry policy counts it: from 1 again after a reset.
        attempt: e.policy_attempt(),
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
/// `interval` ms but always with the latest details (a trailing flush).
struct Beats {
    /// Latest heartbeat not yet persisted: (details, when).
    pending: Option<(Option<Payload>, Millis)>,
    progress: Option<Progress>,
    last_flush: Option<Millis>,
    interval: u64,
}

impl Beats {
    /// When the pending heartbeat is due to be persisted.
    fn flush_at(&self) -> Option<Millis> {
        self.pending.as_ref()?;
        Some(self.last_flush.map_or(0, |t| t.saturating_add(self.interval)))
    }

    fn record(&mut self, engine: &Engine, e: &Execution, event: AttemptEvent, logs: &mut LogBook) {
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
                // Watchers see each record as kept (bounded like the log itself).
                if let Some(kept) = logs.push(now, &level.to_string(), message, fields) {
                    let kind = EventKind::Log {
                        level: kept.level.clone(),
                        message: kept.message.clone(),
                        fields: kept.fields.clone(),
                    };
                    engine.publish(e, e.attempt, now, kind);
                }
            }
        }
    }

    async fn flush(&mut self, engine: &Arc<Engine>, e: &Execution, control: &AttemptControl, known: &mut Option<u64>) {
        let Some((details, at)) = self.pending.take() else { return };
        let known = known.take().map(|version| Versioned { value: e.clone(), version });
        self.last_flush = Some(engine.clock.now());
        let progress = self.progress.clone();
        let result = engine
            .mutate(&e.activity_id, Some(&e.run_id), known, |x, _| {
                let change = x.heartbeat(e.attempt, details.clone(), at)?;
                if let Some(p) = &progress {
                    x.record_progress(e.attempt, p.clone())?;
                }
                Ok(Some(change))
            })
            .await;
        match result {
            Ok(m) if matches!(m.change, Some(Change::Heartbeat { cancel_requested: true })) => control.request_cancel(),
            Ok(_) => {}
            // The attempt no longer counts (timed out, closed): stop it.
            Err(err) => {
                tracing::debug!(activity_id = %e.activity_id, "heartbeat refused, interrupting: {err}");
                control.interrupt(crate::sandbox::InterruptReason::Timeout);
            }
        }
    }
}

/// Commits the attempt's outcome together with its logs; `e` is the
/// claimed row, still as stored at version `known` if that is given.
async fn finish(
    engine: &Arc<Engine>,
    e: Execution,
    report: AttemptReport,
    progress: Option<Progress>,
    mut logs: LogBook,
    known: Option<u64>,
) {
    let now = engine.clock.now();
    logs.push_lines(now, "stdout", &report.stdout.bytes);
    logs.push_lines(now, "stderr", &report.stderr.bytes);
    for denial in report.denials {
        logs.push(now, "warn", denial, Vec::new());
    }
    let logs = logs.finish(now);
    crate::metrics::metrics().attempt_ran(&e.activity_type, report.duration);
    if let Some(t) = &engine.tracer {
        let error = match &report.outcome {
            AttemptOutcome::Completed { .. } | AttemptOutcome::Pending => None,
            AttemptOutcome::Cancelled { .. } => Some("cancelled".to_string()),
            AttemptOutcome::Failed(a) => Some(format!("{}: {}", a.error_type, a.message)),
            AttemptOutcome::SandboxFailure(f) => Some(format!("{}: {}", f.kind, f.message)),
        };
        t.attempt(&e, e.started_at.unwrap_or(now), now, error);
    }
    let (activity_id, run_id, attempt) = (e.activity_id.clone(), e.run_id.clone(), e.attempt);
    let known = known.map(|version| Versioned { value: e, version });
    let mut logged = false;
    // Interrupts the engine caused were recorded when they were decided.
    if let Some(outcome) = outcome(report.outcome) {
        let end = AttemptEnd { outcome, heartbeat_details: report.last_heartbeat, progress };
        let result = engine
            .mutate_with_logs(&activity_id, Some(&run_id), known, &logs, |x, now| {
                x.end_attempt(attempt, end.clone(), now).map(Some)
            })
            .await;
        match result {
            Ok(m) => logged = m.change.is_some(),
            Err(err) => tracing::debug!(activity_id = %activity_id, "attempt outcome not recorded: {err}"),
        }
    }
    if !logged && let Err(err) = engine.store.append_logs(&run_id, logs).await {
        tracing::error!(activity_id = %activity_id, "cannot store logs: {err}");
    }
}

/// The state machine's view of how the attempt ended; `None` when the
/// engine itself stopped it (heartbeat timeout, cancel grace, terminate,
/// shutdown), which was recorded when it was decided.
fn outcome(o: AttemptOutcome) -> Option<Outcome> {
    Some(match o {
        AttemptOutcome::Completed { result } => Outcome::Completed(result),
        AttemptOutcome::Pending => Outcome::Pending,
        AttemptOutcome::Cancelled { details } => Outcome::Cancelled(details),
        AttemptOutcome::Failed(a) => Outcome::Failed(Failure::application(
            &a.error_type,
            &a.message,
            a.non_retryable,
            a.details,
            a.next_retry_delay,
        )),
        AttemptOutcome::SandboxFailure(f) => match f.kind {
            FailureKind::HeartbeatTimeout
            | FailureKind::Cancelled
            | FailureKind::Terminated
            | FailureKind::Shutdown => {
                return None;
            }
            FailureKind::Timeout => Outcome::DeadlinePassed,
            kind => {
                let kind = kind.to_string();
                Outcome::Failed(Failure::new(
                    FailureSource::Sandbox(kind.clone()),
                    &sandbox_error_type(&kind),
                    f.message,
                ))
            }
        },
    })
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
