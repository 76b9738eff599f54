//! One dispatcher per task queue this host serves: it claims waiting
//! attempts from the store only when worker slots are free (the rest wait
//! in the persistent backlog) and hands each to the attempt runner.

use std::sync::Arc;
use std::time::Duration;

use super::claim::Want;
use super::{Engine, Queue, attempt};

/// Most attempts claimed in one store operation.
const BATCH: usize = 256;
/// Under load, wait (briefly) for this many free slots before claiming.
const MIN_BATCH: usize = 16;
/// How long to wait for them.
const BATCH_WINDOW: Duration = Duration::from_millis(1);

pub(super) async fn run(engine: Arc<Engine>, queue: Arc<Queue>) {
    // The queue's rate is global: every host draws from its bucket in the store.
    let bucket = queue.rate_limit.filter(|r| *r > 0.0).map(crate::store::Bucket::for_rate);
    let paused = queue.rate_limit == Some(0.0);
    let mut shutdown = engine.shutdown.subscribe();
    // True while the backlog is deeper than the free slots.
    let mut backlogged = false;
    loop {
        if engine.is_shutting_down() {
            return;
        }
        if paused {
            let _ = shutdown.changed().await;
            continue;
        }
        // Hold one slot before claiming, so nothing is started without one.
        let first = tokio::select! {
            p = queue.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = shutdown.changed() => continue,
        };
        if backlogged && queue.slots.available_permits() + 1 < MIN_BATCH.min(queue.slots_total) {
            // Under load, one claim for many freed slots: fewer, larger
            // store operations; a freed slot idles at most BATCH_WINDOW.
            tokio::time::sleep(BATCH_WINDOW).await;
        }
        let mut limit = (1 + queue.slots.available_permits()).min(BATCH);
        let types = eligible_types(&engine, &queue, &mut limit);
        if let Some(bucket) = bucket {
            match engine.store.take_tokens(&queue.name, bucket, limit as u32, engine.clock.now()).await {
                Ok(t) if t.granted > 0 => limit = t.granted as usize,
                Ok(t) => {
                    let until = t.next_at.unwrap_or_else(|| engine.clock.now() + 1);
                    tokio::select! {
                        () = engine.clock.sleep_until(until) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(queue = %queue.name, "rate limit: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let want =
            Want { queue: &queue.name, types: Some(types), worker: &engine.worker_id, limit, idle: Some(&queue.idle) };
        let stop = async {
            let _ = shutdown.changed().await;
        };
        let (claimed, first) = match engine.claim_or_wait(&want, first, stop).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                backlogged = false;
                continue;
            }
            Err(e) => {
                tracing::error!(queue = %queue.name, "claim failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        backlogged = claimed.len() == limit;
        let mut slot = Some(first);
        for c in claimed {
            let permit = match slot.take() {
                Some(p) => p,
                None => queue.slots.clone().try_acquire_owned().expect("slots counted before the claim"),
            };
            // A type's cap changed since the claim counted it: a slot of
            // the new cap is taken when free, else the attempt runs beside it.
            let type_permit = engine
                .registry
                .get(&c.value.activity_type)
                .and_then(|t| t.slots.clone())
                .and_then(|s| s.try_acquire_owned().ok());
            // Boxed: the task then holds a pointer, not a state machine of
            // kilobytes that tokio would copy when it spawns and finishes it.
            tokio::spawn(Box::pin(attempt::run(engine.clone(), c, (permit, type_permit))));
        }
    }
}

/// The types to claim now: those without a per-type cap, and capped ones
/// with a free slot (the batch shrinks to the smallest free count).
fn eligible_types(engine: &Engine, queue: &Queue, limit: &mut usize) -> Vec<String> {
    let served = queue.types.read().expect("queue types lock").clone();
    let mut types = Vec::with_capacity(served.len());
    for name in &served {
        let state = engine.registry.get(name);
        match state.as_ref().and_then(|t| t.slots.as_ref()) {
            None => types.push(name.clone()),
            Some(s) if s.available_permits() > 0 => {
                *limit = (*limit).min(s.available_permits());
                types.push(name.clone());
            }
            Some(_) => {}
        }
    }
    types
}
