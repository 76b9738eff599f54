//! Sluice: a WebAssembly-hosted activity runner. See README.md and
//! ARCHITECTURE.md for the map of modules.

/// Like `eprintln!`, but a closed stderr (say, piped into `head`) is not a crash.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod activity;
pub mod allocator;
pub mod api;
pub mod build;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod payload;
pub mod sandbox;
pub mod store;
pub mod temporal;
pub mod token;
pub mod traces;
pub mod util;
