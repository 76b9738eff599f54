//! Paths of the example guest components, compiled for wasm32-wasip2 by this
//! crate's build script, for the host's tests and benchmarks.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));
