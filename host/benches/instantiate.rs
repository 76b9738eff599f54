//! Fresh instance + call of the no-op Rust guest, with the pooling allocator
//! and with on-demand allocation, in one run (compare the two, not absolute
//! numbers: the machines are noisy).
//!
//!     cargo bench -p sluice --bench instantiate

use std::time::{Duration, Instant};

use serde_json::json;
use sluice::payload::Payload;
use sluice::sandbox::{
    ActivityInfo, Allocation, AttemptControl, AttemptOutcome, AttemptRequest, Grants, Limits, Sandbox,
    SandboxConfig,
};
use sluice_test_programs::NOOP;

const WARMUP: usize = 2_000;
const RUNS: usize = 20_000;

fn request() -> AttemptRequest {
    AttemptRequest {
        info: ActivityInfo {
            activity_id: "bench".into(),
            run_id: "run".into(),
            activity_type: "noop".into(),
            task_queue: "q".into(),
            attempt: 1,
            scheduled_time_ms: 0,
            current_attempt_scheduled_time_ms: 0,
            started_time_ms: 0,
            schedule_to_close_deadline_ms: None,
            start_to_close_deadline_ms: None,
            heartbeat_timeout_ms: None,
            host_task_queue: "q@host".into(),
        },
        input: Payload::json(&json!(null)),
        last_heartbeat: None,
        task_token: String::new(),
        limits: Limits { timeout: Some(Duration::from_secs(10)), ..Limits::default() },
        grants: Grants::default(),
        control: std::sync::Arc::new(AttemptControl::new()),
        events: None,
    }
}

struct Stats {
    median: f64,
    p99: f64,
    mean: f64,
}

fn measure(rt: &tokio::runtime::Runtime, allocation: Allocation) -> (Allocation, Stats) {
    let sandbox = Sandbox::new(SandboxConfig { allocation, cache_dir: None, ..SandboxConfig::default() })
        .expect("sandbox");
    let component = sandbox.load(NOOP.as_ref(), false).expect("load noop");
    let mut samples = Vec::with_capacity(RUNS);
    rt.block_on(async {
        for i in 0..WARMUP + RUNS {
            let req = request();
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
