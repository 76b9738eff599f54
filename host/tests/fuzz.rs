//! Structured fuzzing, bounded so it runs in CI (SLUICE_FUZZ_CASES scales
//! it): every RPC of an in-process server (the 14 unary ones and the
//! WatchActivity and WatchActivities streams) gets mutated and random request bytes; the config parser gets mutated configs; the component loader gets
//! mutated components. Whatever comes in: no panic, only the statuses the
//! proto documents (never INTERNAL or UNKNOWN), and the server still serves.
//! Inputs that once failed are kept in `proptest-regressions/` and replayed
//! first.

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Buf, BufMut};
use proptest::prelude::*;
use prost::Message as _;
use sluice::api::pb;
use sluice::config::Config;
use sluice::engine::{Engine, SystemClock};
use sluice::sandbox::{Allocation, Sandbox, SandboxConfig};
use sluice::store::SqliteStore;
use sluice_test_programs::HELLO;
use tonic::Code;

fn cases(default: u32) -> u32 {
    std::env::var("SLUICE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Request bytes as they are, replies as bytes.
#[derive(Clone, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// The server-streaming RPCs.
const WATCH: &str = "/sluice.v1.ActivityService/WatchActivity";
const WATCH_MANY: &str = "/sluice.v1.ActivityService/WatchActivities";
const DEPLOY: &str = "/sluice.v1.OperatorService/DeployComponent";

/// Every RPC with a valid request to mutate.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let dur = |s| Some(pbjson_types::Duration { seconds: s, nanos: 5 });
    let payload = Some(pb::Payload { encoding: "json/plain".into(), data: br#"{"name":"fuzz"}"#.to_vec() });
    let by_id = || pb::ActivityRef { activity_id: "seed".into(), run_id: String::new() };
    vec![
        (
            "/sluice.v1.ActivityService/StartActivity",
            pb::StartActivityRequest {
                activity_id: "seed".into(),
                activity_type: "hello".into(),
                task_queue: "default".into(),
                input: payload.clone(),
                schedule_to_close_timeout: dur(30),
                start_to_close_timeout: dur(10),
                heartbeat_timeout: dur(5),
                retry_policy: Some(pb::RetryPolicy {
                    initial_interval: dur(1),
                    backoff_coefficient: 2.0,
                    maximum_interval: dur(10),
                    maximum_attempts: Some(3),
                    non_retryable_error_types: vec!["X".into()],
                }),
                priority: 2,
                request_id: "r".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/DescribeActivity",
            pb::DescribeActivityRequest { activity_id: "seed".into(), logs_page_size: 10, ..Default::default() }
                .encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/GetActivityResult",
            pb::GetActivityResultRequest { activity_id: "seed".into(), wait: dur(0), ..Default::default() }
                .encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/ListActivities",
            pb::ListActivitiesRequest { page_size: 3, activity_type: "hello".into(), ..Default::default() }
                .encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/RequestCancelActivity",
            pb::RequestCancelActivityRequest { activity_id: "seed".into(), run_id: String::new() }.encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/TerminateActivity",
            pb::TerminateActivityRequest { activity_id: "seed".into(), reason: "fuzz".into(), ..Default::default() }
                .encode_to_vec(),
        ),
        (
            "/sluice.v1.CompletionService/CompleteActivity",
            pb::CompleteActivityRequest {
                target: Some(pb::complete_activity_request::Target::Activity(by_id())),
                result: payload.clone(),
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.CompletionService/FailActivity",
            pb::FailActivityRequest {
                target: Some(pb::fail_activity_request::Target::TaskToken("token".into())),
                failure: Some(pb::Failure {
                    error_type: "E".into(),
                    message: "m".into(),
                    next_retry_delay: dur(1),
                    ..Default::default()
                }),
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.CompletionService/ReportActivityCancelled",
            pb::ReportActivityCancelledRequest {
                target: Some(pb::report_activity_cancelled_request::Target::Activity(by_id())),
                details: payload.clone(),
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.CompletionService/RecordHeartbeat",
            pb::RecordHeartbeatRequest {
                target: Some(pb::record_heartbeat_request::Target::Activity(by_id())),
                details: payload.clone(),
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.WorkerService/PollActivityTask",
            pb::PollActivityTaskRequest {
                task_queue: "ext".into(),
                identity: "fuzz".into(),
                wait: dur(0),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.OperatorService/DescribeTaskQueue",
            pb::DescribeTaskQueueRequest { task_queue: "default".into(), closed_counts: true }.encode_to_vec(),
        ),
        ("/sluice.v1.OperatorService/ListActivityTypes", pb::ListActivityTypesRequest {}.encode_to_vec()),
        (WATCH, pb::WatchActivityRequest { activity_id: "seed".into(), run_id: String::new() }.encode_to_vec()),
        (
            "/sluice.v1.ActivityService/StartActivities",
            pb::StartActivitiesRequest {
                starts: vec![
                    pb::StartActivityRequest {
                        activity_type: "hello".into(),
                        input: payload.clone(),
                        ..Default::default()
                    },
                    pb::StartActivityRequest {
                        activity_id: "seed".into(),
                        activity_type: "hello".into(),
                        ..Default::default()
                    },
                ],
            }
            .encode_to_vec(),
        ),
        (
            WATCH_MANY,
            pb::WatchActivitiesRequest { activity_ids: vec!["seed".into()], ..Default::default() }.encode_to_vec(),
        ),
        (WATCH_MANY, pb::WatchActivitiesRequest { task_queue: "default".into(), ..Default::default() }.encode_to_vec()),
        (
            "/sluice.v1.ActivityService/PauseActivity",
            pb::PauseActivityRequest { activity: Some(by_id()) }.encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/UnpauseActivity",
            pb::UnpauseActivityRequest { activity: Some(by_id()), jitter: dur(1) }.encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/ResetActivity",
            pb::ResetActivityRequest { activity: Some(by_id()), keep_paused: true, reset_heartbeat: true }
                .encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/UpdateActivityOptions",
            pb::UpdateActivityOptionsRequest {
                activity: Some(by_id()),
                update_mask: vec!["task_queue".into(), "start_to_close_timeout".into(), "retry_policy".into()],
                task_queue: "other".into(),
                start_to_close_timeout: dur(9),
                retry_policy: Some(pb::RetryPolicy { maximum_attempts: Some(2), ..Default::default() }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/DeleteActivity",
            pb::DeleteActivityRequest { activity: Some(by_id()) }.encode_to_vec(),
        ),
        (
            "/sluice.v1.ActivityService/BatchOperation",
            pb::BatchOperationRequest {
                query: r#"type = "hello" AND status = "scheduled""#.into(),
                operation: "pause".into(),
                dry_run: true,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "/sluice.v1.OperatorService/DescribeActivityType",
            pb::DescribeActivityTypeRequest { name: "hello".into() }.encode_to_vec(),
        ),
        (
            "/sluice.v1.OperatorService/RollbackActivityType",
            pb::RollbackActivityTypeRequest { name: "hello".into(), to: "v1".into() }.encode_to_vec(),
        ),
        // Types the end-to-end run after the fuzzing does not use.
        (
            "/sluice.v1.OperatorService/UpdateActivityType",
            pb::UpdateActivityTypeRequest { name: "fuzzed".into(), set: vec!["slots=4".into()] }.encode_to_vec(),
        ),
        (
            "/sluice.v1.OperatorService/RemoveTypeVersion",
            pb::RemoveTypeVersionRequest { name: "fuzzed".into(), version: "v1".into() }.encode_to_vec(),
        ),
        (
            DEPLOY,
            pb::DeployChunk {
                part: Some(pb::deploy_chunk::Part::Header(pb::DeployHeader {
                    activity_type: "fuzzed".into(),
                    size: 8,
                    version: "v1".into(),
                    set: vec!["retry.maximum_attempts=2".into()],
                    ..Default::default()
                })),
            }
            .encode_to_vec(),
        ),
        (
            DEPLOY,
            pb::DeployChunk { part: Some(pb::deploy_chunk::Part::Data(b"\0asm\x01\0\0\0".to_vec())) }.encode_to_vec(),
        ),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Splice(i, v)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match m {
            Mutation::Flip(i, b) if !bytes.is_empty() => {
                let i = at(*i, bytes.len());
                bytes[i] ^= 1 << b;
            }
            Mutation::Insert(i, b) => {
                let i = at(*i, bytes.len() + 1);
                bytes.insert(i, *b);
            }
            Mutation::Remove(i) if !bytes.is_empty() => {
                let i = at(*i, bytes.len());
                bytes.remove(i);
            }
            Mutation::Truncate(i) => {
                let i = at(*i, bytes.len() + 1);
                bytes.truncate(i);
            }
            Mutation::Splice(i, v) => {
                let i = at(*i, bytes.len() + 1);
                bytes.splice(i..i, v.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

struct InProcess {
    rt: tokio::runtime::Runtime,
    address: String,
    _dir: tempfile::TempDir,
}

/// One in-process server (engine, store, API on loopback) for every case.
fn server() -> &'static InProcess {
    static SERVER: OnceLock<InProcess> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = common::cache_dir();
        let text = format!(
            "[store]\npath = \"fuzz.db\"\n[server]\nmax_payload = \"64KiB\"\n[sandbox]\npool_instances = 16\n\
             cache_dir = \"{}\"\n[activities.hello]\ncomponent = \"{HELLO}\"\nstart_to_close_timeout = \"10s\"\n",
            cache.display()
        );
        let config = Config::parse(&text, dir.path()).unwrap();
        let address = rt.block_on(async {
            let store = Arc::new(SqliteStore::open(&config.store.path).unwrap());
            let engine = Engine::start(&config, store, Arc::new(SystemClock)).await.unwrap();
            let listener = sluice::api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let address = format!("http://{}", listener.local_addr().unwrap());
            let server = config.server.clone();
            tokio::spawn(async move { sluice::api::serve(engine, listener, &server, std::future::pending()).await });
            address
        });
        InProcess { rt, address, _dir: dir }
    })
}

/// Sends `body` to `path`; the status it got (OK included).
async fn call(address: &str, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let channel = tonic::transport::Channel::from_shared(address.to_string()).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(body);
    // Long-polls may wait as long as the bytes ask: cut them short.
    req.set_timeout(Duration::from_millis(300));
    let uri = http::uri::PathAndQuery::from_static(path);
    if path == WATCH || path == WATCH_MANY {
        // The stream's first message (a snapshot, a close) or its error.
        // A filter watch sends nothing until something closes: bounded here.
        let first = async {
            match grpc.server_streaming(req, uri, Raw).await {
                Ok(response) => match response.into_inner().message().await {
                    Ok(_) => tonic::Status::ok(""),
                    Err(status) => status,
                },
                Err(status) => status,
            }
        };
        return tokio::time::timeout(Duration::from_millis(300), first)
            .await
            .unwrap_or_else(|_| tonic::Status::deadline_exceeded("no message within 300 ms"));
    }
    if path == DEPLOY {
        // An upload of one message: a header alone, or data with no header.
        let body = req.into_inner();
        let mut stream = tonic::Request::new(tokio_stream::iter([body]));
        stream.set_timeout(Duration::from_millis(300));
        return match grpc.client_streaming(stream, uri, Raw).await {
            Ok(_) => tonic::Status::ok(""),
            Err(status) => status,
        };
    }
    match grpc.unary(req, uri, Raw).await {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

/// The statuses the proto documents, plus the client's own timeout.
fn documented(code: Code) -> bool {
    matches!(
        code,
        Code::Ok
            | Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::ResourceExhausted
            | Code::PermissionDenied
            | Code::DeadlineExceeded
            | Code::Cancelled
    )
}

/// Mutated and random request bytes on every RPC, then a normal activity
/// end to end on the same server.
#[test]
fn every_rpc_answers_mutated_and_random_requests_with_a_documented_status_and_the_server_goes_on() {
    let s = server();
    let config = ProptestConfig { cases: cases(1000), ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let input = (
        0usize..seeds().len(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(mutation(), 1..6),
    );
    let result = runner.run(&input, |(rpc, random, noise, mutations)| {
        let (path, seed) = seeds().swap_remove(rpc);
        let body = if random { noise } else { mutate(seed, &mutations) };
        let status = s.rt.block_on(call(&s.address, path, body.clone()));
        prop_assert!(documented(status.code()), "{path} answered {status:?} to {body:?}");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    s.rt.block_on(async {
        let mut c = pb::activity_service_client::ActivityServiceClient::connect(s.address.clone()).await.unwrap();
        let req = common::server::start_req("hello", "after-fuzz", serde_json::json!({"name": "still"}));
        c.start_activity(req).await.unwrap();
        let e = common::server::result(&mut c, "after-fuzz", 30.0).await;
        assert_eq!(common::server::decode(&e.result), serde_json::json!({"greeting": "Hello, still!"}));
    });
}

fn example_config() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sluice.toml")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000), ..ProptestConfig::default() })]

    #[test]
    fn the_config_parser_refuses_mutated_configs_without_panicking(
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        let bytes = mutate(example_config().into_bytes(), &mutations);
        let text = String::from_utf8_lossy(&bytes);
        if let Err(message) = Config::parse(&text, Path::new("/etc/sluice")) {
            prop_assert!(!message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1000) / 10, ..ProptestConfig::default() })]

    #[test]
    fn the_component_loader_refuses_mutated_components_without_panicking(
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
        let sandbox = SANDBOX.get_or_init(|| {
            let config = SandboxConfig { allocation: Allocation::Pooling { instances: 4 }, cache_dir: None, ..SandboxConfig::default() };
            Sandbox::new(config).unwrap()
        });
        let bytes = mutate(std::fs::read(HELLO).unwrap(), &mutations);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mutated.wasm");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = sandbox.load(&path, false) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
