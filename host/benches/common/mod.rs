//! Helpers shared by the benchmarks.

use std::time::Duration;

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
