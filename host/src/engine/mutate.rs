//! Changing executions: read, apply a pure transition, commit with an
//! optimistic version check, then act on the change (interrupt, wake,
//! publish). The public API methods live here too.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Description, Engine, EngineError, EngineEvent, EventKind, Running, StartRequest, StartResponse, Target};
use crate::activity::{Change, Execution, Failure, FailureSource, Millis, NewExecution, Reject, Status, TimeoutType};
use crate::payload::Payload;
use crate::sandbox::InterruptReason;
use crate::store::{HistoryEntry, NewStart, StartOutcome, StoreError, Versioned};
use crate::token::TaskToken;

/// Bound on ids, names and request ids.
pub const MAX_NAME: usize = 256;
/// Attempts of an optimistic update before giving up.
const MAX_RETRIES: usize = 32;

pub(super) fn check_name(what: &str, value: &str) -> Result<(), EngineError> {
    if value.is_empty() {
        return Err(EngineError::Invalid(format!("{what} must not be empty")));
    }
    if value.len() > MAX_NAME {
        return Err(EngineError::Invalid(format!("{what} is {} bytes, over the limit of {MAX_NAME}", value.len())));
    }
    Ok(())
}

/// The history entry recording `change`, if it is a transition.
pub(super) fn history_for(change: &Change, e: &Execution, now: Millis) -> Option<HistoryEntry> {
    let (kind, attempt, detail) = match change {
        Change::Started { attempt } => ("started".to_string(), *attempt, json!({ "worker": e.worker })),
        Change::PendingAsync => ("pending-async".into(), e.attempt, json!({})),
        Change::RetryScheduled { failed_attempt, at } => {
            ("retry-scheduled".into(), *failed_attempt, json!({ "failure": e.last_failure, "next_attempt_at": at }))
        }
        Change::CancelRequested => ("cancel-requested".into(), e.attempt, json!({})),
        Change::Closed(status) => {
            let detail = match status {
                Status::Completed => json!({ "result_bytes": e.result.as_ref().map_or(0, |r| r.data.len()) }),
                _ => json!({ "failure": e.last_failure, "timeout": e.timeout_type }),
            };
            (status.as_str().to_string(), e.attempt, detail)
        }
        Change::Heartbeat { .. } | Change::AlreadyDone => return None,
    };
    Some(HistoryEntry { at: now, attempt, kind, detail })
}

impl Engine {
    /// Applies `f` to the execution and commits it, retrying on concurrent
    /// changes. `known` skips the first read when the caller holds a
    /// fresh copy. Acts on the change after the commit.
    pub(super) async fn mutate<F>(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        mut known: Option<Versioned<Execution>>,
        f: F,
    ) -> Result<(Execution, Change), EngineError>
    where
        F: Fn(&mut Execution, Millis) -> Result<Change, Reject>,
    {
        for _ in 0..MAX_RETRIES {
            let Versioned { value, version } = match known.take() {
                Some(v) => v,
                None => self
                    .store
                    .get(activity_id, run_id)
                    .await?
                    .ok_or_else(|| EngineError::NotFound(not_found(activity_id, run_id)))?,
            };
            let now = self.clock.now();
            let mut e = value.clone();
            let change = f(&mut e, now)?;
            if e == value {
                return Ok((e, change));
            }
            let history: Vec<HistoryEntry> = history_for(&change, &e, now).into_iter().collect();
            match self.store.update(e.clone(), version, history.clone()).await {
                Ok(_) => {
                    self.act(&e, &change, history.first(), now);
                    return Ok((e, change));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(EngineError::Internal(format!("activity {activity_id} kept changing; try again")))
    }

    /// What follows a committed change.
    pub(super) fn act(&self, e: &Execution, change: &Change, history: Option<&HistoryEntry>, now: Millis) {
        use std::sync::atomic::Ordering::Relaxed;
        match change {
            Change::PendingAsync => self.stats.pending_async.fetch_add(1, Relaxed),
            Change::Closed(Status::Completed) => self.stats.completed.fetch_add(1, Relaxed),
            _ => 0,
        };
        if let Some(h) = history {
            tracing::debug!(activity_id = %e.activity_id, run_id = %e.run_id, attempt = h.attempt, status = %e.status, "{}", h.kind);
            self.publish(e, h.attempt, now, EventKind::Transition { transition: h.kind.clone(), status: e.status });
        }
        match change {
            Change::CancelRequested => {
                if let Some(r) = self.running.lock().unwrap().get(&e.run_id) {
                    r.control.request_cancel();
                }
            }
            Change::RetryScheduled { failed_attempt, .. } => {
                self.interrupt_local(&e.run_id, *failed_attempt, e);
                self.queue_notify(&e.task_queue).notify_waiters();
            }
            Change::Closed(_) => self.interrupt_local(&e.run_id, e.attempt, e),
            _ => {}
        }
        if let Some(deadline) = e.next_deadline() {
            self.wake_timer_for(deadline);
        }
    }

    /// Stops the local sandbox run of `attempt`, which no longer counts.
    fn interrupt_local(&self, run_id: &str, attempt: u32, e: &Execution) {
        let running = self.running.lock().unwrap();
        let Some(Running { attempt: a, control }) = running.get(run_id) else { return };
        if *a != attempt {
            return;
        }
        let reason = match (e.status, e.last_failure.as_ref().map(|f| &f.source)) {
            (Status::Cancelled, _) => InterruptReason::Cancelled,
            (Status::Terminated, _) => InterruptReason::Terminated,
            (_, Some(FailureSource::Timeout(TimeoutType::Heartbeat))) => InterruptReason::HeartbeatTimeout,
            _ => InterruptReason::Timeout,
        };
        control.interrupt(reason);
    }

    pub(super) fn wake_timer_for(&self, deadline: Millis) {
        use std::sync::atomic::Ordering;
        if deadline < self.timer_next.load(Ordering::Acquire) {
            self.timer_next.fetch_min(deadline, Ordering::AcqRel);
            self.timer_wake.notify_one();
        }
    }

    pub(super) fn publish(&self, e: &Execution, attempt: u32, at: Millis, kind: EventKind) {
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(EngineEvent {
            activity_id: e.activity_id.clone(),
            run_id: e.run_id.clone(),
            attempt,
            at,
            kind,
        });
    }

    /// Schedules an execution (or returns the existing one, per policies).
    pub async fn start_activity(self: &Arc<Self>, req: StartRequest) -> Result<StartResponse, EngineError> {
        self.start_activities(vec![req]).await.pop().expect("one response per request")
    }

    /// Schedules many executions in one store operation (one commit), in
    /// order; each gets its own answer.
    pub async fn start_activities(
        self: &Arc<Self>,
        reqs: Vec<StartRequest>,
    ) -> Vec<Result<StartResponse, EngineError>> {
        let now = self.clock.now();
        let prepared: Vec<Result<NewStart, EngineError>> = reqs.iter().map(|r| self.prepare_start(r, now)).collect();
        let valid: Vec<NewStart> = prepared.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let mut outcomes = match self.store.start_many(valid).await {
            Ok(o) => o.into_iter(),
            Err(e) => {
                let e = EngineError::from(e);
                return prepared.into_iter().map(|p| p.and(Err(EngineError::Internal(e.to_string())))).collect();
            }
        };
        let mut woken = std::collections::HashSet::new();
        prepared
            .into_iter()
            .map(|p| {
                let start = p?;
                let activity_id = start.exec.activity_id.clone();
                match outcomes.next().expect("one outcome per valid start") {
                    StartOutcome::Created(v) => {
                        let e = &v.value;
                        self.publish(
                            e,
                            1,
                            now,
                            EventKind::Transition { transition: start.history.kind, status: e.status },
                        );
                        if let Some(d) = e.next_deadline() {
                            self.wake_timer_for(d);
                        }
                        if woken.insert(e.task_queue.clone()) {
                            self.queue_notify(&e.task_queue).notify_waiters();
                        }
                        Ok(StartResponse { activity_id, run_id: v.value.run_id, created: true })
                    }
                    StartOutcome::Existing(v) => {
                        Ok(StartResponse { activity_id, run_id: v.value.run_id, created: false })
                    }
                    StartOutcome::Rejected(reason) => Err(EngineError::AlreadyExists(reason)),
                }
            })
            .collect()
    }

    /// Validates a start request and builds its execution.
    fn prepare_start(&self, req: &StartRequest, now: Millis) -> Result<NewStart, EngineError> {
        check_name("activity_type", &req.activity_type)?;
        let activity_id = req.activity_id.clone().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        check_name("activity_id", &activity_id)?;
        let defaults = self.type_defaults(&req.activity_type);
        let task_queue = req
            .task_queue
            .clone()
            .or_else(|| defaults.and_then(|d| d.queues.first().cloned()))
            .unwrap_or_else(|| "default".to_string());
        check_name("task_queue", &task_queue)?;
        if let Some(r) = &req.request_id {
            check_name("request_id", r)?;
        }
        let input = req.input.clone().unwrap_or_else(|| Payload::json(&serde_json::Value::Null));
        input.check_size("input", self.max_payload).map_err(|e| EngineError::TooLarge(e.to_string()))?;
        let priority = match req.priority {
            None | Some(0) => 3,
            Some(p @ 1..=5) => p,
            Some(p) => return Err(EngineError::Invalid(format!("priority must be 1 (first) to 5, got {p}"))),
        };
        let timeouts = match defaults {
            Some(d) => req.timeouts.or(&d.timeouts()),
            None => req.timeouts.clone(),
        };
        let retry = req.retry.clone().unwrap_or_else(|| self.retry_defaults(&req.activity_type));
        let cancel_grace = req.cancel_grace.or(defaults.map(|d| d.cancel_grace)).unwrap_or(Duration::from_secs(5));
        let exec = Execution::new(
            NewExecution {
                activity_id,
                run_id: uuid::Uuid::now_v7().to_string(),
                activity_type: req.activity_type.clone(),
                task_queue: task_queue.clone(),
                input,
                priority,
                request_id: req.request_id.clone(),
                timeouts,
                retry,
                cancel_grace,
            },
            now,
        )?;
        let history =
            HistoryEntry { at: now, attempt: 1, kind: "scheduled".into(), detail: json!({ "task_queue": task_queue }) };
        Ok(NewStart { exec, history, conflict: req.conflict, reuse: req.reuse })
    }

    /// The execution with its history and logs.
    pub async fn describe(&self, activity_id: &str, run_id: Option<&str>) -> Result<Description, EngineError> {
        let v = self
            .store
            .get(activity_id, run_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(not_found(activity_id, run_id)))?;
        let history = self.store.history(&v.value.run_id).await?;
        let logs = self.store.logs(&v.value.run_id).await?;
        Ok(Description { execution: v.value, history, logs })
    }

    /// The execution once closed, waiting up to `wait` for it to close.
    /// Returns it as it is (maybe still open) when the wait ends.
    pub async fn wait_closed(
        &self,
        activity_id: &str,
        run_id: Option<&str>,
        wait: Duration,
    ) -> Result<Execution, EngineError> {
        let mut events = self.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let e = self
                .store
                .get(activity_id, run_id)
                .await?
                .ok_or_else(|| EngineError::NotFound(not_found(activity_id, run_id)))?
                .value;
            if e.status.is_closed() {
                return Ok(e);
            }
            // Wait for a transition of this run (or a lagged stream), then re-read.
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Err(_) => return Ok(e),
                    Ok(Ok(ev)) if ev.run_id == e.run_id && matches!(ev.kind, EventKind::Transition { .. }) => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(_)) => break,
                }
            }
        }
    }

    /// Resolves a completion target to (activity id, run id, attempt).
    async fn resolve(&self, target: &Target) -> Result<(String, Option<String>, Option<u32>), EngineError> {
        match target {
            Target::Token(t) => {
                let TaskToken { activity_id, run_id, attempt } = self.signer.verify(t)?;
                Ok((activity_id, Some(run_id), Some(attempt)))
            }
            Target::Id { activity_id, run_id } => {
                check_name("activity_id", activity_id)?;
                Ok((activity_id.clone(), run_id.clone(), None))
            }
        }
    }

    async fn on_attempt<F>(self: &Arc<Self>, target: &Target, f: F) -> Result<(Execution, Change), EngineError>
    where
        F: Fn(&mut Execution, u32, Millis) -> Result<Change, Reject>,
    {
        let (activity_id, run_id, attempt) = self.resolve(target).await?;
        self.mutate(&activity_id, run_id.as_deref(), None, |e, now| f(e, attempt.unwrap_or(e.attempt), now)).await
    }

    fn check_payload(&self, what: &str, p: Option<&Payload>) -> Result<(), EngineError> {
        if let Some(p) = p {
            p.check_size(what, self.max_payload).map_err(|e| EngineError::TooLarge(e.to_string()))?;
        }
        Ok(())
    }

    /// Completes the attempt. Repeating with the same result is a no-op.
    pub async fn complete(self: &Arc<Self>, target: &Target, result: Payload) -> Result<(), EngineError> {
        self.check_payload("result", Some(&result))?;
        self.on_attempt(target, |e, a, now| e.complete(a, result.clone(), now)).await.map(|_| ())
    }

    /// Fails the attempt with an application error; the retry policy decides.
    pub async fn fail(self: &Arc<Self>, target: &Target, failure: Failure) -> Result<Status, EngineError> {
        self.check_payload("failure details", failure.details.as_ref())?;
        self.on_attempt(target, |e, a, now| e.fail(a, failure.clone(), now)).await.map(|(e, _)| e.status)
    }

    /// The attempt acknowledges cancellation.
    pub async fn report_cancelled(
        self: &Arc<Self>,
        target: &Target,
        details: Option<Payload>,
    ) -> Result<(), EngineError> {
        self.check_payload("cancellation details", details.as_ref())?;
        self.on_attempt(target, |e, a, now| e.report_cancelled(a, details.clone(), now)).await.map(|_| ())
    }

    /// Records a heartbeat; answers whether cancellation was requested.
    pub async fn heartbeat(self: &Arc<Self>, target: &Target, details: Option<Payload>) -> Result<bool, EngineError> {
        self.check_payload("heartbeat details", details.as_ref())?;
        let (e, change) = self.on_attempt(target, |e, a, now| e.heartbeat(a, details.clone(), now)).await?;
        self.publish(&e, e.attempt, self.clock.now(), EventKind::Heartbeat { details: e.heartbeat_details.clone() });
        Ok(matches!(change, Change::Heartbeat { cancel_requested: true }))
    }

    /// Requests cancellation (immediate for a scheduled execution).
    pub async fn request_cancel(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
    ) -> Result<Status, EngineError> {
        check_name("activity_id", activity_id)?;
        self.mutate(activity_id, run_id, None, |e, now| e.request_cancel(now)).await.map(|(e, _)| e.status)
    }

    /// Ends the execution without asking its attempt.
    pub async fn terminate(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        reason: &str,
    ) -> Result<(), EngineError> {
        check_name("activity_id", activity_id)?;
        let reason = if reason.is_empty() { "terminated" } else { reason };
        self.mutate(activity_id, run_id, None, |e, now| e.terminate(reason, now)).await.map(|_| ())
    }
}

fn not_found(activity_id: &str, run_id: Option<&str>) -> String {
    match run_id {
        Some(r) => format!("no activity {activity_id} with run {r}"),
        None => format!("no activity {activity_id}"),
    }
}
