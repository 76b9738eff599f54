//! `sluice run` end to end: the real binary on real guests.

use std::process::{Command, Output};

use serde_json::{Value, json};
use sluice_test_programs::{HELLO, MISBEHAVING, RESUMABLE};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_CACHE_DIR", std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"))
        .output()
        .expect("run sluice")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

#[test]
fn hello_completes_with_its_result_on_stdout() {
    let out = sluice(&["run", HELLO, "--input", r#"{"name":"Ada"}"#]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert_eq!(text(&out.stdout), "{\"greeting\":\"Hello, Ada!\"}\n");
    assert!(stderr.contains("progress   100.0%  greeted"), "{stderr}");
    assert!(stderr.contains("completed in"), "{stderr}");
}

#[test]
fn an_application_error_exits_3_with_its_type() {
    let out = sluice(&["run", HELLO, "--input", r#"{"name":""}"#]);
    assert_eq!(code(&out), 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("application error EmptyName (non-retryable): name must not be empty"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn pending_exits_4() {
    let out = sluice(&["run", MISBEHAVING, "--input", r#"{"do":"pending"}"#]);
    assert_eq!(code(&out), 4);
    assert!(text(&out.stderr).contains("pending after"), "{}", text(&out.stderr));
}

#[test]
fn a_sandbox_failure_exits_6_with_its_category() {
    let out = sluice(&["run", MISBEHAVING, "--input", r#"{"do":"loop"}"#, "--timeout", "300ms"]);
    assert_eq!(code(&out), 6);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("sandbox failure (timeout)"), "{stderr}");
    assert!(stderr.contains("ran past its 300ms deadline and was interrupted"), "{stderr}");
}

#[test]
fn cancellation_is_delivered_on_the_next_heartbeat_and_exits_5() {
    let out = sluice(&["run", MISBEHAVING, "--input", r#"{"do":"wait-cancel","ms":20}"#, "--cancel-after", "150ms"]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 5, "{stderr}");
    assert!(stderr.contains("cancellation requested"), "{stderr}");
    assert!(stderr.contains("cancelled after"), "{stderr}");
}

#[test]
fn the_printed_heartbeat_details_resume_the_next_run() {
    let input = r#"{"from":0,"to":6,"fail_at":4}"#;
    let out = sluice(&["run", RESUMABLE, "--input", input]);
    assert_eq!(code(&out), 3);
    let stderr = text(&out.stderr);
    assert!(stderr.contains(r#"resume with --heartbeat-details '{"next":4}'"#), "{stderr}");

    let out = sluice(&["run", RESUMABLE, "--input", input, "--attempt", "2", "--heartbeat-details", r#"{"next":4}"#]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result, json!({"started_at": 4, "counted": 2, "sum": 9}));
}

#[test]
fn json_mode_prints_events_and_outcome_as_json_lines() {
    let out = sluice(&["run", RESUMABLE, "--input", r#"{"to":2}"#, "--json"]);
    assert_eq!(code(&out), 0);
    let lines: Vec<Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["heartbeat", "progress", "heartbeat", "progress", "outcome"]);
    assert_eq!(lines[0]["details"], json!({"next": 1}));
    let outcome = &lines[4];
    assert_eq!(outcome["status"], "completed");
    assert_eq!(outcome["result"], json!({"started_at": 0, "counted": 2, "sum": 1}));
    assert_eq!(outcome["last_heartbeat"], json!({"next": 2}));
}

#[test]
fn guest_output_and_denials_are_shown() {
    let out = sluice(&["run", MISBEHAVING, "--input", r#"{"do":"connect","addr":"127.0.0.1:9"}"#]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stderr).contains("capability denied: connect TCP 127.0.0.1:9 (no network access is granted)"));

    let out = sluice(&["run", MISBEHAVING, "--input", r#"{"do":"print","stdout":"one\ntwo\n","stderr":"oops\n"}"#]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("  stdout | one\n  stdout | two\n  stderr | oops\n"), "{stderr}");
}

#[test]
fn grants_are_given_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "granted").unwrap();
    let grant = format!("{}::/work", dir.path().display());
    let out = sluice(&["run", MISBEHAVING, "--dir", &grant, "--input", r#"{"do":"read-file","path":"/work/in.txt"}"#]);
    assert_eq!(text(&out.stdout), "{\"text\":\"granted\"}\n");
    let out = sluice(&["run", MISBEHAVING, "--env", "A=1", "--input", r#"{"do":"env"}"#]);
    assert_eq!(text(&out.stdout), "{\"A\":\"1\"}\n");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = sluice(&["run", HELLO, "--input", "{not json"]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).starts_with("error: --input is not valid JSON: key must be a string"),
        "{}",
        text(&out.stderr)
    );

    let out = sluice(&["run", "/nonexistent/x.wasm"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        text(&out.stderr),
        "error: cannot read component /nonexistent/x.wasm: No such file or directory (os error 2)\n"
    );

    let out = sluice(&["run", HELLO, "--dir", "/nonexistent-dir"]);
    assert_eq!(code(&out), 1);
    assert_eq!(text(&out.stderr), "error: cannot grant directory /nonexistent-dir: it is not a directory\n");

    let out = sluice(&["run", HELLO, "--env", "NOEQUALS"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("expected KEY=VALUE, got \"NOEQUALS\""), "{}", text(&out.stderr));

    let out = sluice(&["run", HELLO, "--memory", "lots"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("invalid value 'lots' for '--memory <MEMORY>'"), "{}", text(&out.stderr));

    let out = sluice(&["run", HELLO, "--input", &format!("\"{}\"", "x".repeat(3000)), "--max-payload", "1KiB"]);
    assert_eq!(code(&out), 1);
    assert_eq!(text(&out.stderr), "error: the input is 3002 bytes, over the limit of 1024 bytes\n");
}

#[test]
fn help_documents_the_exit_codes() {
    let out = sluice(&["run", "--help"]);
    assert_eq!(code(&out), 0);
    let help = text(&out.stdout);
    assert!(help.contains("4  the activity returned pending"), "{help}");
    assert!(help.contains("--heartbeat-details <JSON>"), "{help}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // `sluice hash-token` prints a line; its reader is gone before it does.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["hash-token", "secret"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no panic message");
}
