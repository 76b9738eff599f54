//! Per-attempt resource limits and the memory limiter that enforces them.

use std::time::Duration;

use serde::Serialize;
use wasmtime::ResourceLimiter;

use crate::payload::DEFAULT_MAX_PAYLOAD;

/// What one attempt may use. Defaults suit most activities; every field can
/// be set per activity type.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Cap on the guest's linear memory, in bytes.
    pub memory: u64,
    /// Wall-clock deadline of the attempt; the guest is interrupted when it
    /// passes, even inside a tight loop.
    pub timeout: Option<Duration>,
    /// Optional instruction budget (wasmtime fuel); `None` = unmetered.
    pub fuel: Option<u64>,
    /// Cap on each of stdout, stderr and the structured log, in bytes.
    pub max_output: usize,
    /// Cap on the result payload and on heartbeat details, in bytes.
    pub max_payload: usize,
}

/// Default memory cap: enough for interpreted guests (Python, JS).
pub const DEFAULT_MEMORY: u64 = 512 * 1024 * 1024;
/// Default cap on each captured output stream.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MEMORY,
            timeout: Some(Duration::from_secs(60)),
            fuel: None,
            max_output: DEFAULT_MAX_OUTPUT,
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }
}

/// Refuses memory growth past the cap and remembers that it did, so a trap
/// that follows (e.g. Rust's abort on allocation failure) is reported as
/// out-of-memory rather than as a generic trap.
pub(crate) struct MemoryLimiter {
    cap: u64,
    /// The largest size the guest asked for beyond the cap, if any.
    pub refused: Option<u64>,
}

impl MemoryLimiter {
    pub fn new(cap: u64) -> Self {
        MemoryLimiter { cap, refused: None }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.cap {
            self.refused = Some(self.refused.unwrap_or(0).max(desired as u64));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real guest.
        Ok(desired <= 1_000_000)
    }
}
