//! The data of an attempt's wasmtime store, and the WASI views over it.

use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::host_api::ActivityHost;
use super::http::HttpHooks;
use super::limits::MemoryLimiter;

/// The data of an attempt's store.
pub(crate) struct StoreState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) http: WasiHttpCtx,
    pub(super) http_hooks: HttpHooks,
    /// Socket and HTTP refusals of the current attempt.
    pub(super) denials: Arc<Mutex<Vec<String>>>,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) host: ActivityHost,
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
