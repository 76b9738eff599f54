//! Eager starts: a start whose queue this host serves, idle and with a free
//! slot, is inserted with its first attempt already started and runs at
//! once. The store then writes one row instead of three operations (insert,
//! claim, and the dispatcher's look at an empty queue), and the start's
//! commit is the attempt's claim. A busy queue (attempts waiting, or a rate
//! limit) is left to its dispatcher, which keeps its order.

use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;

use super::Engine;
use crate::activity::{Execution, Millis, Transition};

/// The queue slot, and the type slot if the type has its own cap.
pub(super) type Slots = (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>);

impl Engine {
    /// Starts `exec`'s first attempt on this host's worker when its queue is
    /// idle with a free slot: the slots held and the `started` transition
    /// (applied to `exec`), or `None` to leave it to the dispatcher.
    pub(super) fn start_eagerly(&self, exec: &mut Execution, now: Millis) -> Option<(Slots, Transition)> {
        if self.is_shutting_down() {
            return None;
        }
        let queue = self.registry.queue(&exec.task_queue)?;
        if queue.rate_limit.is_some() || !queue.idle.load(Ordering::Acquire) {
            return None;
        }
        if !queue.types.read().expect("queue types lock").contains(&exec.activity_type) {
            return None;
        }
        let ty = self.registry.get(&exec.activity_type)?;
        let type_slot = match &ty.slots {
            Some(s) => Some(s.clone().try_acquire_owned().ok()?),
            None => None,
        };
        let slot = queue.slots.clone().try_acquire_owned().ok()?;
        let current = self.registry.current_version(&exec.activity_type);
        let change = exec.start(&self.worker_id, current.as_deref(), now).ok()?;
        Some(((slot, type_slot), Transition::new(change, exec, now)))
    }
}
