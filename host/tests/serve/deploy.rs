//! Deploying to a running server with no types, and operating what runs:
//! versions, rollback, pinned starts, bad uploads, pause / update / reset,
//! batches — all through the real CLI against the real binary.

use serde_json::{Value, json};
use sluice::api::pb;
use sluice::api::pb::operator_service_client::OperatorServiceClient;
use sluice_test_programs::{HELLO, RESUMABLE};

use super::common::server::*;

/// A server whose config names no activity types.
fn empty_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cache = super::common::cache_dir();
    let config = format!(
        "[store]\npath = \"sluice.db\"\n[sandbox]\npool_instances = 32\ncache_dir = \"{}\"\nmax_component_size = \"64MiB\"\n",
        cache.display()
    );
    std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
    (Server::start_in(dir.path()), dir)
}

fn ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "sluice {args:?} failed: {}{text}", String::from_utf8_lossy(&out.stderr));
    text
}

fn fails(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(!out.status.success(), "sluice {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn json_of(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(server, &all)).unwrap()
}

fn version_of_attempts(server: &Server, id: &str) -> Vec<String> {
    let d = json_of(server, &["describe", id]);
    d["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "started")
        .map(|h| h["detail"]["version"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_v2_while_v1_runs_then_roll_back_with_no_restart() {
    let (mut server, dir) = empty_server();
    assert!(ok(&server, &["types"]).contains("no activity types"));
    // v1 counts slowly (the resumable guest); v2 greets (the hello guest).
    let out = ok(&server, &["deploy", RESUMABLE, "--type", "greet", "--set", "retry.maximum_attempts=1"]);
    assert!(out.contains("deployed greet v1"), "{out}");
    ok(&server, &["start", "greet", "--id", "slow", "--input", r#"{"to": 15, "step_ms": 100}"#]);
    let mut c = server.activities().await;
    wait_status(&mut c, "slow", pb::ActivityStatus::Started).await;

    let out = ok(&server, &["deploy", HELLO, "--type", "greet", "--version", "v2"]);
    assert!(out.contains("new attempts of greet run v2"), "{out}");
    let fresh = ok(&server, &["start", "greet", "--id", "fresh", "--input", r#"{"name": "Ada"}"#, "--wait"]);
    assert!(fresh.contains("Hello, Ada!"), "{fresh}");
    // The running attempt finished on v1, undisturbed.
    let slow = result(&mut c, "slow", 30.0).await;
    assert_eq!(decode(&slow.result)["counted"], 15);
    assert_eq!(version_of_attempts(&server, "slow"), ["v1"]);
    assert_eq!(version_of_attempts(&server, "fresh"), ["v2"]);

    let t = json_of(&server, &["type", "describe", "greet"]);
    assert_eq!(t["current_version"], "v2");
    let versions = t["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["size"], std::fs::metadata(HELLO).unwrap().len());
    assert_eq!(versions[1]["hash"].as_str().unwrap().len(), 64);
    assert!(versions[0]["deployed_by"].as_str().unwrap().contains('@'));
    assert!(dir.path().join("components").join(format!("{}.wasm", versions[1]["hash"].as_str().unwrap())).exists());

    // A restart keeps the types and their current version.
    server.stop();
    let server = Server::start_in(dir.path());
    let again = ok(&server, &["start", "greet", "--input", r#"{"name": "Bo"}"#, "--wait"]);
    assert!(again.contains("Hello, Bo!"), "{again}");

    // Rollback: new attempts run v1 again; a start may pin v2.
    let out = ok(&server, &["deploy", "--rollback", "greet"]);
    assert!(out.contains("rolled greet back to v1"), "{out}");
    let back = ok(&server, &["start", "greet", "--input", r#"{"to": 2, "step_ms": 1}"#, "--wait"]);
    assert!(back.contains("counted"), "{back}");
    let pinned =
        ok(&server, &["start", "greet", "--id", "pin", "--version", "v2", "--input", r#"{"name": "Cy"}"#, "--wait"]);
    assert!(pinned.contains("Hello, Cy!"), "{pinned}");
    assert_eq!(version_of_attempts(&server, "pin"), ["v2"]);
    let err = fails(&server, &["start", "greet", "--version", "v9"]);
    assert!(err.contains("activity type greet has no version v9 (it has v1, v2)"), "{err}");

    // Removing: not the current version; an unused one goes.
    let err = fails(&server, &["type", "remove-version", "greet", "v1"]);
    assert!(err.contains("version v1 is the current version of greet"), "{err}");
    ok(&server, &["type", "remove-version", "greet", "v2"]);
    assert_eq!(json_of(&server, &["type", "describe", "greet"])["versions"].as_array().unwrap().len(), 1);

    // Settings at run time; grants are refused to nobody when the server has no tokens.
    let out = ok(&server, &["type", "update", "greet", "--set", "slots=2", "--set", "retry.maximum_attempts=5"]);
    assert!(out.contains("\"slots\":2"), "{out}");
    let err = fails(&server, &["type", "update", "greet", "--set", "slots=0"]);
    assert!(err.contains("activities.greet.slots: must be at least 1"), "{err}");
}

async fn upload(server: &Server, header: pb::DeployHeader, data: Vec<Vec<u8>>) -> tonic::Status {
    let mut c = OperatorServiceClient::connect(server.addr.clone()).await.unwrap();
    let mut chunks = vec![pb::DeployChunk { part: Some(pb::deploy_chunk::Part::Header(header)) }];
    chunks.extend(data.into_iter().map(|d| pb::DeployChunk { part: Some(pb::deploy_chunk::Part::Data(d)) }));
    c.deploy_component(tokio_stream::iter(chunks)).await.expect_err("the upload is refused")
}

fn header(size: usize) -> pb::DeployHeader {
    pb::DeployHeader { activity_type: "bad".into(), size: size as u64, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_get_precise_errors_and_change_nothing() {
    let (server, dir) = empty_server();
    let check = |s: tonic::Status, code: tonic::Code, text: &str| {
        assert_eq!(s.code(), code, "{s:?}");
        assert!(s.message().contains(text), "{:?} does not contain {text:?}", s.message());
        assert!(!s.message().contains(".upload-"), "the message names the upload, not its file: {}", s.message());
    };
    let text = b"hello, I am text".to_vec();
    check(
        upload(&server, header(text.len()), vec![text]).await,
        tonic::Code::InvalidArgument,
        "is not a WebAssembly file",
    );
    let core = b"\0asm\x01\0\0\0".to_vec();
    check(
        upload(&server, header(core.len()), vec![core]).await,
        tonic::Code::InvalidArgument,
        "is a core WebAssembly module",
    );
    let empty = b"\0asm\x0d\0\x01\0".to_vec();
    check(
        upload(&server, header(empty.len()), vec![empty]).await,
        tonic::Code::InvalidArgument,
        "does not export `sluice:activity/activity@0.2.0`",
    );
    check(
        upload(&server, header(65 << 20), vec![]).await,
        tonic::Code::ResourceExhausted,
        "over the limit of 67108864",
    );
    let hello = std::fs::read(HELLO).unwrap();
    let half = hello[..hello.len() / 2].to_vec();
    check(upload(&server, header(hello.len()), vec![half]).await, tonic::Code::InvalidArgument, "truncated");
    check(
        upload(&server, header(3), vec![hello.clone()]).await,
        tonic::Code::InvalidArgument,
        "longer than its header's size",
    );
    let no_header = {
        let mut c = OperatorServiceClient::connect(server.addr.clone()).await.unwrap();
        let chunks = vec![pb::DeployChunk { part: Some(pb::deploy_chunk::Part::Data(vec![0])) }];
        c.deploy_component(tokio_stream::iter(chunks)).await.unwrap_err()
    };
    check(no_header, tonic::Code::InvalidArgument, "must be its header");
    let bad_label = pb::DeployHeader { version: "has space".into(), ..header(hello.len()) };
    check(upload(&server, bad_label, vec![hello.clone()]).await, tonic::Code::InvalidArgument, "version label");
    let bad_set = pb::DeployHeader { set: vec!["colour=red".into()], ..header(hello.len()) };
    check(upload(&server, bad_set, vec![hello.clone()]).await, tonic::Code::InvalidArgument, "unknown field `colour`");
    // Nothing was deployed, and no upload was left behind.
    assert!(ok(&server, &["types"]).contains("no activity types"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("components")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A label that exists with other content.
    ok(&server, &["deploy", HELLO, "--type", "bad", "--version", "v1"]);
    let err = fails(&server, &["deploy", RESUMABLE, "--type", "bad", "--version", "v1"]);
    assert!(err.contains("version v1 of bad exists with other content"), "{err}");
    let t = json_of(&server, &["type", "describe", "bad"]);
    assert_eq!(t["versions"].as_array().unwrap().len(), 1);
    // The same content again is the same version.
    let out = ok(&server, &["deploy", HELLO, "--type", "bad"]);
    assert!(out.contains("deployed bad v1"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_execution_is_fixed_with_pause_update_and_reset() {
    let (server, _dir) = Server::start("");
    // Sent to a queue nobody serves: it waits, as if failing elsewhere.
    ok(&server, &["start", "hello", "--id", "stuck", "--queue", "nowhere", "--input", r#"{"name": "Di"}"#]);
    let out = ok(&server, &["pause", "stuck"]);
    assert!(out.contains("paused stuck: scheduled"), "{out}");
    let out = ok(&server, &["update-options", "stuck", "--queue", "default", "--max-attempts", "2"]);
    assert!(out.contains("queue default"), "{out}");
    let d = json_of(&server, &["describe", "stuck"]);
    assert_eq!(d["status"], "scheduled", "still paused: {d}");
    let out = ok(&server, &["reset", "stuck"]);
    assert!(out.contains("reset stuck: scheduled (attempt 1 of the policy)"), "{out}");
    let r = ok(&server, &["result", "stuck", "--wait", "20s"]);
    assert!(r.contains("Hello, Di!"), "{r}");
    let err = fails(&server, &["unpause", "stuck"]);
    assert!(err.contains("activity stuck is already completed"), "{err}");
    let err = fails(&server, &["update-options", "stuck"]);
    assert!(err.contains("nothing to change"), "{err}");

    // Batches: a dry run counts, --yes applies.
    for i in 0..3 {
        ok(&server, &["start", "hello", "--id", &format!("b{i}"), "--queue", "idle", "--input", r#"{"name": "E"}"#]);
    }
    let out = ok(&server, &["pause", "--query", r#"queue = "idle" AND status = "scheduled""#]);
    assert!(out.contains("3 executions match; run again with --yes to pause them"), "{out}");
    assert_eq!(json_of(&server, &["describe", "b0"])["paused"], json!(false));
    let out = ok(&server, &["terminate", "--query", r#"queue = "idle""#, "--yes"]);
    assert!(out.contains("terminate: 3 matched, 3 done, 0 refused"), "{out}");
    let out = ok(&server, &["delete", "--query", r#"queue = "idle" AND status = "terminated""#, "--yes"]);
    assert!(out.contains("3 done"), "{out}");
    let err = fails(&server, &["describe", "b1"]);
    assert!(err.contains("no activity b1"), "{err}");
    let err = fails(&server, &["cancel", "--query", "colour = red", "--yes"]);
    assert!(err.contains("unknown field \"colour\""), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_over_the_api_need_an_operator_token() {
    let (client, operator) = (sluice::api::hash_token("client"), sluice::api::hash_token("root"));
    let auth = format!("[server.auth]\ntokens_sha256 = [\"{client}\"]\noperator_tokens_sha256 = [\"{operator}\"]\n");
    let (server, _dir) = Server::start(&auth);
    let out = ok(&server, &["deploy", HELLO, "--type", "t", "--set", "slots=2", "--token", "client"]);
    assert!(out.contains("deployed t v1"), "{out}");
    let who = json_of(&server, &["type", "describe", "t", "--token", "client"]);
    assert!(who["versions"][0]["deployed_by"].as_str().unwrap().contains(&format!("token {}", &client[..8])), "{who}");
    for set in ["env.API_KEY=x", "allow_http=[\"api.example.com\"]", "dirs=[\"/tmp\"]"] {
        let err = fails(&server, &["type", "update", "t", "--set", set, "--token", "client"]);
        assert!(err.contains("needs an operator token") && err.contains("PermissionDenied"), "{err}");
    }
    let err = fails(&server, &["deploy", HELLO, "--type", "t", "--set", "env.A=1", "--token", "client"]);
    assert!(err.contains("needs an operator token"), "{err}");
    // The operator token may, and is accepted for everything else too.
    ok(&server, &["type", "update", "t", "--set", "env.API_KEY=x", "--token", "root"]);
    let t = json_of(&server, &["type", "describe", "t", "--token", "root"]);
    assert_eq!(t["env"], json!(["API_KEY"]));
    assert_eq!(t["versions"].as_array().unwrap().len(), 1, "the refused deploy added nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_guest_stops_at_its_next_heartbeat_and_resumes_when_unpaused() {
    let (server, _dir) = Server::start("");
    ok(&server, &["start", "resumable", "--id", "long", "--input", r#"{"to": 100, "step_ms": 50}"#]);
    let mut c = server.activities().await;
    wait_status(&mut c, "long", pb::ActivityStatus::Started).await;
    ok(&server, &["pause", "long"]);
    // The guest learns it on its next heartbeat and stops; the retry waits.
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let d = json_of(&server, &["describe", "long"]);
            if d["status"] == "scheduled" {
                return d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the paused guest stops");
    assert_eq!(stopped["paused"], json!(true));
    assert_eq!(stopped["last_failure"]["error_type"], "Paused", "{stopped}");
    assert_eq!(stopped["policy_attempt"], 1, "the stopped attempt does not count");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(json_of(&server, &["describe", "long"])["status"], "scheduled", "nothing runs while paused");
    ok(&server, &["unpause", "long"]);
    let done = result(&mut c, "long", 30.0).await;
    let out = decode(&done.result);
    assert_eq!(out["counted"], json!(100 - out["started_at"].as_i64().unwrap()), "{out}");
    assert!(out["started_at"].as_i64().unwrap() > 0, "it resumed from its heartbeat: {out}");
}
