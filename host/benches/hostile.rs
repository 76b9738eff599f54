//! Hostile guests beside good ones, against the real `sluice serve`: for each
//! kind of hostile guest, phases interleaved in one run — clean (good load
//! only), hostile (good load plus hostile activities of that kind) and, for
//! the CPU-bound kind, an outside process burning a core instead. Prints the
//! good throughput of each phase and its ratio to the clean phase around it,
//! whether every hostile outcome was classified as it should be, the
//! control plane's latency (describe, start: p99), and the host's peak RSS.
//!
//!     cargo bench -p sluice --bench hostile      (SLUICE_BENCH_PHASE_MS=... per phase, default 3000)
//!
//! Bars (the hardening issue): hostile ≥ 0.9 × clean for every kind that is
//! not CPU-bound; the CPU-bound kind no worse than the outside burner;
//! control-plane p99 ≤ 10 ms throughout.

mod common;
#[path = "../tests/common/mod.rs"]
mod test_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice::api::pb;
use test_common::server::{ActivityServiceClient, Server, decode, json as payload, start_req};
use tokio::sync::Mutex;
use tonic::transport::Channel;

/// Good activities in flight.
const GOOD_IN_FLIGHT: usize = 16;
/// A core's worth of busy loop.
const CPU_BURNER: &str = "while :; do :; done";
/// A core's worth of allocating and writing 64 MiB, as the memory bomb does.
const MEMORY_BURNER: &str = "exec python3 -c 'while True: b = bytes([1]) * (64 << 20)'";
/// How often a hostile activity starts (kinds that are not CPU-bound).
const HOSTILE_EVERY: Duration = Duration::from_millis(100);

/// One kind of hostile guest: its input, whether it is CPU-bound (it
/// computes, allocates or writes as fast as it can: then one runs at all
/// times, a core's worth, and an outside process burning a core is its
/// yardstick; the others start every HOSTILE_EVERY), and whether its
/// outcome is the one the sandbox must report.
struct Kind {
    name: &'static str,
    input: Value,
    /// The outside process that does the same kind of work, for CPU-bound
    /// kinds: a busy shell loop, or (for the memory bomb) a loop that
    /// allocates and writes 64 MiB.
    burner: Option<&'static str>,
    cancel: bool,
    expect: fn(&pb::ActivityExecution) -> bool,
}

fn failed_as(e: &pb::ActivityExecution, error_type: &str) -> bool {
    e.status == pb::ActivityStatus::Failed as i32 && e.last_failure.as_ref().is_some_and(|f| f.error_type == error_type)
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "tight loop",
            input: json!({"do": "loop"}),
            burner: Some(CPU_BURNER),
            cancel: false,
            expect: |e| e.status == pb::ActivityStatus::TimedOut as i32 && e.timeout_type == "start-to-close",
        },
        Kind {
            name: "memory bomb",
            input: json!({"do": "memory", "mib": 4096}),
            burner: Some(MEMORY_BURNER),
            cancel: false,
            expect: |e| failed_as(e, "OutOfMemory"),
        },
        Kind {
            name: "stack overflow",
            input: json!({"do": "recurse"}),
            burner: None,
            cancel: false,
            expect: |e| failed_as(e, "StackOverflow"),
        },
        Kind {
            name: "trap",
            input: json!({"do": "trap"}),
            burner: None,
            cancel: false,
            expect: |e| failed_as(e, "Trap"),
        },
        Kind {
            name: "stdout flood",
            input: json!({"do": "flood"}),
            burner: Some(CPU_BURNER),
            cancel: false,
            expect: |e| failed_as(e, "OutputLimit"),
        },
        Kind {
            name: "1M empty lines",
            input: json!({"do": "lines", "count": 1_000_000}),
            burner: Some(CPU_BURNER),
            cancel: false,
            // A million host calls can take longer than the 2 s allowed.
            expect: |e| {
                e.status == pb::ActivityStatus::Completed as i32
                    || e.status == pb::ActivityStatus::TimedOut as i32 && e.timeout_type == "start-to-close"
            },
        },
        Kind {
            name: "escape attempt",
            input: json!({"do": "read-file", "path": "/etc/passwd"}),
            burner: None,
            cancel: false,
            expect: |e| e.status == pb::ActivityStatus::Completed as i32 && decode(&e.result).get("error").is_some(),
        },
        Kind {
            name: "ignores cancel",
            input: json!({"do": "ignore-cancel", "ms": 5}),
            burner: None,
            cancel: true,
            expect: |e| e.status == pb::ActivityStatus::Cancelled as i32,
        },
    ]
}

fn config() -> String {
    test_common::server::config(
        "[queues.bench]\nslots = 32\n\
         [activities.good]\ncomponent = \"HELLO\"\nqueues = [\"bench\"]\nstart_to_close_timeout = \"10s\"\n\
         [activities.hostile]\ncomponent = \"MISBEHAVING\"\nqueues = [\"bench\"]\nstart_to_close_timeout = \"2s\"\n\
         memory = \"64MiB\"\ncancel_grace = \"200ms\"\n[activities.hostile.retry]\nmaximum_attempts = 1\n",
    )
    .replace("\"HELLO\"", &format!("\"{}\"", sluice_test_programs::HELLO))
    .replace("\"MISBEHAVING\"", &format!("\"{}\"", sluice_test_programs::MISBEHAVING))
}

struct Phase {
    good_per_sec: f64,
    hostile_done: u64,
    misclassified: u64,
    describe_p99_ms: f64,
    start_p99_ms: f64,
    peak_rss_mib: f64,
}

static IDS: AtomicU64 = AtomicU64::new(0);

fn next_id(prefix: &str) -> String {
    format!("{prefix}-{}", IDS.fetch_add(1, Ordering::Relaxed))
}

/// Starts `req` and waits for it to close.
async fn run_one(c: &mut ActivityServiceClient<Channel>, req: pb::StartActivityRequest) -> pb::ActivityExecution {
    let id = req.activity_id.clone();
    c.start_activity(req).await.unwrap();
    test_common::server::result(c, &id, 60.0).await
}

fn p99(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn rss_mib(pid: u32) -> f64 {
    common::rss_mib(&pid.to_string())
}

/// One phase: the good load for `length`, plus `hostile` activities or an
/// outside `burner` process.
async fn phase(server: &Server, pid: u32, length: Duration, hostile: Option<&Kind>, burner: Option<&str>) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..GOOD_IN_FLIGHT {
        let (mut c, stop, done) = (server.activities().await, stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let req = pb::StartActivityRequest {
                    task_queue: "bench".into(),
                    ..start_req("good", &next_id("good"), json!({"name": "x"}))
                };
                let e = run_one(&mut c, req).await;
                assert_eq!(e.status, pb::ActivityStatus::Completed as i32);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let hostile_done = Arc::new(AtomicU64::new(0));
    let misclassified = Arc::new(AtomicU64::new(0));
    if let Some(kind) = hostile {
        let c = server.activities().await;
        let (stop, n, bad) = (stop.clone(), hostile_done.clone(), misclassified.clone());
        let (input, cancel, expect, cpu_bound) = (kind.input.clone(), kind.cancel, kind.expect, kind.burner.is_some());
        tasks.push(tokio::spawn(async move {
            let mut running = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (mut c, n, bad, input) = (c.clone(), n.clone(), bad.clone(), input.clone());
                let one = tokio::spawn(async move {
                    let id = next_id("hostile");
                    let req = pb::StartActivityRequest {
                        task_queue: "bench".into(),
                        input: payload(input),
                        ..start_req("hostile", &id, Value::Null)
                    };
                    if cancel {
                        let mut c2 = c.clone();
                        let id2 = id.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let cancel = pb::RequestCancelActivityRequest { activity_id: id2, run_id: String::new() };
                            let _ = c2.request_cancel_activity(cancel).await;
                        });
                    }
                    let e = run_one(&mut c, req).await;
                    n.fetch_add(1, Ordering::Relaxed);
                    if !expect(&e) {
                        bad.fetch_add(1, Ordering::Relaxed);
                        eprintln!("misclassified: {e:?}");
                    }
                });
                if cpu_bound {
                    // One at all times: the next when this one is stopped.
                    one.await.unwrap();
                } else {
                    running.push(one);
                    tokio::time::sleep(HOSTILE_EVERY).await;
                }
            }
            for one in running {
                one.await.unwrap();
            }
        }));
    }
    let mut burn =
        burner.map(|script| std::process::Command::new("sh").args(["-c", script]).spawn().expect("a burner process"));
    // Control-plane probe: a describe and a start every 10 ms.
    let latencies = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    {
        let (mut c, stop, lat) = (server.activities().await, stop.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let probe = next_id("probe");
            c.start_activity(start_req("good", &probe, json!({"name": "p"}))).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                c.describe_activity(pb::DescribeActivityRequest { activity_id: probe.clone(), ..Default::default() })
                    .await
                    .unwrap();
                let describe = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                c.start_activity(start_req("good", &next_id("probe"), json!({"name": "p"}))).await.unwrap();
                let start = t.elapsed().as_secs_f64() * 1e3;
                let mut l = lat.lock().await;
                l.0.push(describe);
                l.1.push(start);
                drop(l);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    let started = Instant::now();
    let mut peak = rss_mib(pid);
    while started.elapsed() < length {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_mib(pid));
    }
    let good = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(b) = burn.as_mut() {
        let _ = b.kill();
        let _ = b.wait();
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (describe, start) = std::mem::take(&mut *latencies.lock().await);
    Phase {
        good_per_sec: good as f64 / elapsed.as_secs_f64(),
        hostile_done: hostile_done.load(Ordering::Relaxed),
        misclassified: misclassified.load(Ordering::Relaxed),
        describe_p99_ms: p99(describe),
        start_p99_ms: p99(start),
        peak_rss_mib: peak,
    }
}

fn main() {
    let length =
        Duration::from_millis(std::env::var("SLUICE_BENCH_PHASE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("outbox")).unwrap();
        std::fs::write(dir.path().join("sluice.toml"), config()).unwrap();
        let server = Server::start_in(dir.path());
        let pid = server.pid();
        // Warm up: compile, fill caches.
        phase(&server, pid, Duration::from_millis(1000), None, None).await;

        println!(
            "good throughput beside hostile guests ({} ms phases, clean phases before and after each)",
            length.as_millis()
        );
        println!(
            "{:<16} {:>9} {:>9} {:>6} {:>9} {:>6} {:>8} {:>8} {:>9} {:>9}",
            "kind", "clean/s", "with/s", "ratio", "burner/s", "ratio", "hostile", "wrong", "p99 desc", "p99 start"
        );
        let mut worst_p99: f64 = 0.0;
        let mut peak: f64 = 0.0;
        for kind in kinds() {
            let before = phase(&server, pid, length, None, None).await;
            let with = phase(&server, pid, length, Some(&kind), None).await;
            let burner = match kind.burner {
                Some(script) => Some(phase(&server, pid, length, None, Some(script)).await),
                None => None,
            };
            let after = phase(&server, pid, length, None, None).await;
            let clean = (before.good_per_sec + after.good_per_sec) / 2.0;
            let ratio = with.good_per_sec / clean;
            let (burner_rate, burner_ratio) = match &burner {
                Some(b) => (format!("{:.0}", b.good_per_sec), format!("{:.2}", b.good_per_sec / clean)),
                None => ("-".into(), "-".into()),
            };
            let (mut describe_p99, mut start_p99) = (0.0f64, 0.0f64);
            for p in [&before, &with, &after].into_iter().chain(burner.as_ref()) {
                describe_p99 = describe_p99.max(p.describe_p99_ms);
                start_p99 = start_p99.max(p.start_p99_ms);
                peak = peak.max(p.peak_rss_mib);
            }
            worst_p99 = worst_p99.max(describe_p99).max(start_p99);
            println!(
                "{:<16} {:>9.0} {:>9.0} {:>6.2} {:>9} {:>6} {:>8} {:>8} {:>8.1}ms {:>8.1}ms",
                kind.name,
                clean,
                with.good_per_sec,
                ratio,
                burner_rate,
                burner_ratio,
                with.hostile_done,
                with.misclassified,
                describe_p99,
                start_p99
            );
        }
        println!("(p99: the worst of the kind's phases; CPU-bound kinds compare with the burner, the rest with clean)");
        println!(
            "control plane p99 (describe, start) over every phase: {worst_p99:.1} ms; host peak RSS {peak:.0} MiB"
        );
    });
}
