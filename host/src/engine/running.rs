//! The attempts running in this host's workers, by run id, with the
//! handles that steer them (cancel request, pause, interrupt).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::activity::{Execution, FailureSource, Status, TimeoutType};
use crate::sandbox::{AttemptControl, InterruptReason};

#[derive(Default)]
pub(super) struct RunningAttempts {
    by_run: Mutex<HashMap<String, (u32, Arc<AttemptControl>)>>,
}

impl RunningAttempts {
    pub fn insert(&self, run_id: &str, attempt: u32, control: Arc<AttemptControl>) {
        self.by_run.lock().unwrap().insert(run_id.to_string(), (attempt, control));
    }

    pub fn remove(&self, run_id: &str) {
        self.by_run.lock().unwrap().remove(run_id);
    }

    /// The attempt of `run_id` running here, if any.
    pub fn attempt(&self, run_id: &str) -> Option<u32> {
        self.by_run.lock().unwrap().get(run_id).map(|(a, _)| *a)
    }

    pub fn is_empty(&self) -> bool {
        self.by_run.lock().unwrap().is_empty()
    }

    /// Tells the running attempt of `run_id`, if any, that cancellation was requested.
    pub fn request_cancel(&self, run_id: &str) {
        if let Some((_, control)) = self.by_run.lock().unwrap().get(run_id) {
            control.request_cancel();
        }
    }

    /// Tells the running attempt of `run_id`, if any, whether its execution is paused.
    pub fn set_paused(&self, run_id: &str, paused: bool) {
        if let Some((_, control)) = self.by_run.lock().unwrap().get(run_id) {
            control.set_paused(paused);
        }
    }

    /// Stops `attempt` of `e` if it runs here: it no longer counts. The
    /// reason follows from how the execution moved on.
    pub fn interrupt(&self, e: &Execution, attempt: u32) {
        let running = self.by_run.lock().unwrap();
        let Some((a, control)) = running.get(&e.run_id) else { return };
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

    /// Interrupts every running attempt (the host is stopping).
    pub fn interrupt_all(&self, reason: InterruptReason) {
        for (_, control) in self.by_run.lock().unwrap().values() {
            control.interrupt(reason);
        }
    }
}
