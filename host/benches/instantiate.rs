//! Fresh instance + call of the no-op Rust guest, with the pooling allocator
//! and with on-demand allocation, in one run (compare the two, not absolute
//! numbers: the machines are noisy).
//!
//!     cargo bench -p sluice --bench instantiate

use std::time::Instant;

use serde_json::json;
use sluice::sandbox::{Allocation, AttemptOutcome, Sandbox, SandboxConfig};
use sluice_test_programs::NOOP;

mod common;
use common::request;

const WARMUP: usize = 2_000;
const RUNS: usize = 20_000;

struct Stats {
    median: f64,
    p99: f64,
    mean: f64,
}

fn measure(rt: &tokio::runtime::Runtime, allocation: Allocation) -> (Allocation, Stats) {
    let sandbox =
        Sandbox::new(SandboxConfig { allocation, cache_dir: None, ..SandboxConfig::default() }).expect("sandbox");
    let component = sandbox.load(NOOP.as_ref(), false).expect("load noop");
    let mut samples = Vec::with_capacity(RUNS);
    rt.block_on(async {
        for i in 0..WARMUP + RUNS {
            let req = request(json!(null));
            let start = Instant::now();
            let report = component.run(req).await;
            let took = start.elapsed();
            assert!(matches!(report.outcome, AttemptOutcome::Completed { .. }), "{:?}", report.outcome);
            if i >= WARMUP {
                samples.push(took.as_secs_f64() * 1e6);
            }
        }
    });
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let stats = Stats {
        median: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
        mean: samples.iter().sum::<f64>() / samples.len() as f64,
    };
    (sandbox.allocation(), stats)
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we ignore.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    println!("fresh instance + call of the no-op Rust guest ({RUNS} runs each, after {WARMUP} warm-up runs)");
    let (pool_alloc, pooling) = measure(&rt, Allocation::Pooling { instances: 100 });
    let (_, on_demand) = measure(&rt, Allocation::OnDemand);
    let name = if pool_alloc == Allocation::OnDemand { "pooling (fell back to on-demand!)" } else { "pooling" };
    for (name, s) in [(name, &pooling), ("on-demand", &on_demand)] {
        println!("  {name:<10} median {:>7.1} µs   p99 {:>7.1} µs   mean {:>7.1} µs", s.median, s.p99, s.mean);
    }
    println!("  on-demand / pooling median: {:.2}x", on_demand.median / pooling.median);
}
