//! Warm instances: an activity type may opt in (`reuse_instances`) to run
//! attempts in instances kept from earlier successful attempts, skipping the
//! instantiation of large guests (Python, JS). Module state then survives
//! between attempts — as in a long-lived worker process — so it is off by
//! default. An instance is reused only after the guest returned normally
//! (no trap, interrupt, refused growth or output overflow), at most
//! `MAX_USES` times, and only while its captured output has room for a full
//! attempt more.

use std::sync::Mutex;

use wasmtime::Store;

use super::guest::Guest;
use super::state::StoreState;
use super::wasi::Captured;

/// Attempts one instance may serve before it is replaced by a fresh one.
pub const MAX_USES: u32 = 10_000;

/// Idle warm instances of one activity type.
pub struct WarmPool {
    idle: Mutex<Vec<Warm>>,
    max_idle: usize,
}

/// An instance between attempts, with its store and captured output.
pub(crate) struct Warm {
    pub store: Store<StoreState>,
    pub instance: Guest,
    pub captured: Captured,
    pub uses: u32,
}

impl WarmPool {
    /// Keeps at most `max_idle` idle instances (more are dropped).
    pub fn new(max_idle: usize) -> Self {
        WarmPool { idle: Mutex::new(Vec::new()), max_idle }
    }

    /// Idle instances right now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap().len()
    }

    /// The most recently used idle instance (its pages are likeliest hot).
    pub(crate) fn take(&self) -> Option<Warm> {
        self.idle.lock().unwrap().pop()
    }

    pub(crate) fn put(&self, warm: Warm) {
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < self.max_idle {
            idle.push(warm);
        }
    }
}
