//! Changing executions: read, apply a pure transition, commit it with an
//! optimistic version check, then act on it (interrupt, wake, publish).
//! Every path that changes an execution ends in [`Engine::act`] after its
//! commit: the store's own operations (start, claim) as well as `mutate`.

use std::sync::Arc;

use super::{Engine, EngineError, EngineEvent, EventKind};
use crate::activity::{Change, Execution, Millis, Reject, Status, Transition};
use crate::store::{LogEntry, StoreError, Versioned};

/// Attempts of an optimistic update before giving up.
const MAX_RETRIES: usize = 32;

/// The execution after a `mutate`, and the change committed (`None`: there
/// was nothing to do, and nothing was written).
pub(super) struct Mutated {
    pub exec: Execution,
    pub change: Option<Change>,
}

impl Engine {
    /// Applies `f` to the execution and commits what it did, retrying on
    /// concurrent changes. `f` returns the change, or `None` when there is
    /// nothing to do. `known` skips the first read when the caller holds a
    /// fresh copy.
    pub(super) async fn mutate<F>(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        known: Option<Versioned<Execution>>,
        f: F,
    ) -> Result<Mutated, EngineError>
    where
        F: Fn(&mut Execution, Millis) -> Result<Option<Change>, Reject>,
    {
        self.mutate_with_logs(activity_id, run_id, known, &[], f).await
    }

    /// `mutate`, with log records committed together with the change (and
    /// not at all when there is nothing to do).
    pub(super) async fn mutate_with_logs<F>(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        mut known: Option<Versioned<Execution>>,
        logs: &[LogEntry],
        f: F,
    ) -> Result<Mutated, EngineError>
    where
        F: Fn(&mut Execution, Millis) -> Result<Option<Change>, Reject>,
    {
        for _ in 0..MAX_RETRIES {
            let Versioned { value: mut exec, version } = match known.take() {
                Some(v) => v,
                None => self.get(activity_id, run_id).await?,
            };
            let now = self.clock.now();
            let change = match f(&mut exec, now)? {
                None | Some(Change::AlreadyDone) => return Ok(Mutated { exec, change: None }),
                Some(change) => change,
            };
            let transition = Transition::new(change, &exec, now);
            match self.store.update(&exec, version, transition.history.as_ref(), logs).await {
                Ok(_) => {
                    self.act(&exec, &transition, now);
                    return Ok(Mutated { exec, change: Some(transition.change) });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(EngineError::Internal(format!("activity {activity_id} kept changing; try again")))
    }

    /// What follows a committed transition.
    pub(super) fn act(&self, e: &Execution, t: &Transition, now: Millis) {
        use std::sync::atomic::Ordering::Relaxed;
        match t.change {
            Change::PendingAsync => self.stats.pending_async.fetch_add(1, Relaxed),
            Change::Closed(Status::Completed) => self.stats.completed.fetch_add(1, Relaxed),
            _ => 0,
        };
        crate::metrics::metrics().transition(e, &t.change, now);
        if let Some(h) = &t.history {
            tracing::debug!(activity_id = %e.activity_id, run_id = %e.run_id, attempt = h.attempt, status = %e.status, "{}", h.kind);
            self.publish(e, h.attempt, now, EventKind::Transition { transition: h.kind, status: e.status });
        }
        match t.change {
            Change::Unpaused => {
                self.running.set_paused(&e.run_id, false);
                self.wake.wake_queue(&e.task_queue);
            }
            // An eager start runs already: nothing to dispatch.
            Change::Scheduled if e.status == Status::Started => {}
            Change::Scheduled | Change::Reset { pending: false } | Change::OptionsUpdated => {
                self.wake.wake_queue(&e.task_queue)
            }
            Change::CancelRequested => self.running.request_cancel(&e.run_id),
            Change::Paused => self.running.set_paused(&e.run_id, true),
            Change::RetryScheduled { failed_attempt, .. } => {
                self.running.interrupt(e, failed_attempt);
                self.wake.wake_queue(&e.task_queue);
            }
            Change::Closed(_) => {
                self.running.interrupt(e, e.attempt);
                self.closes.closed(e);
                if let Some(t) = &self.tracer {
                    t.execution(e);
                }
            }
            _ => {}
        }
        if let Some(deadline) = e.next_deadline() {
            self.wake.deadline(deadline);
        }
    }

    pub(super) fn publish(&self, e: &Execution, attempt: u32, at: Millis, kind: EventKind) {
        if self.events.receiver_count() == 0 {
            return; // nobody is watching
        }
        let _ = self.events.send(EngineEvent {
            activity_id: e.activity_id.clone(),
            run_id: e.run_id.clone(),
            attempt,
            at,
            kind,
        });
    }
}

pub(super) fn not_found(activity_id: &str, run_id: Option<&str>) -> String {
    match run_id {
        Some(r) => format!("no activity {activity_id} with run {r}"),
        None => format!("no activity {activity_id}"),
    }
}
