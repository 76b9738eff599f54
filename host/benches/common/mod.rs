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
        task_token: String::new(),
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
