//! Retention under a steady load (DESIGN §7): executions flow through the
//! engine and are deleted a short retention after they close, so the store
//! file stays the same size once the first window has passed.
//!
//! No-op activities are started in batches at a steady pace, `TOTAL` in all
//! (1,000,000 by default), with `store.retention` = 5s; the size of the
//! store file (and its WAL) is printed as they go, and the figure compared
//! is its largest size after three retention windows against its size then.
//!
//!     cargo bench -p sluice --bench retention     (SLUICE_BENCH_N=... to resize)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice::config::Config;
use sluice::engine::{Engine, SystemClock};
use sluice::store::SqliteStore;
use sluice_test_programs::NOOP;

mod common;
use common::schedule_noops;

/// Starts per batch, and most executions open at once.
const BATCH: u64 = 1_000;
const IN_FLIGHT: u64 = 20_000;

fn mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64)
}

fn main() {
    let total: u64 = std::env::var("SLUICE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[store]\npath = \"bench.db\"\nretention = \"5s\"\n[sandbox]\npool_instances = 512\n\
             [queues.default]\nslots = 256\n[activities.noop]\ncomponent = \"{NOOP}\"\nstart_to_close_timeout = \"1h\"\n"
        );
        let config = Config::parse(&text, dir.path()).unwrap();
        let db = config.store.path.clone();
        let wal = db.with_extension("db-wal");
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        let engine = Engine::start(&config, store, Arc::new(SystemClock)).await.unwrap();
        println!("retention 5s: {total} no-op executions through the engine, at most {IN_FLIGHT} open");
        let started_at = Instant::now();
        let mut started = 0;
        let mut sizes = Vec::new();
        let mut last_print = Instant::now();
        while started < total || engine.stats().completed.load(Ordering::Relaxed) < total {
            let done = engine.stats().completed.load(Ordering::Relaxed);
            if started < total && started - done < IN_FLIGHT {
                let n = BATCH.min(total - started);
                schedule_noops(&engine, n, n).await;
                started += n;
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if last_print.elapsed() >= Duration::from_secs(5) {
                last_print = Instant::now();
                let (d, w) = (mib(&db), mib(&wal));
                sizes.push((started_at.elapsed(), d + w));
                println!(
                    "  {:>6.0}s  {done:>8} completed   store {d:>7.1} MiB + WAL {w:>6.1} MiB",
                    started_at.elapsed().as_secs_f64()
                );
            }
        }
        let secs = started_at.elapsed().as_secs_f64();
        engine.shutdown(Duration::from_secs(1)).await;
        println!("  {total} executions in {secs:.0}s ({:.0}/s)", total as f64 / secs);
        // Three windows in, the store holds what one window closes (and the WAL its checkpoint's worth).
        let settled: Vec<f64> = sizes.iter().filter(|(t, _)| *t >= Duration::from_secs(15)).map(|x| x.1).collect();
        match settled.first() {
            Some(&at) => println!(
                "  store + WAL after 15s: {at:.1} MiB, largest later {:.1} MiB ({:.2}x; flat is ≤ 1.1x)",
                settled.iter().copied().fold(0.0, f64::max),
                settled.iter().copied().fold(0.0, f64::max) / at.max(f64::MIN_POSITIVE)
            ),
            None => println!("  (ran under 15s: raise SLUICE_BENCH_N to see the size settle)"),
        }
    });
}
