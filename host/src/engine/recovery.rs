//! Recovery at start: attempts this host was running when it died failed
//! (`HostLost`) and are retried per policy with their heartbeat details;
//! pending-async ones keep waiting for their external completion.

use std::sync::Arc;

use super::Engine;

impl Engine {
    pub(super) async fn recover(self: &Arc<Self>) -> anyhow::Result<()> {
        let orphans = self.store.started_by(&self.worker_id).await?;
        let count = orphans.len();
        for orphan in orphans {
            let (activity_id, run_id) = (orphan.value.activity_id.clone(), orphan.value.run_id.clone());
            let result = self.mutate(&activity_id, Some(&run_id), Some(orphan), |e, now| Ok(e.host_lost(now))).await;
            if let Err(e) = result {
                tracing::warn!(%activity_id, "recovery could not record the lost attempt: {e}");
            }
        }
        if count > 0 {
            tracing::info!("recovered {count} attempts left running by a previous run of this host");
        }
        Ok(())
    }
}
