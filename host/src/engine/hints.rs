//! Acting on what other hosts of a shared store committed (the store's
//! hints): their new work wakes this host's dispatchers and pollers, their
//! deadlines its timer loop; their transitions reach this host's watchers
//! and close waiters; and a cancel, pause, retry or close of an attempt
//! running *here* reaches that attempt. A lost hint only delays: every loop
//! also polls the store (`Store::poll_interval`).

use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::{Engine, EventKind};
use crate::activity::HistoryKind;
use crate::store::Hint;

pub(super) async fn run(engine: Arc<Engine>, mut hints: broadcast::Receiver<Hint>) {
    let mut shutdown = engine.shutdown.subscribe();
    loop {
        let hint = tokio::select! {
            h = hints.recv() => h,
            _ = shutdown.changed() => return,
        };
        match hint {
            Ok(h) => engine.hinted(h).await,
            Err(RecvError::Lagged(n)) => {
                tracing::debug!("{n} hints from other hosts were dropped; polling catches up");
                for q in engine.registry.queue_names() {
                    engine.wake.wake_queue(&q);
                }
                engine.wake.deadline(0);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl Engine {
    async fn hinted(&self, h: Hint) {
        if h.dispatchable {
            self.wake.wake_queue(&h.task_queue);
        }
        if let Some(d) = h.deadline {
            self.wake.deadline(d);
        }
        let Some(kind) = h.kind else {
            self.heartbeat_elsewhere(&h).await;
            return;
        };
        let _ = self.events.send(super::EngineEvent {
            activity_id: h.activity_id.clone(),
            run_id: h.run_id.clone(),
            attempt: h.attempt,
            at: h.at,
            kind: EventKind::Transition { transition: kind, status: h.status },
        });
        let closed = matches!(kind, HistoryKind::Closed(_));
        let running_here = self.running.attempt(&h.run_id);
        if running_here.is_none() && !(closed && self.closes.waited_for(&h.activity_id)) {
            return;
        }
        let e = match self.store.get(&h.activity_id, Some(&h.run_id)).await {
            Ok(Some(v)) => v.value,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(activity_id = %h.activity_id, "cannot read a change from another host: {e}");
                return;
            }
        };
        if let Some(attempt) = running_here {
            if e.cancel_requested_at.is_some() {
                self.running.request_cancel(&e.run_id);
            }
            self.running.set_paused(&e.run_id, e.paused);
            if e.status.is_closed() || e.attempt != attempt {
                self.running.interrupt(&e, attempt);
            }
        }
        if e.status.is_closed() {
            self.closes.closed(&e);
        }
    }

    /// A heartbeat another host wrote: its details and progress, for
    /// whoever follows events here.
    async fn heartbeat_elsewhere(&self, h: &Hint) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let Ok(Some(v)) = self.store.get(&h.activity_id, Some(&h.run_id)).await else { return };
        let e = v.value;
        self.publish(&e, h.attempt, h.at, EventKind::Heartbeat { details: e.heartbeat_details.clone() });
        if let Some(p) = &e.progress {
            self.publish(&e, h.attempt, p.at, EventKind::Progress { percent: p.percent, message: p.message.clone() });
        }
    }
}
