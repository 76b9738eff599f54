//! Dispatch rate and host memory with a deep backlog (DESIGN §9): the
//! backlog lives in the store, so draining a 1,000,000-deep queue should run
//! at the pace of a 1,000-deep one and the host should not grow with it.
//!
//! Each case fills the queue while it is paused (`rate_limit = 0`), restarts
//! the engine on the same store with the queue open, and times windows of
//! 100 completions (median window reported): all 1,000 of the shallow queue,
//! the first 50,000 of the deep one.
//!
//!     cargo bench -p sluice --bench backlog      (SLUICE_BENCH_DEEP=... to resize)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice::config::Config;
use sluice::engine::{Engine, SystemClock};
use sluice::store::SqliteStore;
use sluice_test_programs::NOOP;

mod common;
use common::schedule_noops;

/// Completions per timed window.
const WINDOW: u64 = 100;
const SHALLOW: u64 = 1_000;

fn config(dir: &Path, paused: bool) -> Config {
    let rate = if paused { "rate_limit = 0.0\n" } else { "" };
    let text = format!(
        "[store]\npath = \"bench.db\"\n[sandbox]\npool_instances = 512\n[queues.default]\nslots = 256\n{rate}\
         [activities.noop]\ncomponent = \"{NOOP}\"\nstart_to_close_timeout = \"1h\"\n"
    );
    Config::parse(&text, dir).unwrap()
}

/// Resident set size of this process, in MiB.
fn rss_mib() -> f64 {
    common::rss_mib("self")
}

struct Drain {
    /// Completions per second of the median window of WINDOW completions.
    median_rate: f64,
    rss_before: f64,
    rss_peak: f64,
    fill_secs: f64,
}

async fn drain(depth: u64, measure: u64) -> Drain {
    let dir = tempfile::tempdir().unwrap();
    // Fill, paused.
    let paused = config(dir.path(), true);
    let store = Arc::new(SqliteStore::open(&paused.store.path).unwrap());
    let engine = Engine::start(&paused, store, Arc::new(SystemClock)).await.unwrap();
    let fill = Instant::now();
    schedule_noops(&engine, depth, 1000).await;
    let fill_secs = fill.elapsed().as_secs_f64();
    engine.shutdown(Duration::from_secs(1)).await;
    drop(engine);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Drain, open.
    let rss_before = rss_mib();
    let open = config(dir.path(), false);
    let store = Arc::new(SqliteStore::open(&open.store.path).unwrap());
    let engine = Engine::start(&open, store, Arc::new(SystemClock)).await.unwrap();
    let mut windows = Vec::new();
    let mut rss_peak = rss_before;
    let mut mark = Instant::now();
    let mut next = WINDOW;
    while next <= measure {
        if engine.stats().completed.load(Ordering::Relaxed) >= next {
            windows.push(WINDOW as f64 / mark.elapsed().as_secs_f64());
            mark = Instant::now();
            next += WINDOW;
            rss_peak = rss_peak.max(rss_mib());
        } else {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    engine.shutdown(Duration::from_secs(1)).await;
    windows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Drain { median_rate: windows[windows.len() / 2], rss_before, rss_peak, fill_secs }
}

fn main() {
    let deep: u64 = std::env::var("SLUICE_BENCH_DEEP").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // The shallow case is short, so run it a few times and keep the median.
        let mut shallow = Vec::new();
        for _ in 0..5 {
            shallow.push(drain(SHALLOW, SHALLOW).await);
        }
        shallow.sort_by(|a, b| a.median_rate.partial_cmp(&b.median_rate).unwrap());
        let shallow = &shallow[shallow.len() / 2];
        // A middle depth shows whether memory follows the backlog.
        let middle = drain(deep / 10, 50_000.min(deep / 10)).await;
        let deep_run = drain(deep, 50_000.min(deep)).await;
        println!("dispatch with a backlog: no-op activities drained from a prefilled queue, windows of {WINDOW} completions");
        let names = ["1000 deep".to_string(), format!("{} deep", deep / 10), format!("{deep} deep")];
        for (name, d) in names.iter().zip([shallow, &middle, &deep_run]) {
            println!(
                "  {name:<16} {:>8.0} activities/s   RSS {:>6.1} MiB before draining, peak {:>6.1} MiB   (filled in {:.1}s)",
                d.median_rate, d.rss_before, d.rss_peak, d.fill_secs
            );
        }
        println!("  1,000-deep / deep rate: {:.2}x (bar ≤ 1.5x)", shallow.median_rate / deep_run.median_rate);
    });
}
