//! Helpers shared by the sandbox tests.
#![allow(dead_code)]

pub mod postgres;
pub mod server;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use sluice::payload::Payload;
use sluice::sandbox::{
    ActivityInfo, Allocation, AttemptControl, AttemptEvent, AttemptOutcome, AttemptReport, AttemptRequest, Grants,
    Limits, LoadedComponent, Sandbox, SandboxConfig,
};
use tokio::sync::mpsc;

/// Compiled components are cached here across test runs.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

/// One sandbox shared by every test: it must stay usable whatever the
/// guests of other tests did to it.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        Sandbox::new(SandboxConfig {
            allocation: Allocation::Pooling { instances: 32 },
            cache_dir: Some(cache_dir()),
            ..SandboxConfig::default()
        })
        .expect("sandbox")
    })
}

pub fn load(path: &str) -> Arc<LoadedComponent> {
    sandbox().load(path.as_ref(), false).expect("component loads")
}

pub fn info(attempt: u32) -> ActivityInfo {
    ActivityInfo {
        activity_id: "act-1".into(),
        run_id: "run-1".into(),
        activity_type: "test".into(),
        task_queue: "q".into(),
        attempt,
        scheduled_time_ms: 1_000,
        current_attempt_scheduled_time_ms: 2_000,
        started_time_ms: 3_000,
        schedule_to_close_deadline_ms: Some(100_000),
        start_to_close_deadline_ms: Some(50_000),
        heartbeat_timeout_ms: Some(10_000),
        host_task_queue: "q@host".into(),
    }
}

pub fn request(input: Value) -> AttemptRequest {
    AttemptRequest {
        info: info(1),
        input: Payload::json(&input),
        last_heartbeat: None,
        task_token: "token-1".into(),
        limits: Limits { timeout: Some(Duration::from_secs(20)), ..Limits::default() },
        grants: Grants::default(),
        control: Arc::new(AttemptControl::new()),
        events: None,
        warm: None,
    }
}

/// Runs `req` and returns the report plus every event it emitted.
pub async fn run_with_events(
    component: &LoadedComponent,
    mut req: AttemptRequest,
) -> (AttemptReport, Vec<AttemptEvent>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    req.events = Some(tx);
    let report = component.run(req).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (report, events)
}

pub fn completed(report: &AttemptReport) -> Value {
    match &report.outcome {
        AttemptOutcome::Completed { result } => serde_json::from_slice(&result.data).unwrap(),
        other => panic!("expected completion, got {other:?}"),
    }
}
