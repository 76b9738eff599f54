//! The official `temporalio` Python SDK (PyPI 1.35.0) against the real
//! server: a Temporal client starts, follows, lists, counts, cancels and
//! terminates activities whose types are WASM guests; a Temporal worker
//! serves a Sluice queue (started from the sluice CLI and from the Temporal
//! client), with heartbeats, retries, non-retryable errors, cancellation
//! and async completion; errors are the SDK's own exception types. The
//! scenarios are `tests/temporal/sdk_test.py`.

use std::process::Command;

use sluice_test_programs::MISBEHAVING;

use super::common::server::Server;

fn python_with_temporalio() -> &'static str {
    let found = Command::new("python3").args(["-c", "import temporalio"]).status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "these tests need the temporalio SDK: python3 -m pip install temporalio==1.35.0"
    );
    "python3"
}

#[test]
fn the_temporalio_sdk_starts_serves_and_completes_sluice_activities() {
    let python = python_with_temporalio();
    let extra = format!(
        "[activities.sleepy]\ncomponent = \"{MISBEHAVING}\"\nstart_to_close_timeout = \"30s\"\ncancel_grace = \"500ms\"\n"
    );
    let (server, _dir) = Server::start(&extra);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/temporal/sdk_test.py");
    let address = server.addr.trim_start_matches("http://");
    let out =
        Command::new(python).args([script, address, env!("CARGO_BIN_EXE_sluice")]).output().expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the SDK scenarios failed ({}):
{stdout}
{stderr}
server log:
{}",
        out.status,
        server.log()
    );
    for scenario in [
        "wasm types from a temporal client: ok",
        "a temporal worker serves a sluice queue: ok",
        "errors are the sdk's own: ok",
    ] {
        assert!(stdout.contains(scenario), "{scenario} did not run:\n{stdout}");
    }
}
