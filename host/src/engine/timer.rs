//! The durable timer: executions carry their next deadline in the store;
//! this loop sleeps until the earliest one, applies every due deadline and
//! goes back to sleep. Nothing is cancelled when an execution moves on: a
//! stale deadline finds nothing due (`Execution::on_timer` returns `None`).

use std::sync::Arc;
use std::time::Duration;

use super::Engine;

/// Deadlines handled per store read.
const BATCH: usize = 512;
/// Re-read the store at least this often, whatever the wakeups say.
const MAX_SLEEP: Duration = Duration::from_secs(30);

pub(super) async fn run(engine: Arc<Engine>) {
    let mut shutdown = engine.shutdown.subscribe();
    loop {
        if engine.is_shutting_down() {
            return;
        }
        let full = match fire_due(&engine).await {
            Ok(n) => n == BATCH,
            Err(e) => {
                tracing::error!("timer: {e}");
                false
            }
        };
        if full {
            continue;
        }
        let next = engine.store.next_deadline().await.ok().flatten();
        engine.wake.timer_sleeps_until(next);
        // Other hosts of a shared store set deadlines without waking this one.
        let poll = MAX_SLEEP.min(engine.store.poll_interval());
        let latest = engine.clock.now().saturating_add(poll.as_millis() as u64);
        tokio::select! {
            () = engine.clock.sleep_until(next.map_or(latest, |t| t.min(latest))) => {}
            () = engine.wake.timer_woken() => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn fire_due(engine: &Arc<Engine>) -> Result<usize, crate::store::StoreError> {
    let due = engine.store.due(engine.clock.now(), BATCH).await?;
    let n = due.len();
    for v in due {
        let (activity_id, run_id) = (v.value.activity_id.clone(), v.value.run_id.clone());
        let result = engine.mutate(&activity_id, Some(&run_id), Some(v), |e, now| Ok(e.on_timer(now))).await;
        if let Err(e) = result {
            tracing::warn!(%activity_id, "timer could not apply a deadline: {e}");
        }
    }
    Ok(n)
}
