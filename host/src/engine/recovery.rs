//! Recovery of a host's lost attempts — this host's at start, or those of a
//! host whose lease ended: attempts its workers had started failed
//! (`HostLost`) and are retried per policy with their heartbeat details;
//! pending-async ones keep waiting for their external completion.

use std::sync::Arc;

use super::Engine;
use crate::store::StoreError;

/// The worker id of a host's own (WASM) workers.
pub(super) fn worker_of(host_id: &str) -> String {
    format!("{host_id}/wasm")
}

impl Engine {
    pub(super) async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        let count = self.recover_host(&self.host_id.clone()).await?;
        if count > 0 {
            tracing::info!("recovered {count} attempts left running by a previous run of this host");
        }
        Ok(())
    }

    /// Records the attempts `host`'s workers had started as lost; returns
    /// how many there were (another host may record some first).
    pub(super) async fn recover_host(self: &Arc<Self>, host: &str) -> Result<usize, StoreError> {
        let orphans = self.store.started_by(&worker_of(host)).await?;
        let count = orphans.len();
        for orphan in orphans {
            let (activity_id, run_id) = (orphan.value.activity_id.clone(), orphan.value.run_id.clone());
            let result = self.mutate(&activity_id, Some(&run_id), Some(orphan), |e, now| Ok(e.host_lost(now))).await;
            if let Err(e) = result {
                tracing::warn!(%activity_id, "could not record the lost attempt: {e}");
            }
        }
        Ok(count)
    }
}
