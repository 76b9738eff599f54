//! Throughput and CPU per activity of real `sluice serve` hosts on SQLite,
//! then on one PostgreSQL database with 1, 2 and 3 hosts: N no-op
//! activities started in StartActivities requests of B (C in flight),
//! spread over the hosts; throughput = N / (first start → queue drained).
//! On this machine the hosts, the database and this client share the CPU,
//! so it prints the CPU per activity of each host, of PostgreSQL and of the
//! client: what a host and the database each need, to project scaling.
//!
//!     cargo bench -p sluice --bench hosts
//!     SLUICE_BENCH_N=100000 cargo bench -p sluice --bench hosts -- postgres
//!
//! PostgreSQL: `SLUICE_TEST_POSTGRES`, else a throwaway cluster (see
//! tests/common/postgres.rs). Its CPU is that of every `postgres` process.

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

fn config(store: &str, host: &str) -> String {
    format!(
        "[server]\nhost_id = \"{host}\"\n{store}\n[sandbox]\npool_instances = 512\ncache_dir = \"{}\"\n\
         [queues.default]\nslots = 256\n\
         [activities.noop]\ncomponent = \"{}\"\nstart_to_close_timeout = \"60s\"\n",
        test_common::cache_dir().display(),
        sluice_test_programs::NOOP
    )
}

/// CPU seconds of every `postgres` process, by pid.
fn postgres_cpu() -> std::collections::HashMap<String, f64> {
    let mut out = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            out.insert(pid.clone(), cpu_secs(&pid));
        }
    }
    out
}

async fn run(label: &str, servers: &[Server], n: usize, c: usize, b: usize) {
    let mut clients: Vec<Activities> = Vec::new();
    for s in servers {
        let channel = Channel::from_shared(s.addr.clone()).unwrap().connect().await.unwrap();
        clients.push(pb::activity_service_client::ActivityServiceClient::new(channel));
    }
    let pids: Vec<String> = servers.iter().map(|s| s.pid().to_string()).collect();
    let hosts_before: Vec<f64> = pids.iter().map(|p| cpu_secs(p)).collect();
    let (pg_before, client_before) = (postgres_cpu(), cpu_secs("self"));
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let requests = n.div_ceil(b);
    let tasks: Vec<_> = (0..c.div_ceil(b).max(1))
        .map(|t| {
            let (mut client, next) = (clients[t % clients.len()].clone(), next.clone());
            let label = label.to_string();
            tokio::spawn(async move {
                loop {
                    let r = next.fetch_add(1, Ordering::Relaxed);
                    if r >= requests {
                        return;
                    }
                    let starts = (r * b..n.min((r + 1) * b))
                        .map(|i| start_req("noop", &format!("{label}-{i}"), serde_json::Value::Null))
                        .collect();
                    client.start_activities(pb::StartActivitiesRequest { starts }).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    common::drained(&servers[0].addr, Duration::from_millis(100)).await;
    let total = started.elapsed().as_secs_f64();
    let per = |secs: f64| secs / n as f64 * 1e3;
    let hosts: Vec<f64> = pids.iter().zip(&hosts_before).map(|(p, before)| per(cpu_secs(p) - before)).collect();
    let pg_after = postgres_cpu();
    let pg: f64 = pg_after.iter().map(|(pid, now)| now - pg_before.get(pid).copied().unwrap_or(0.0)).sum();
    let client = per(cpu_secs("self") - client_before);
    let host_sum: f64 = hosts.iter().sum();
    println!(
        "{label}: {n} activities in {total:.2}s: {:.0} activities/s; CPU per activity: hosts {} (sum {host_sum:.3} ms), \
         database {:.3} ms, client {client:.3} ms, all {:.3} ms",
        n as f64 / total,
        hosts.iter().map(|h| format!("{h:.3}")).collect::<Vec<_>>().join(" + "),
        per(pg),
        host_sum + per(pg) + client,
    );
}

fn main() {
    let modes: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |m: &str| modes.is_empty() || modes.iter().any(|x| x == m);
    let (n, c, b) = (env("SLUICE_BENCH_N", 50_000), env("SLUICE_BENCH_C", 256), env("SLUICE_BENCH_B", 64));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if wants("sqlite") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sluice.toml"), config("[store]\npath = \"sluice.db\"", "h1")).unwrap();
        let server = Server::start_in(dir.path());
        rt.block_on(run("sqlite, 1 host", &[server], n, c, b));
    }
    if wants("postgres") {
        for hosts in 1..=env("SLUICE_BENCH_HOSTS", 3) {
            let url = test_common::postgres::fresh_database();
            let dirs: Vec<tempfile::TempDir> = (0..hosts).map(|_| tempfile::tempdir().unwrap()).collect();
            let servers: Vec<Server> = dirs
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let store = format!("[store]\nurl = \"{url}\"");
                    std::fs::write(d.path().join("sluice.toml"), config(&store, &format!("h{}", i + 1))).unwrap();
                    Server::start_in(d.path())
                })
                .collect();
            rt.block_on(run(&format!("postgres, {hosts} host(s)"), &servers, n, c, b));
        }
    }
}
