//! The number users see: the real `sluice serve` in its own process, this
//! process a gRPC client of it, the no-op guest, every execution durable.
//!
//! - fire: N starts with C in flight on K connections, then wait until all
//!   N are closed; throughput = N / (first start → last close).
//! - latency: one activity at a time on an idle host, start → result
//!   (long-poll), p50 / p99, from a single-threaded client.
//! - mixed: C clients each start an activity and long-poll its result.
//! - batch: N starts in StartActivities requests of B, C activities in
//!   flight, the results followed on one WatchActivities stream;
//!   throughput = N / (first start → last result received).
//!
//! Each mode prints throughput or latencies, the server's CPU per activity
//! and the client's (from /proc and getrusage), and the server's peak RSS.
//!
//!     cargo bench -p sluice --bench external
//!     SLUICE_BENCH_SLOTS=512 ...   # the queue's slots (default 256)
//!     SLUICE_BENCH_N=100000 SLUICE_BENCH_C=256 SLUICE_BENCH_K=1 cargo bench -p sluice --bench external -- fire
//!     SLUICE_BENCH_N=100000 SLUICE_BENCH_C=256 SLUICE_BENCH_B=64 cargo bench -p sluice --bench external -- batch

mod common;
#[path = "../tests/common/mod.rs"]
mod test_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{cpu_secs, env};
use sluice::api::pb;
use test_common::server::{Server, start_req};
use tonic::transport::Channel;

type Activities = pb::activity_service_client::ActivityServiceClient<Channel>;

fn config() -> String {
    format!(
        "[store]\npath = \"sluice.db\"\n[sandbox]\npool_instances = {}\ncache_dir = \"{}\"\n\
         [queues.default]\nslots = {}\n\
         [activities.noop]\ncomponent = \"{}\"\nstart_to_close_timeout = \"60s\"\n",
        env("SLUICE_BENCH_SLOTS", 256) * 2,
        test_common::cache_dir().display(),
        env("SLUICE_BENCH_SLOTS", 256),
        sluice_test_programs::NOOP
    )
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// CPU per activity of the server and of this client over a measurement.
struct Cpu {
    server: String,
    at: (f64, f64),
}

impl Cpu {
    fn start(server: &Server) -> Cpu {
        let server = server.pid().to_string();
        let at = (cpu_secs(&server), cpu_secs("self"));
        Cpu { server, at }
    }

    fn report(&self, activities: usize) {
        let per = |now: f64, then: f64| (now - then) / activities as f64 * 1e3;
        let server = per(cpu_secs(&self.server), self.at.0);
        let client = per(cpu_secs("self"), self.at.1);
        println!(
            "  CPU per activity: server {server:.3} ms + client {client:.3} ms = {:.3} ms; server peak RSS {:.0} MiB",
            server + client,
            common::peak_rss_mib(&self.server)
        );
    }
}

async fn connect(server: &Server, k: usize) -> Vec<Activities> {
    let mut out = Vec::new();
    for _ in 0..k {
        let channel = Channel::from_shared(server.addr.clone()).unwrap().connect().await.unwrap();
        out.push(pb::activity_service_client::ActivityServiceClient::new(channel));
    }
    out
}

/// Runs `one(client, i)` for i in 0..n, `c` at a time over the clients.
async fn spread<F, Fut>(clients: &[Activities], n: usize, c: usize, one: F)
where
    F: Fn(Activities, usize) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = Activities> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..c)
        .map(|t| {
            let (mut client, next) = (clients[t % clients.len()].clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    client = one(client, i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn fire(server: &Server, n: usize, c: usize, k: usize) {
    let clients = connect(server, k).await;
    let cpu = Cpu::start(server);
    let started = Instant::now();
    spread(&clients, n, c, move |mut client, i| async move {
        let req = start_req("noop", &format!("fire-{n}-{i}"), serde_json::Value::Null);
        client.start_activity(req).await.unwrap();
        client
    })
    .await;
    let acknowledged = started.elapsed();
    common::drained(&server.addr, Duration::from_millis(5)).await;
    let total = started.elapsed();
    println!(
        "fire: {n} starts, {c} in flight on {k} connection(s): all acknowledged in {:.2}s, all closed in {:.2}s: {:.0} activities/s",
        acknowledged.as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    cpu.report(n);
}

async fn run_one(client: &mut Activities, id: String) {
    client.start_activity(start_req("noop", &id, serde_json::Value::Null)).await.unwrap();
    test_common::server::result(client, &id, 60.0).await;
}

async fn latency(server: &Server, runs: usize) {
    let mut client = connect(server, 1).await.remove(0);
    let cpu = Cpu::start(server);
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        run_one(&mut client, format!("latency-{i}")).await;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "latency: start → result of one activity on an idle host, {runs} runs: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&samples, 50),
        percentile(&samples, 99)
    );
    cpu.report(runs);
}

async fn mixed(server: &Server, n: usize, c: usize, k: usize) {
    let clients = connect(server, k).await;
    let cpu = Cpu::start(server);
    let started = Instant::now();
    spread(&clients, n, c, move |mut client, i| async move {
        run_one(&mut client, format!("mixed-{n}-{i}")).await;
        client
    })
    .await;
    let total = started.elapsed();
    println!(
        "mixed: {n} activities, {c} clients each starting one and long-polling its result, on {k} connection(s): {:.0} activities/s",
        n as f64 / total.as_secs_f64()
    );
    cpu.report(n);
}

async fn batch(server: &Server, n: usize, c: usize, b: usize) {
    let mut clients = connect(server, 1).await;
    let mut client = clients.remove(0);
    let watch = pb::WatchActivitiesRequest { task_queue: "default".into(), ..Default::default() };
    let mut results = client.watch_activities(watch).await.unwrap().into_inner();
    let cpu = Cpu::start(server);
    let started = Instant::now();
    // Read while starting, as a client would: a stream nobody reads falls behind.
    let follow = tokio::spawn(async move {
        for _ in 0..n {
            let e = results.message().await.unwrap().expect("the stream stays open").execution.unwrap();
            assert_eq!(e.status, pb::ActivityStatus::Completed as i32);
        }
    });
    let requests = n.div_ceil(b);
    spread(&[client], requests, c.div_ceil(b), move |mut client, r| async move {
        let starts = (r * b..n.min((r + 1) * b))
            .map(|i| start_req("noop", &format!("batch-{n}-{i}"), serde_json::Value::Null))
            .collect();
        let outcomes = client.start_activities(pb::StartActivitiesRequest { starts }).await.unwrap().into_inner();
        for o in outcomes.outcomes {
            assert!(matches!(o.outcome, Some(pb::start_activity_outcome::Outcome::Started(_))), "{o:?}");
        }
        client
    })
    .await;
    let acknowledged = started.elapsed();
    follow.await.unwrap();
    let total = started.elapsed();
    println!(
        "batch: {n} starts in requests of {b}, {c} in flight, results on one stream: all acknowledged in {:.2}s, all results in {:.2}s: {:.0} activities/s",
        acknowledged.as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    cpu.report(n);
}

fn main() {
    let modes: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |m: &str| modes.is_empty() || modes.iter().any(|x| x == m);
    let (n, c, k) = (env("SLUICE_BENCH_N", 20_000), env("SLUICE_BENCH_C", 64), env("SLUICE_BENCH_K", 1));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sluice.toml"), config()).unwrap();
    let server = Server::start_in(dir.path());
    let idle_rss = common::rss_mib(&server.pid().to_string());
    println!("server idle RSS {idle_rss:.0} MiB");
    if wants("latency") {
        // One sequential client needs one thread: no wake-ups between the
        // client's own threads in what is measured.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(latency(&server, env("SLUICE_BENCH_RUNS", 2000)));
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        if wants("fire") {
            fire(&server, n, c, k).await;
        }
        if wants("mixed") {
            mixed(&server, n, c, k).await;
        }
        if wants("batch") {
            batch(&server, n, c, env("SLUICE_BENCH_B", 64)).await;
        }
    });
    let peak = common::peak_rss_mib(&server.pid().to_string());
    println!("server peak RSS {peak:.0} MiB = {:.2}x its idle RSS ({idle_rss:.0} MiB)", peak / idle_rss);
}
