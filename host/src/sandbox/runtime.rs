//! The runtime of one trust class: a wasmtime `Engine` (its configuration,
//! the pooling allocator with a fallback to on-demand allocation, and the
//! epoch ticker that drives wall-clock deadlines and cooperative yields)
//! with the linker that provides the host imports.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::state::StoreState;

/// How often the epoch advances: the granularity of deadlines and of the
/// guest's cooperative yields to the async runtime.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots for up to this many concurrent instances, reused
    /// with copy-on-write heap images (fast); falls back to on-demand if the
    /// reservation fails.
    Pooling { instances: u32 },
    /// mmap per instance (slower, no reservation).
    OnDemand,
}

/// An engine, its linker, and its epoch ticker, which stops when this is
/// dropped.
pub(super) struct Runtime {
    pub engine: Engine,
    pub linker: Linker<StoreState>,
    /// The allocation strategy actually in use (after any fallback).
    pub allocation: Allocation,
    /// Whether this engine meters fuel.
    pub metered: bool,
    stop: Arc<AtomicBool>,
}

impl Runtime {
    pub fn new(allocation: Allocation, metered: bool) -> anyhow::Result<Self> {
        let (engine, allocation) = match allocation {
            Allocation::Pooling { instances } => match Engine::new(&config(metered, Some(pooling(instances)))) {
                Ok(engine) => (engine, allocation),
                Err(err) => {
                    tracing::warn!("cannot reserve the instance pool ({err:#}); using on-demand allocation");
                    (Engine::new(&config(metered, None))?, Allocation::OnDemand)
                }
            },
            Allocation::OnDemand => (Engine::new(&config(metered, None))?, Allocation::OnDemand),
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // Always linked, so a component importing wasi:http loads; what it
        // may reach is the activity type's allow-list.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::ActivityComponent::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s: &mut StoreState| &mut s.host,
        )?;
        // Components built against sluice:activity@0.1.0 import its context.
        bindings::v1::ActivityComponent::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s: &mut StoreState| &mut s.host,
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), stop.clone());
        Ok(Runtime { engine, linker, allocation, metered, stop })
    }

    /// A hash that changes whenever compiled code from another engine would
    /// not load into this one (wasmtime version, target, settings).
    pub fn compatibility_hash(&self) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn config(metered: bool, pool: Option<PoolingAllocationConfig>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(metered);
    if let Some(pool) = pool {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

fn pooling(instances: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    // Interpreted guests (Python, JS) are made of a dozen core instances,
    // several memories and tables each.
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(16))
        .total_memories(instances.saturating_mul(4))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_memories_per_component(16)
        .max_tables_per_component(32)
        .max_core_instances_per_component(64)
        // Reset the first MiBs of a slot in place (only the dirtied pages,
        // where the kernel can say which) instead of unmapping them: a fresh
        // instance then neither faults its pages in again nor makes every
        // core flush its TLB.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 * 1024)
        .async_stack_keep_resident(64 * 1024)
        .pagemap_scan(wasmtime::Enabled::Auto)
        // Unmap what is left in batches: one TLB shootdown per batch.
        .decommit_batch_size(32);
    pool
}

fn spawn_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("cannot spawn the epoch ticker thread");
}
