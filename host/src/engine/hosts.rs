//! Hosts sharing a store: each holds a lease it renews; a host whose lease
//! ends is gone, and any surviving host takes over what it left — the
//! attempts its workers started are lost (`HostLost`, retried per policy
//! with their heartbeat details, as recovery does after a restart), and the
//! backlog of its own queue (`@host`), which no other host serves, is
//! reported. The same loop picks up type changes other hosts committed.

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, host_queue};

impl Engine {
    /// Registers this host (a lease of `lease`), before it takes any work.
    pub(super) async fn register(&self) -> anyhow::Result<()> {
        let until = self.clock.now().saturating_add(self.lease.as_millis() as u64);
        Ok(self.store.renew_lease(&self.host_id, until).await?)
    }

    /// Leaves at shutdown, once its attempts were interrupted: they are
    /// recorded as lost now (so other hosts retry them at once, and this
    /// host, started again, has nothing to recover), then the lease ends.
    pub(super) async fn leave(self: &Arc<Self>) {
        if let Err(e) = self.recover_host(&self.host_id.clone()).await {
            tracing::warn!(
                "cannot record this host's interrupted attempts: {e}; they are retried when it starts again"
            );
            return;
        }
        if let Err(e) = self.store.forget_host(&self.host_id, None).await {
            tracing::warn!("cannot end this host's lease: {e}");
        }
    }

    /// Takes over the attempts of every host whose lease has ended.
    pub(super) async fn take_over_expired(self: &Arc<Self>) -> Result<usize, crate::store::StoreError> {
        let now = self.clock.now();
        let mut lost = 0;
        for host in self.store.expired_hosts(now).await? {
            if host == self.host_id {
                continue;
            }
            lost += self.recover_host(&host).await?;
            let backlog = self.store.queue_stats(&host_queue(&host), false).await?.backlog;
            if backlog > 0 {
                tracing::warn!(
                    %host,
                    "host {host} is gone: {backlog} execution(s) wait on its own queue {}; no other host serves it \
                     (start it again, or move them with `sluice update-options --queue`)",
                    host_queue(&host)
                );
            }
            self.store.forget_host(&host, Some(now)).await?;
        }
        Ok(lost)
    }

    /// Applies type changes other hosts committed (a store only this host
    /// uses has none: nothing to read).
    async fn refresh_types(self: &Arc<Self>) -> Result<(), crate::store::StoreError> {
        if !self.store.shared() {
            return Ok(());
        }
        // Read under the lock: a record read before a change made here
        // would undo it.
        let _serial = self.type_changes.lock().await;
        for record in self.store.types().await? {
            if self.registry.get(&record.name).is_some_and(|t| t.record == record) {
                continue;
            }
            let name = record.name.clone();
            let installed = match self.fetch_components(&record).await {
                Ok(()) => self.install_blocking(record).await,
                Err(e) => Err(e),
            };
            if let Err(e) = installed {
                tracing::error!("activity type {name} changed on another host and cannot load here: {e}");
            }
        }
        Ok(())
    }
}

/// Renews this host's lease (three times per lease), takes over hosts whose
/// lease ended and picks up type changes, until shutdown.
pub(super) async fn run(engine: Arc<Engine>) {
    let mut shutdown = engine.shutdown.subscribe();
    let every = (engine.lease / 3).max(Duration::from_millis(100));
    loop {
        if let Err(e) = engine.register().await {
            tracing::error!("cannot renew this host's lease: {e}");
        }
        match engine.take_over_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("took over {n} attempt(s) of hosts that are gone"),
            Err(e) => tracing::error!("cannot take over hosts that are gone: {e}"),
        }
        if let Err(e) = engine.refresh_types().await {
            tracing::error!("cannot read activity types: {e}");
        }
        let next = engine.clock.now().saturating_add(every.as_millis() as u64);
        tokio::select! {
            () = engine.clock.sleep_until(next) => {}
            _ = shutdown.changed() => return,
        }
    }
}
