//! Taking work from a queue: claim what is dispatchable, or wait until
//! something may be. Shared by the dispatchers of this host's workers and
//! the long-polls of external workers.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Engine;
use crate::store::{Committed, StoreError};

/// Longest wait before looking at the queue again, whatever the wake-ups say.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// What a worker wants from a queue.
pub(super) struct Want<'a> {
    pub queue: &'a str,
    /// Only these types (`None`: any).
    pub types: Option<Vec<String>>,
    pub worker: &'a str,
    pub limit: usize,
    /// The queue's idle flag, for a dispatcher: set while it waits with
    /// nothing to claim.
    pub idle: Option<&'a AtomicBool>,
}

impl Engine {
    /// Claims up to `want.limit` attempts, each started and acted on, and
    /// returns them with `guard`. When there are none, drops `guard`, waits
    /// until the earliest waiting attempt becomes dispatchable, the queue is
    /// woken or `stop` resolves, and returns `None`.
    pub(super) async fn claim_or_wait<G>(
        &self,
        want: &Want<'_>,
        guard: G,
        stop: impl Future<Output = ()>,
    ) -> Result<Option<(Vec<Committed>, G)>, StoreError> {
        let wake = self.wake.queue(want.queue);
        let notified = wake.notified();
        tokio::pin!(notified);
        // Woken from here on: a start committed during the claim is not missed.
        notified.as_mut().enable();
        let nothing_eligible = want.types.as_ref().is_some_and(Vec::is_empty);
        let set_idle = |idle: bool| {
            if let Some(flag) = want.idle {
                flag.store(idle, Ordering::Release);
            }
        };
        set_idle(false);
        if !nothing_eligible {
            let now = self.clock.now();
            let claimed = self
                .store
                .claim(want.queue, want.types.clone(), want.worker, self.current_versions(), want.limit, now)
                .await?;
            if !claimed.is_empty() {
                for c in &claimed {
                    self.act(&c.value, &c.transition, now);
                }
                return Ok(Some((claimed, guard)));
            }
        }
        drop(guard);
        set_idle(true);
        let next =
            if nothing_eligible { None } else { self.store.next_dispatch(want.queue, want.types.clone()).await? };
        let idle = MAX_IDLE.min(self.store.poll_interval());
        let idle_until = self.clock.now().saturating_add(idle.as_millis() as u64);
        let until = next.map_or(idle_until, |t| t.min(idle_until));
        tokio::select! {
            () = self.clock.sleep_until(until) => {}
            () = &mut notified => {}
            () = stop => {}
        }
        Ok(None)
    }
}
