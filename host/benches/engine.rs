//! The durable engine end to end, in one run:
//! - throughput: no-op activities scheduled in batches, run in WASM, their
//!   final status committed to the embedded SQLite store;
//! - schedule-to-start latency on an idle host (start request → attempt
//!   started and committed), p50/p99;
//! - the cost of one heartbeat (by task token, committed) of an execution
//!   whose input is small or 1 MiB: an execution's input is stored once, so
//!   heartbeats should not pay for it.
//!
//!     cargo bench -p sluice --bench engine          (SLUICE_BENCH_N=... to resize)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice::config::Config;
use sluice::engine::{Engine, EventKind, StartRequest, SystemClock, Target};
use sluice::payload::Payload;
use sluice::store::SqliteStore;
use sluice_test_programs::NOOP;

mod common;
use common::schedule_noops;

fn config(dir: &std::path::Path) -> Config {
    let text = format!(
        "[store]\npath = \"bench.db\"\n[sandbox]\npool_instances = 512\n[queues.default]\nslots = 256\n\
         [activities.noop]\ncomponent = \"{NOOP}\"\nstart_to_close_timeout = \"60s\"\n"
    );
    Config::parse(&text, dir).unwrap()
}

fn main() {
    let n: usize = std::env::var("SLUICE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let store = SqliteStore::open(&config.store.path).unwrap();
        let engine = Engine::start(&config, Arc::new(store), Arc::new(SystemClock)).await.unwrap();

        // Throughput: schedule in batches of 500 (one commit each).
        let start = Instant::now();
        schedule_noops(&engine, n as u64, 500).await;
        let scheduling = start.elapsed();
        while engine.stats().completed.load(Ordering::Relaxed) < n as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let total = start.elapsed();
        println!("durable end-to-end throughput ({n} no-op activities, SQLite WAL, every commit fsynced before it is acted on)");
        println!("  scheduled in {:.2}s ({:.0}/s)", scheduling.as_secs_f64(), n as f64 / scheduling.as_secs_f64());
        println!("  all completed in {:.2}s: {:.0} activities/s", total.as_secs_f64(), n as f64 / total.as_secs_f64());

        // Latency on an idle host: one activity at a time.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut events = engine.subscribe();
        let mut samples = Vec::new();
        for _ in 0..1000 {
            let t = Instant::now();
            let run = engine.start_activity(StartRequest { activity_type: "noop".into(), ..Default::default() }).await.unwrap().run_id;
            loop {
                let ev = events.recv().await.unwrap();
                if ev.run_id == run && matches!(&ev.kind, EventKind::Transition { transition, .. } if *transition == sluice::activity::HistoryKind::Started) {
                    break;
                }
            }
            samples.push(t.elapsed().as_secs_f64() * 1e3);
            // Let it finish so the host is idle again.
            while engine.stats().completed.load(Ordering::Relaxed) < (n + samples.len()) as u64 {
                tokio::task::yield_now().await;
            }
        }
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("schedule-to-start latency, idle host (start committed → attempt started and committed), 1000 runs");
        println!("  p50 {:.3} ms   p99 {:.3} ms", samples[500], samples[990]);

        println!("heartbeat by task token (read, transition, commit), 500 per input size");
        for (label, size) in [("100 B", 100), ("1 MiB", 1 << 20)] {
            let (p50, mean) = heartbeat_cost(&engine, size).await;
            println!("  input {label:>6}: p50 {p50:.1} µs   mean {mean:.1} µs");
        }
    });
}

/// (p50, mean) µs of a heartbeat of an externally polled attempt whose input is `size` bytes.
async fn heartbeat_cost(engine: &Arc<Engine>, size: usize) -> (f64, f64) {
    let queue = format!("hb-{size}");
    let input = Payload::json(&"x".repeat(size - 2));
    let start = StartRequest {
        activity_type: "external".into(),
        task_queue: Some(queue.clone()),
        input: Some(input),
        timeouts: sluice::activity::Timeouts { start_to_close: Some(Duration::from_secs(3600)), ..Default::default() },
        ..Default::default()
    };
    engine.start_activity(start).await.unwrap();
    let task = engine.poll(&queue, "bench", vec![], Duration::from_secs(5)).await.unwrap().unwrap();
    let target = Target::Token(task.task_token);
    let mut samples = Vec::new();
    for i in 0..500 {
        let t = Instant::now();
        engine.heartbeat(&target, Some(Payload::json(&i))).await.unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (samples[samples.len() / 2], mean)
}
