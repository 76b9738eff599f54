//! Sluice: a WebAssembly-hosted activity runner. See README.md and
//! ARCHITECTURE.md for the map of modules.

pub mod activity;
pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod payload;
pub mod sandbox;
pub mod store;
pub mod token;
pub mod util;
