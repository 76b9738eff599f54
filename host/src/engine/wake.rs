//! Wake-ups between the engine's parts: a transition that makes work
//! dispatchable wakes its queue's dispatcher and pollers; one that sets an
//! earlier deadline wakes the timer loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::activity::Millis;

pub(super) struct Wakeups {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
    timer: Notify,
    /// The deadline the timer loop sleeps until.
    timer_next: AtomicU64,
}

impl Default for Wakeups {
    fn default() -> Self {
        Wakeups { queues: Mutex::default(), timer: Notify::new(), timer_next: AtomicU64::new(u64::MAX) }
    }
}

impl Wakeups {
    /// What whoever waits for work on `queue` waits on.
    pub fn queue(&self, queue: &str) -> Arc<Notify> {
        self.queues.lock().unwrap().entry(queue.to_string()).or_default().clone()
    }

    pub fn wake_queue(&self, queue: &str) {
        self.queue(queue).notify_waiters();
    }

    /// Wakes the timer loop if `deadline` is earlier than what it sleeps until.
    pub fn deadline(&self, deadline: Millis) {
        if deadline < self.timer_next.load(Ordering::Acquire) {
            self.timer_next.fetch_min(deadline, Ordering::AcqRel);
            self.timer.notify_one();
        }
    }

    /// The timer loop: it now sleeps until `next` (or an earlier deadline).
    pub fn timer_sleeps_until(&self, next: Option<Millis>) {
        self.timer_next.store(next.unwrap_or(u64::MAX), Ordering::Release);
    }

    pub async fn timer_woken(&self) {
        self.timer.notified().await
    }
}
