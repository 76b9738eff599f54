//! The `hello` activity in Rust, C, Python and JavaScript: fresh instance +
//! call per attempt, and what loading costs with and without the compiled-
//! component cache, all in one run (compare ratios; the machines are noisy),
//! plus the same attempts in a reused warm instance (`reuse_instances`).
//! A fresh attempt's result is out once the guest returns; its instance is
//! torn down after that (the host commits the result meanwhile), so the
//! teardown is shown apart, and with it the CPU a fresh attempt costs.
//! The C, Python and JS guests are built with `sluice build` first, which
//! installs their toolchains on first use.
//!
//!     cargo bench -p sluice --bench guests [-- python js ...]

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use sluice::build::{BuildOptions, Language, Toolchains};
use std::sync::Arc;

use sluice::sandbox::{Allocation, AttemptOutcome, CacheUse, LoadedComponent, Sandbox, SandboxConfig, WarmPool};

mod common;
use common::{cpu_secs, request};

struct Guest {
    name: &'static str,
    path: PathBuf,
    runs: usize,
}

fn build(lang: &str, language: Language) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-guests").join(format!("hello-{lang}.wasm"));
    let opts = BuildOptions {
        dir: root.join("examples").join(lang).join("hello"),
        out: Some(out.clone()),
        language: Some(language),
        http: false,
        toolchains: Toolchains::new(std::env::var_os("SLUICE_TOOLCHAINS").map(PathBuf::from)).unwrap(),
    };
    sluice::build::build(&opts).unwrap_or_else(|e| panic!("cannot build the {lang} guest: {e:#}"));
    out
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn mean(samples: &[f64]) -> f64 {
    samples.iter().sum::<f64>() / samples.len() as f64
}

fn main() {
    // As `sluice serve` runs.
    sluice::allocator::tune();
    // `cargo bench` passes `--bench`; other arguments pick languages (Rust is
    // always measured: it is the reference).
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |lang: &str| picked.is_empty() || picked.iter().any(|p| p == lang);
    let mut guests = vec![Guest { name: "Rust", path: sluice_test_programs::HELLO.into(), runs: 20_000 }];
    for (lang, name, language, runs) in [
        ("c", "C", Language::C, 20_000),
        ("python", "Python", Language::Python, 2_000),
        ("js", "JavaScript", Language::Js, 2_000),
    ] {
        if wanted(lang) {
            guests.push(Guest { name, path: build(lang, language), runs });
        }
    }
    let cache = tempfile::tempdir().unwrap();
    let sandbox = |cache_dir: Option<PathBuf>| {
        Sandbox::new(SandboxConfig {
            allocation: Allocation::Pooling { instances: 100 },
            cache_dir,
            ..SandboxConfig::default()
        })
        .unwrap()
    };
    let cold = sandbox(Some(cache.path().to_path_buf()));
    let warm = sandbox(Some(cache.path().to_path_buf()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    println!("hello in four languages: fresh instance + call (pooling allocator, copy-on-write heap images)");
    println!(
        "  {:<10} {:>9} {:>10} {:>10} {:>11} {:>11} {:>8} {:>12} {:>10} {:>10}",
        "language",
        "size",
        "compile",
        "cache load",
        "fresh p50",
        "fresh p99",
        "vs Rust",
        "teardown",
        "fresh CPU",
        "warm p50"
    );
    let mut rust_median = None;
    for g in &guests {
        let size = std::fs::metadata(&g.path).unwrap().len();
        let compiled = cold.load(&g.path, false).expect("load");
        let cached = warm.load(&g.path, false).expect("load from cache");
        assert_eq!(cached.cache, CacheUse::Hit, "{} was compiled again", g.name);
        let fresh = measure(&rt, &cached, g, None);
        let warm = measure(&rt, &cached, g, Some(Arc::new(WarmPool::new(1))));
        let rust = *rust_median.get_or_insert(fresh.result.0);
        println!(
            "  {:<10} {:>9} {:>8.0}ms {:>8.1}ms {:>9.1}µs {:>9.1}µs {:>7.1}x {:>10.1}µs {:>8.1}µs {:>8.1}µs",
            g.name,
            bytesize::ByteSize(size).to_string(),
            compiled.load_time.as_secs_f64() * 1e3,
            cached.load_time.as_secs_f64() * 1e3,
            fresh.result.0,
            fresh.result.1,
            fresh.result.0 / rust,
            fresh.teardown,
            fresh.cpu,
            warm.result.0,
        );
    }
    println!("  (compile: first load, cranelift; cache load: a second sandbox reading the compiled-component cache;");
    println!("   fresh: a new instance per attempt, the default, until its result; teardown (mean): then giving");
    println!(
        "   the instance back, after the result; fresh CPU: the process's, per attempt; warm: reuse_instances = true)"
    );
}

/// Attempts' times (µs), over `g.runs` after a tenth as many warm-up runs.
struct Times {
    /// Median and p99, start → result.
    result: (f64, f64),
    /// Mean of the teardown after the result (the pool unmaps in batches,
    /// so a median would miss it).
    teardown: f64,
    /// The process's CPU time per attempt, teardown included.
    cpu: f64,
}

fn measure(rt: &tokio::runtime::Runtime, component: &LoadedComponent, g: &Guest, warm: Option<Arc<WarmPool>>) -> Times {
    let (mut samples, mut teardowns) = (Vec::new(), Vec::new());
    let runs = g.runs + g.runs / 10;
    let cpu_before = cpu_secs("self");
    rt.block_on(async {
        for i in 0..runs {
            let start = Instant::now();
            let mut req = request(json!({"name": "Ada"}));
            req.warm = warm.clone();
            let (report, teardown) = component.run_then_teardown(req).await;
            let took = start.elapsed().as_secs_f64() * 1e6;
            let at = Instant::now();
            drop(teardown);
            let torn = at.elapsed().as_secs_f64() * 1e6;
            match &report.outcome {
                AttemptOutcome::Completed { result } => {
                    assert_eq!(result.data, br#"{"greeting":"Hello, Ada!"}"#, "{}", g.name)
                }
                other => panic!("{}: {other:?}", g.name),
            }
            if i >= g.runs / 10 {
                samples.push(took);
                teardowns.push(torn);
            }
        }
    });
    let cpu = (cpu_secs("self") - cpu_before) * 1e6 / runs as f64;
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Times { result: (percentile(&samples, 50), percentile(&samples, 99)), teardown: mean(&teardowns), cpu }
}
