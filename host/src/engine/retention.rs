//! Retention: closed executions, with their history and logs, are deleted
//! once they are older than the configured retention, a small batch per
//! store operation so dispatch and timers are never held up behind it.

use std::sync::Arc;
use std::time::Duration;

use super::Engine;

/// Runs deleted per store operation.
const BATCH: usize = 256;
/// How often to look when nothing is due (more often for a retention
/// shorter than four times this).
const INTERVAL: Duration = Duration::from_secs(60);

pub(super) async fn run(engine: Arc<Engine>, retention: Duration) {
    let interval = INTERVAL.min(retention / 4).max(Duration::from_millis(100));
    let mut shutdown = engine.shutdown.subscribe();
    loop {
        if engine.is_shutting_down() {
            return;
        }
        let cutoff = engine.clock.now().saturating_sub(retention.as_millis() as u64);
        let deleted = match engine.store.delete_closed_before(cutoff, BATCH).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("retention: {e}");
                0
            }
        };
        if deleted > 0 {
            tracing::debug!(deleted, "retention: deleted closed executions");
        }
        if deleted == BATCH {
            // More are due: go on, after letting other work through.
            tokio::task::yield_now().await;
            continue;
        }
        let until = engine.clock.now().saturating_add(interval.as_millis() as u64);
        tokio::select! {
            () = engine.clock.sleep_until(until) => {}
            _ = shutdown.changed() => {}
        }
    }
}
