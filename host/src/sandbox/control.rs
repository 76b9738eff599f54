//! The handle through which the host steers a running attempt: it asks for
//! cancellation or tells it is paused (the guest learns either on its next heartbeat) or interrupts
//! the guest outright (deadline, ignored cancellation, termination).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::sync::Notify;

/// Why the host interrupted an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InterruptReason {
    /// The attempt's start-to-close deadline passed.
    Timeout = 1,
    /// No heartbeat arrived within the heartbeat timeout.
    HeartbeatTimeout = 2,
    /// Cancellation was requested and the guest did not stop in time.
    Cancelled = 3,
    /// The execution was terminated.
    Terminated = 4,
    /// The host is shutting down.
    Shutdown = 5,
}

impl InterruptReason {
    fn from_u8(v: u8) -> Option<Self> {
        use InterruptReason::*;
        [Timeout, HeartbeatTimeout, Cancelled, Terminated, Shutdown].into_iter().find(|r| *r as u8 == v)
    }
}

/// Shared between the host and the attempt's store.
#[derive(Debug, Default)]
pub struct AttemptControl {
    cancel_requested: AtomicBool,
    paused: AtomicBool,
    interrupt: AtomicU8,
    notify: Notify,
}

impl AttemptControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the guest to stop; it sees the request on its next heartbeat.
    pub fn request_cancel(&self) {
        self.cancel_requested.store(true, Ordering::SeqCst);
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::SeqCst)
    }

    /// Tells the guest, on its next heartbeat, that its execution is paused
    /// (or no longer is).
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Stops the guest at its next epoch check, or at once if it is waiting
    /// in the host. The first reason given wins.
    pub fn interrupt(&self, reason: InterruptReason) {
        if self.interrupt.compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.notify.notify_waiters();
        }
    }

    pub fn interrupted(&self) -> Option<InterruptReason> {
        InterruptReason::from_u8(self.interrupt.load(Ordering::SeqCst))
    }

    /// Resolves once `interrupt` has been called.
    pub async fn wait_interrupted(&self) -> InterruptReason {
        loop {
            let notified = self.notify.notified();
            if let Some(reason) = self.interrupted() {
                return reason;
            }
            notified.await;
        }
    }
}
