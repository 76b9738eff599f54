//! Many executions at once: StartActivities (one request, an outcome per
//! start) and WatchActivities (closes of a set of ids or of a queue/type on
//! one stream), through the API and `sluice start --inputs`.

use super::*;
use tonic::Code;

type Client = ActivityServiceClient<tonic::transport::Channel>;

async fn closes(c: &mut Client, req: pb::WatchActivitiesRequest) -> Vec<pb::ActivityExecution> {
    let mut stream = c.watch_activities(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(30), stream.message()).await.unwrap().unwrap() {
        out.push(ev.execution.unwrap());
    }
    out
}

fn ids(list: &[&str]) -> pb::WatchActivitiesRequest {
    pb::WatchActivitiesRequest { activity_ids: list.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

async fn watch_refused(c: &mut Client, req: pb::WatchActivitiesRequest, code: Code, message: &str) {
    let err = c.watch_activities(req).await.expect_err("refused");
    assert_eq!(err.code(), code, "{err:?}");
    assert!(err.message().contains(message), "{:?} lacks {message:?}", err.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn many_starts_in_one_request_each_with_its_outcome_and_their_closes_on_one_stream() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    let starts = vec![
        start_req("hello", "m-1", json!({"name": "a"})),
        start_req("hello", "m-2", json!({"name": "b"})),
        start_req("", "m-x", json!(null)),
        start_req("hello", "m-1", json!({"name": "again"})),
        start_req("hello", "m-empty", json!({"name": ""})),
    ];
    let r = c.start_activities(pb::StartActivitiesRequest { starts }).await.unwrap().into_inner();
    let outcomes: Vec<_> = r
        .outcomes
        .into_iter()
        .map(|o| match o.outcome.unwrap() {
            pb::start_activity_outcome::Outcome::Started(s) => (s.activity_id, 0, String::new()),
            pb::start_activity_outcome::Outcome::Error(e) => (String::new(), e.code, e.message),
        })
        .collect();
    assert_eq!(outcomes[0].0, "m-1");
    assert_eq!(outcomes[1].0, "m-2");
    assert_eq!(outcomes[2].1, Code::InvalidArgument as i32);
    assert_eq!(outcomes[2].2, "activity_type is required");
    assert_eq!(outcomes[3].1, Code::AlreadyExists as i32, "{outcomes:?}");
    assert!(outcomes[3].2.contains("m-1"), "{outcomes:?}");
    assert_eq!(outcomes[4].0, "m-empty");

    // Each watched id once, as it closes; then the stream ends.
    let got = closes(&mut c, ids(&["m-1", "m-2", "m-empty"])).await;
    let mut seen: Vec<(String, i32)> = got.iter().map(|e| (e.activity_id.clone(), e.status)).collect();
    seen.sort();
    let (done, failed) = (pb::ActivityStatus::Completed as i32, pb::ActivityStatus::Failed as i32);
    assert_eq!(seen, vec![("m-1".into(), done), ("m-2".into(), done), ("m-empty".into(), failed)]);
    let m1 = got.iter().find(|e| e.activity_id == "m-1").unwrap();
    assert_eq!(decode(&m1.result), json!({"greeting": "Hello, a!"}));
    let empty = got.iter().find(|e| e.activity_id == "m-empty").unwrap();
    assert_eq!(empty.last_failure.as_ref().unwrap().error_type, "EmptyName");
    // Watched again once closed: all at once, then the end.
    assert_eq!(closes(&mut c, ids(&["m-2", "m-1"])).await.len(), 2);

    // Refusals, before anything is sent.
    let none = pb::WatchActivitiesRequest::default();
    watch_refused(&mut c, none, Code::InvalidArgument, "a task_queue or an activity_type").await;
    let both = pb::WatchActivitiesRequest { task_queue: "default".into(), ..ids(&["m-1"]) };
    watch_refused(&mut c, both, Code::InvalidArgument, "not both").await;
    watch_refused(&mut c, ids(&["m-1", "nope"]), Code::NotFound, "no activity nope").await;
    watch_refused(&mut c, ids(&["m-1", "m-1"]), Code::InvalidArgument, "m-1 is listed twice").await;
    let many: Vec<String> = (0..10_001).map(|i| format!("x{i}")).collect();
    let too_many = pb::WatchActivitiesRequest { activity_ids: many, ..Default::default() };
    watch_refused(&mut c, too_many, Code::InvalidArgument, "1 to 10000 activity ids, not 10001").await;
    let long = pb::WatchActivitiesRequest { task_queue: "q".repeat(300), ..Default::default() };
    watch_refused(&mut c, long, Code::InvalidArgument, "task_queue").await;
    for n in [0, 1001] {
        let starts = (0..n).map(|i| start_req("hello", &format!("n{i}"), json!(null))).collect();
        let err = c.start_activities(pb::StartActivitiesRequest { starts }).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), format!("starts must hold 1 to 1000 requests, not {n}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_watch_sends_the_closes_of_its_type_from_now_on() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    c.start_activity(start_req("hello", "before", json!({"name": "x"}))).await.unwrap();
    result(&mut c, "before", 30.0).await;
    let req = pb::WatchActivitiesRequest { activity_type: "hello".into(), ..Default::default() };
    let mut stream = c.watch_activities(req).await.unwrap().into_inner();
    c.start_activity(start_req("resumable", "other-type", json!({"to": 1, "step_ms": 1}))).await.unwrap();
    result(&mut c, "other-type", 30.0).await;
    c.start_activity(start_req("hello", "after", json!({"name": "y"}))).await.unwrap();
    let first = stream.message().await.unwrap().unwrap().execution.unwrap();
    assert_eq!(first.activity_id, "after", "neither the earlier close nor another type's");
    assert_eq!(decode(&first.result), json!({"greeting": "Hello, y!"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_starts_a_file_of_inputs_and_follows_their_outcomes() {
    let (server, dir) = Server::start("");
    let inputs = dir.path().join("inputs.jsonl");
    std::fs::write(&inputs, "{\"name\": \"a\"}\n\n{\"name\": \"\"}\n{\"name\": \"c\"}\n").unwrap();
    let out = server.cli(&["start", "hello", "--inputs", inputs.to_str().unwrap(), "--wait"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "the failed one's status; {stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "three ids, then three outcomes: {stdout}");
    let outcomes = lines[3..].join("\n");
    assert!(outcomes.contains(&format!("{} completed {{\"greeting\":\"Hello, a!\"}}", lines[0])), "{stdout}");
    assert!(outcomes.contains(&format!("{} failed after 1 attempt(s): application EmptyName", lines[1])), "{stdout}");

    // An input over max_payload (2 MiB) is refused on its own line; the
    // others start, each request kept under the server's request bound.
    let big = format!("\"{}\"", "x".repeat(2 * 1024 * 1024 + 10));
    std::fs::write(&inputs, format!("{{\"name\": \"a\"}}\n{big}\n{{\"name\": \"c\"}}\n")).unwrap();
    let out = server.cli(&["start", "hello", "--inputs", inputs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "a and c started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: refused: input is 2097164 bytes, over the limit of 2097152 bytes"), "{stderr}");
    assert!(stderr.contains("1 of 3 start(s) refused"), "{stderr}");

    std::fs::write(&inputs, "{\"name\": \"a\"}\nnot json\n").unwrap();
    let out = server.cli(&["start", "hello", "--inputs", inputs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2 of") && stderr.contains("is not valid JSON"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was started");
    let out = server.cli(&["start", "hello", "--inputs", "/nonexistent/inputs", "--id", "x"]);
    assert_eq!(out.status.code(), Some(2), "--id names one execution");
}
