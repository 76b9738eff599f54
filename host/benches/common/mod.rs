//! Helpers shared by the benchmarks (each uses some of them).
#![allow(dead_code)]

use std::time::Duration;

use sluice::engine::{Engine, StartRequest};
use sluice::payload::Payload;
use sluice::sandbox::{ActivityInfo, AttemptControl, AttemptRequest, Grants, Limits};

/// A first-attempt request with `input` and a 10 s deadline.
pub fn request(input: serde_json::Value) -> AttemptRequest {
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
        input: Payload::json(&input),
        last_heartbeat: None,
        task_token: "".into(),
        limits: Limits { timeout: Some(Duration::from_secs(10)), ..Limits::default() },
        grants: Grants::default(),
        control: std::sync::Arc::new(AttemptControl::new()),
        events: None,
        warm: None,
    }
}

/// Starts `n` no-op activities in batches of `batch` (one commit each).
pub async fn schedule_noops(engine: &std::sync::Arc<Engine>, n: u64, batch: u64) {
    let mut scheduled = 0;
    while scheduled < n {
        let size = (n - scheduled).min(batch);
        let reqs = (0..size).map(|_| StartRequest { activity_type: "noop".into(), ..Default::default() }).collect();
        for r in engine.start_activities(reqs).await {
            r.unwrap();
        }
        scheduled += size;
    }
}

/// Resident set size of a process (`self`, or a pid), in MiB.
pub fn rss_mib(pid: &str) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// Peak resident set size of a process, in MiB.
pub fn peak_rss_mib(pid: &str) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A `kB` line of /proc/<pid>/status, in MiB.
fn status_mib(pid: &str, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// A `usize` from the environment, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds (user + system) a process (`self`, or a pid) has used so far.
pub fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// Waits until the server's `default` queue has nothing waiting or
/// running, looking every `every`.
pub async fn drained(addr: &str, every: Duration) {
    use sluice::api::pb;
    let channel = tonic::transport::Channel::from_shared(addr.to_string()).unwrap().connect().await.unwrap();
    let mut ops = pb::operator_service_client::OperatorServiceClient::new(channel);
    loop {
        let q = ops
            .describe_task_queue(pb::DescribeTaskQueueRequest { task_queue: "default".into(), closed_counts: false })
            .await
            .unwrap()
            .into_inner();
        if q.backlog == 0 && q.running == 0 {
            return;
        }
        tokio::time::sleep(every).await;
    }
}
