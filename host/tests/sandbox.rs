//! The sandbox against real compiled guests: outcomes, host imports, and
//! every limit failing its own attempt with a categorised error while the
//! shared sandbox stays usable.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sluice::payload::Payload;
use sluice::sandbox::{
    AttemptControl, AttemptEvent, AttemptOutcome, DirGrant, FailureKind, InterruptReason, Limits, LogLevel, WarmPool,
};
use sluice_test_programs::{HELLO, MISBEHAVING, RESUMABLE};

fn sandbox_failure(report: &sluice::sandbox::AttemptReport) -> (FailureKind, String) {
    match &report.outcome {
        AttemptOutcome::SandboxFailure(f) => (f.kind, f.message.clone()),
        other => panic!("expected a sandbox failure, got {other:?}"),
    }
}

/// After any failure the same sandbox still runs a healthy guest.
async fn assert_host_still_usable() {
    let report = load(HELLO).run(request(json!({"name": "again"}))).await;
    assert_eq!(completed(&report), json!({"greeting": "Hello, again!"}));
}

async fn misbehave(input: Value, limits: Limits) -> sluice::sandbox::AttemptReport {
    let mut req = request(input);
    req.limits = limits;
    let report = load(MISBEHAVING).run(req).await;
    assert_host_still_usable().await;
    report
}

fn limits() -> Limits {
    Limits { timeout: Some(Duration::from_secs(20)), ..Limits::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_transforms_input_to_output() {
    let (report, events) = run_with_events(&load(HELLO), request(json!({"name": "Ada"}))).await;
    assert_eq!(completed(&report), json!({"greeting": "Hello, Ada!"}));
    assert!(
        matches!(&events[..], [
            AttemptEvent::Log { level: LogLevel::Info, message: log, fields },
            AttemptEvent::Progress { percent: Some(p), message },
        ] if log == "greeting" && fields == &[("name".to_string(), "Ada".to_string())] && *p == 100.0 && message == "greeted"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_against_sluice_activity_0_1_0_still_loads_and_runs() {
    // hello as built before the contract's 0.2.0 (kept as a fixture).
    let old = load(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello-sluice-activity-0.1.0.wasm"));
    assert_eq!((old.contract(), load(HELLO).contract()), ("0.1.0", "0.2.0"));
    let (report, events) = run_with_events(&old, request(json!({"name": "Old"}))).await;
    assert_eq!(completed(&report), json!({"greeting": "Hello, Old!"}));
    assert_eq!(events.len(), 2, "its log and progress imports work: {events:?}");
    let report = old.run(request(json!({"name": ""}))).await;
    let AttemptOutcome::Failed(e) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!((e.error_type.as_str(), e.non_retryable), ("EmptyName", true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_of_a_paused_execution_stops_the_guest_with_a_paused_error() {
    let req = request(json!({"from": 0, "to": 1000, "step_ms": 1}));
    req.control.set_paused(true);
    let report = load(RESUMABLE).run(req).await;
    let AttemptOutcome::Failed(e) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(e.error_type, "Paused");
    assert!(!e.non_retryable);
    assert_eq!(report.last_heartbeat.unwrap().to_json_value(), json!({"next": 1}), "stopped at its first heartbeat");
}

#[tokio::test(flavor = "multi_thread")]
async fn application_error_keeps_type_and_non_retryable_flag() {
    let report = load(HELLO).run(request(json!({"name": " "}))).await;
    let AttemptOutcome::Failed(e) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(e.error_type, "EmptyName");
    assert!(e.non_retryable);
    assert_eq!(e.message, "name must not be empty");

    let report =
        misbehave(json!({"do": "fail", "type": "Flaky", "message": "try later", "retry_ms": 1500}), limits()).await;
    let AttemptOutcome::Failed(e) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!((e.error_type.as_str(), e.non_retryable), ("Flaky", false));
    assert_eq!(e.next_retry_delay, Some(Duration::from_millis(1500)));
    assert_eq!(e.details.as_ref().unwrap().to_json_value(), json!({"why": "asked to"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn input_that_does_not_decode_is_a_non_retryable_invalid_input_error() {
    let report = load(HELLO).run(request(json!({"nom": "Ada"}))).await;
    let AttemptOutcome::Failed(e) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(e.error_type, "InvalidInput");
    assert!(e.non_retryable);
    assert!(e.message.contains("missing field `name`"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_and_progress_reach_the_host_in_order() {
    let (report, events) = run_with_events(&load(RESUMABLE), request(json!({"from": 0, "to": 3}))).await;
    assert_eq!(completed(&report), json!({"started_at": 0, "counted": 3, "sum": 3}));
    let seen: Vec<String> = events
        .iter()
        .map(|e| match e {
            AttemptEvent::Heartbeat { details } => format!("hb {}", details.as_ref().unwrap()),
            AttemptEvent::Progress { percent, message } => {
                format!("p {} {message}", percent.unwrap().round())
            }
            AttemptEvent::Log { message, .. } => format!("log {message}"),
        })
        .collect();
    assert_eq!(
        seen,
        [
            "hb {\"next\":1}",
            "p 33 counted 1",
            "hb {\"next\":2}",
            "p 67 counted 2",
            "hb {\"next\":3}",
            "p 100 counted 3",
        ]
    );
    assert_eq!(report.last_heartbeat.unwrap().to_json_value(), json!({"next": 3}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_attempt_resumes_from_the_last_heartbeat() {
    let component = load(RESUMABLE);
    let first = component.run(request(json!({"from": 10, "to": 20, "fail_at": 14}))).await;
    let AttemptOutcome::Failed(e) = &first.outcome else { panic!("{:?}", first.outcome) };
    assert_eq!(e.error_type, "Interrupted");
    let details = first.last_heartbeat.clone().expect("heartbeat details kept");
    assert_eq!(details.to_json_value(), json!({"next": 14}));

    let mut retry = request(json!({"from": 10, "to": 20, "fail_at": 14}));
    retry.info = info(2);
    retry.last_heartbeat = Some(details);
    let second = component.run(retry).await;
    assert_eq!(completed(&second), json!({"started_at": 14, "counted": 6, "sum": (14..20).sum::<u64>()}));
}

#[tokio::test(flavor = "multi_thread")]
async fn info_and_task_token_reach_the_guest() {
    let report = load(MISBEHAVING).run(request(json!({"do": "info"}))).await;
    let v = completed(&report);
    assert_eq!(v["activity_id"], "act-1");
    assert_eq!(v["run_id"], "run-1");
    assert_eq!(v["activity_type"], "test");
    assert_eq!(v["task_queue"], "q");
    assert_eq!(v["host_task_queue"], "q@host");
    assert_eq!(v["attempt"], 1);
    assert_eq!(v["heartbeat_timeout_ms"], 10_000);
    assert_eq!(v["start_to_close_deadline_ms"], 50_000);
    assert_eq!(v["task_token"], "token-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_leaves_the_attempt_to_be_completed_externally() {
    let (report, events) = run_with_events(&load(MISBEHAVING), request(json!({"do": "pending"}))).await;
    assert!(matches!(report.outcome, AttemptOutcome::Pending), "{:?}", report.outcome);
    assert!(matches!(&events[..], [AttemptEvent::Log { message, fields, .. }]
        if message == "handing off" && fields == &[("token".to_string(), "token-1".to_string())]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_is_categorised_and_a_panic_message_is_kept() {
    let report = misbehave(json!({"do": "trap"}), limits()).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::Trap);
    assert!(message.contains("unreachable"), "{message}");

    let report = misbehave(json!({"do": "panic", "message": "kaboom"}), limits()).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::Trap);
    assert!(message.ends_with("after a panic: kaboom"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_interrupted_at_its_deadline() {
    let limits = Limits { timeout: Some(Duration::from_millis(300)), ..Limits::default() };
    let report = misbehave(json!({"do": "loop"}), limits).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::Timeout);
    assert_eq!(message, "the activity ran past its 300ms deadline and was interrupted");
    assert!(report.duration < Duration::from_secs(5), "interrupted promptly: {:?}", report.duration);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_blocked_in_the_host_is_interrupted_at_its_deadline() {
    let limits = Limits { timeout: Some(Duration::from_millis(300)), ..Limits::default() };
    let report = misbehave(json!({"do": "sleep", "ms": 60_000}), limits).await;
    assert_eq!(sandbox_failure(&report).0, FailureKind::Timeout);
    assert!(report.duration < Duration::from_secs(5), "{:?}", report.duration);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_over_the_cap_is_out_of_memory() {
    let limits = Limits { memory: 32 << 20, ..limits() };
    let report = misbehave(json!({"do": "memory", "mib": 64}), limits.clone()).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::OutOfMemory);
    assert!(message.starts_with("the activity needed more than its memory limit of 32.0 MiB"), "{message}");

    // Under the cap the same guest is fine.
    let report = misbehave(json!({"do": "memory", "mib": 8}), limits).await;
    assert_eq!(completed(&report), json!({"allocated_mib": 8}));
}

#[tokio::test(flavor = "multi_thread")]
async fn runaway_recursion_is_a_stack_overflow() {
    let report = misbehave(json!({"do": "recurse"}), limits()).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::StackOverflow);
    assert_eq!(message, "the activity overflowed its stack (runaway recursion?)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_empty_log_records_hits_the_output_limit() {
    // Each record counts at least 64 bytes: 20,000 of them are over 1 MiB.
    let report = misbehave(json!({"do": "logs", "count": 20_000}), limits()).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::OutputLimit);
    assert_eq!(message, "the activity wrote more than 1048576 bytes of log records (each counts at least 64 bytes)");
    // Under the cap they are fine.
    let report = misbehave(json!({"do": "logs", "count": 1_000}), limits()).await;
    assert_eq!(completed(&report), json!({"logs": 1000}));
}

#[tokio::test(flavor = "multi_thread")]
async fn flooding_stdout_hits_the_output_limit_and_is_truncated() {
    let limits = Limits { max_output: 64 * 1024, ..limits() };
    let report = misbehave(json!({"do": "flood"}), limits).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::OutputLimit);
    assert!(message.contains("more than 64.0 KiB to stdout or stderr"), "{message}");
    assert!(report.stdout.truncated);
    assert_eq!(report.stdout.bytes.len(), 64 * 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_and_stderr_are_captured() {
    let report = misbehave(json!({"do": "print", "stdout": "to out\n", "stderr": "to err\n"}), limits()).await;
    completed(&report);
    assert_eq!(report.stdout.bytes, b"to out\n");
    assert_eq!(report.stderr.bytes, b"to err\n");
    assert!(!report.stdout.truncated && !report.stderr.truncated);
}

#[tokio::test(flavor = "multi_thread")]
async fn results_and_heartbeat_details_over_the_payload_cap_fail_the_attempt() {
    let limits = Limits { max_payload: 1000, ..limits() };
    let report = misbehave(json!({"do": "output", "bytes": 2000}), limits.clone()).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::PayloadTooLarge);
    assert_eq!(message, "the result is 2002 bytes, over the limit of 1000 bytes");

    let report = misbehave(json!({"do": "heartbeat", "bytes": 2000}), limits).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::PayloadTooLarge);
    assert_eq!(message, "heartbeat details is 2002 bytes, over the limit of 1000 bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn fuel_bounds_the_instructions_a_guest_may_run() {
    let component = sandbox().load(MISBEHAVING.as_ref(), true).unwrap();
    let mut req = request(json!({"do": "loop"}));
    req.limits.fuel = Some(5_000_000);
    let report = component.run(req).await;
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::FuelExhausted);
    assert_eq!(message, "the activity used up its fuel (5000000 units)");
    assert_host_still_usable().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_is_denied_and_the_denial_recorded() {
    let report = misbehave(json!({"do": "connect", "addr": "127.0.0.1:9"}), limits()).await;
    let v = completed(&report);
    assert!(v["error"].as_str().unwrap().contains("Permission denied"), "{v}");
    assert_eq!(report.denials, ["capability denied: connect TCP 127.0.0.1:9 (no network access is granted)"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_invisible_unless_granted_and_read_only_unless_said() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.txt"), "secret").unwrap();
    let host_path = dir.path().join("data.txt").display().to_string();

    // No grant: the file does not exist for the guest.
    let report = misbehave(json!({"do": "read-file", "path": host_path}), limits()).await;
    assert!(completed(&report)["error"].as_str().unwrap().contains("No such file"));

    // Read-only grant: reading works, writing does not.
    let grant = DirGrant::parse(&format!("{}::/data", dir.path().display()), false).unwrap();
    let mut req = request(json!({"do": "read-file", "path": "/data/data.txt"}));
    req.grants.dirs.push(grant.clone());
    assert_eq!(completed(&load(MISBEHAVING).run(req).await), json!({"text": "secret"}));
    let mut req = request(json!({"do": "write-file", "path": "/data/new.txt", "text": "x"}));
    req.grants.dirs.push(grant);
    let v = completed(&load(MISBEHAVING).run(req).await);
    assert!(v["error"].as_str().is_some(), "write must fail on a read-only grant: {v}");
    assert!(!dir.path().join("new.txt").exists());

    // Read-write grant: writing works.
    let grant = DirGrant::parse(&format!("{}::/data", dir.path().display()), true).unwrap();
    let mut req = request(json!({"do": "write-file", "path": "/data/new.txt", "text": "hi"}));
    req.grants.dirs.push(grant);
    assert_eq!(completed(&load(MISBEHAVING).run(req).await), json!({"written": true}));
    assert_eq!(std::fs::read_to_string(dir.path().join("new.txt")).unwrap(), "hi");
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_variables_are_explicit() {
    // SAFETY: no other code of this test binary reads or writes this
    // variable, and setenv races only with concurrent readers of the same name.
    unsafe { std::env::set_var("SLUICE_TEST_HOST_SECRET", "leak") };
    let mut req = request(json!({"do": "env"}));
    req.grants.env.push(("GREETING".into(), "hi".into()));
    let report = load(MISBEHAVING).run(req).await;
    assert_eq!(completed(&report), json!({"GREETING": "hi"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_reaches_the_guest_on_its_next_heartbeat() {
    let control = Arc::new(AttemptControl::new());
    let mut req = request(json!({"do": "wait-cancel", "ms": 20}));
    req.control = control.clone();
    let run = tokio::spawn(async move { load(MISBEHAVING).run(req).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.request_cancel();
    let report = run.await.unwrap();
    assert!(matches!(report.outcome, AttemptOutcome::Cancelled { .. }), "{:?}", report.outcome);
    assert!(report.duration < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_ignoring_cancellation_is_interrupted() {
    let control = Arc::new(AttemptControl::new());
    let mut req = request(json!({"do": "ignore-cancel", "ms": 20}));
    req.control = control.clone();
    let run = tokio::spawn(async move { load(MISBEHAVING).run(req).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.request_cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    control.interrupt(InterruptReason::Cancelled);
    let report = run.await.unwrap();
    let (kind, message) = sandbox_failure(&report);
    assert_eq!(kind, FailureKind::Cancelled);
    assert_eq!(message, "the activity did not stop after cancellation was requested; interrupted");
}

#[tokio::test(flavor = "multi_thread")]
async fn many_attempts_run_concurrently() {
    let component = load(HELLO);
    let runs: Vec<_> = (0..64)
        .map(|i| {
            let component = component.clone();
            tokio::spawn(async move { component.run(request(json!({"name": format!("n{i}")}))).await })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        assert_eq!(completed(&run.await.unwrap()), json!({"greeting": format!("Hello, n{i}!")}));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_input_is_rejected_by_the_payload_check() {
    let input = Payload::json(&"x".repeat(100));
    let err = input.check_size("the input", 50).unwrap_err();
    assert_eq!(err.to_string(), "the input is 102 bytes, over the limit of 50 bytes");
}

/// Runs `input` on the misbehaving guest through `pool`.
async fn on_pool(pool: &Arc<WarmPool>, input: Value) -> sluice::sandbox::AttemptReport {
    let mut req = request(input);
    req.warm = Some(pool.clone());
    load(MISBEHAVING).run(req).await
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_instances_are_reused_only_after_a_normal_end() {
    // Without a pool every attempt has a fresh instance.
    for _ in 0..2 {
        let report = load(MISBEHAVING).run(request(json!({"do": "count"}))).await;
        assert_eq!(completed(&report), json!({"calls": 1}));
        assert!(!report.warm);
    }
    let pool = Arc::new(WarmPool::new(4));
    for n in 1..=3 {
        let report = on_pool(&pool, json!({"do": "count"})).await;
        assert_eq!(completed(&report), json!({"calls": n}), "module state survives in a warm instance");
        assert_eq!(report.warm, n > 1);
    }
    assert_eq!(pool.idle(), 1);

    // Each attempt sees only its own output, info and heartbeat details.
    let report = on_pool(&pool, json!({"do": "print", "stdout": "first"})).await;
    assert_eq!(String::from_utf8_lossy(&report.stdout.bytes), "first");
    let mut req = request(json!({"do": "info"}));
    req.info.activity_id = "second".into();
    req.warm = Some(pool.clone());
    let report = load(MISBEHAVING).run(req).await;
    assert!(report.warm && report.stdout.bytes.is_empty());
    assert_eq!(completed(&report)["activity_id"], "second");

    // A trap, an application error and a timeout: only the error keeps it.
    let report = on_pool(&pool, json!({"do": "fail", "message": "no"})).await;
    assert!(matches!(report.outcome, AttemptOutcome::Failed(_)) && report.warm);
    assert_eq!(pool.idle(), 1);
    let report = on_pool(&pool, json!({"do": "panic", "message": "boom"})).await;
    assert!(matches!(report.outcome, AttemptOutcome::SandboxFailure(_)));
    assert_eq!(pool.idle(), 0, "a trapped instance is dropped");
    let report = on_pool(&pool, json!({"do": "count"})).await;
    assert_eq!(completed(&report), json!({"calls": 1}));
    assert!(!report.warm);

    let mut req = request(json!({"do": "loop"}));
    req.limits.timeout = Some(Duration::from_millis(200));
    req.warm = Some(pool.clone());
    let report = load(MISBEHAVING).run(req).await;
    let AttemptOutcome::SandboxFailure(f) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(f.kind, FailureKind::Timeout);
    assert_eq!(pool.idle(), 0, "an interrupted instance is dropped");
    assert_host_still_usable().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_instance_gets_each_attempts_output_cap() {
    let pool = Arc::new(WarmPool::new(1));
    let limits = Limits { max_output: 1024, ..limits() };
    for n in 0..6 {
        let mut req = request(json!({"do": "print", "stdout": "x".repeat(700)}));
        req.limits = limits.clone();
        req.warm = Some(pool.clone());
        let report = load(MISBEHAVING).run(req).await;
        assert_eq!(completed(&report), json!({"printed": true}), "attempt {n}: {:?}", report.outcome);
        assert_eq!(report.stdout.bytes.len(), 700);
        assert!(!report.stdout.truncated);
    }
    // Over the cap in one attempt: the attempt fails as in a fresh instance.
    let mut req = request(json!({"do": "flood"}));
    req.limits = limits;
    req.warm = Some(pool.clone());
    let report = load(MISBEHAVING).run(req).await;
    let AttemptOutcome::SandboxFailure(f) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(f.kind, FailureKind::OutputLimit);
    assert_eq!(pool.idle(), 0);
}
