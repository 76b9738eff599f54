//! Extreme values the proto can carry are refused at the API boundary with
//! INVALID_ARGUMENT, and what is accepted behaves as documented.

use super::*;

fn dur(seconds: i64, nanos: i32) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds, nanos })
}

async fn refused(c: &mut ActivityServiceClient<tonic::transport::Channel>, req: pb::StartActivityRequest) -> String {
    let err = c.start_activity(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    err.message().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn durations_over_100_years_and_malformed_ones_are_refused() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    let long = pb::StartActivityRequest {
        schedule_to_close_timeout: dur(10_i64.pow(16), 0),
        ..start_req("hello", "long", json!({"name": "a"}))
    };
    let m = refused(&mut c, long).await;
    assert!(m.starts_with("schedule_to_close_timeout is 316880878years"), "{m}");
    assert!(m.ends_with(", over the limit of 100 years"), "{m}");

    let nanos = pb::StartActivityRequest {
        start_to_close_timeout: dur(1, 2_000_000_000),
        ..start_req("hello", "nanos", json!({"name": "a"}))
    };
    assert_eq!(refused(&mut c, nanos).await, "start_to_close_timeout.nanos must be below 1000000000, got 2000000000");

    let interval = pb::StartActivityRequest {
        retry_policy: Some(pb::RetryPolicy { initial_interval: dur(10_i64.pow(18), 0), ..Default::default() }),
        ..start_req("hello", "interval", json!({"name": "a"}))
    };
    let m = refused(&mut c, interval).await;
    assert!(m.starts_with("retry_policy.initial_interval is ") && m.ends_with("over the limit of 100 years"), "{m}");

    // A failure's own retry delay, from an external worker.
    c.start_activity(start_req("send-email", "mail", json!({"to": "a@example.com", "subject": "s"}))).await.unwrap();
    wait_status(&mut c, "mail", pb::ActivityStatus::Started).await;
    let mut done = server.completions().await;
    let err = done
        .fail_activity(pb::FailActivityRequest {
            target: Some(pb::fail_activity_request::Target::Activity(pb::ActivityRef {
                activity_id: "mail".into(),
                run_id: String::new(),
            })),
            failure: Some(pb::Failure {
                error_type: "Later".into(),
                next_retry_delay: dur(10_i64.pow(17), 0),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("failure.next_retry_delay is "), "{}", err.message());

    // Nothing was stored but the execution that was accepted, still as it was.
    let all = c.list_activities(pb::ListActivitiesRequest::default()).await.unwrap().into_inner();
    let ids: Vec<&str> = all.executions.iter().map(|e| e.activity_id.as_str()).collect();
    assert_eq!(ids, ["mail"]);
    assert_eq!(all.executions[0].status, pb::ActivityStatus::Started as i32);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_retried_with_its_request_id_and_no_activity_id_gets_the_same_run() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    let req =
        || pb::StartActivityRequest { request_id: "req-77".into(), ..start_req("hello", "", json!({"name": "r"})) };
    let first = c.start_activity(req()).await.unwrap().into_inner();
    let again = c.start_activity(req()).await.unwrap().into_inner();
    assert!(first.started && !again.started);
    assert_eq!((&again.activity_id, &again.run_id), (&first.activity_id, &first.run_id));
    // Another request id is another execution.
    let other = pb::StartActivityRequest { request_id: "req-78".into(), ..req() };
    assert_ne!(c.start_activity(other).await.unwrap().into_inner().activity_id, first.activity_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn unset_retry_fields_take_the_types_values_and_zero_attempts_means_unlimited() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    // misbehaving allows 2 attempts; the request sets only the interval.
    let flaky = pb::StartActivityRequest {
        retry_policy: Some(pb::RetryPolicy { initial_interval: secs(0.05), ..Default::default() }),
        ..start_req("misbehaving", "flaky", json!({"do": "fail", "type": "Flaky", "message": "no"}))
    };
    c.start_activity(flaky).await.unwrap();
    let e = result(&mut c, "flaky", 30.0).await;
    assert_eq!((e.status, e.attempt), (pb::ActivityStatus::Failed as i32, 2));
    assert_eq!(e.retry_policy.unwrap().maximum_attempts, Some(2));

    // An explicit 0 is unlimited.
    let unlimited = pb::StartActivityRequest {
        retry_policy: Some(pb::RetryPolicy { maximum_attempts: Some(0), ..Default::default() }),
        ..start_req("misbehaving", "forever", json!({"do": "fail", "type": "Flaky", "message": "no"}))
    };
    c.start_activity(unlimited).await.unwrap();
    let e = describe(&mut c, "forever").await.execution.unwrap();
    assert_eq!(e.retry_policy.unwrap().maximum_attempts, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn over_long_ids_and_bad_bytes_are_invalid_arguments_on_every_rpc() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    let long = "x".repeat(10_000);
    let limit = "activity_id is 10000 bytes, over the limit of 256";
    let err = c
        .describe_activity(pb::DescribeActivityRequest { activity_id: long.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, limit));
    let err = c
        .get_activity_result(pb::GetActivityResultRequest { activity_id: long.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, limit));
    let err = c
        .request_cancel_activity(pb::RequestCancelActivityRequest { activity_id: long.clone(), run_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, limit));
    let err = c
        .list_activities(pb::ListActivitiesRequest { activity_type: long.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "activity_type is 10000 bytes, over the limit of 256");

    // A string field that is not UTF-8: the same wire format with bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawStart {
        #[prost(bytes = "vec", tag = "1")]
        activity_id: Vec<u8>,
        #[prost(string, tag = "2")]
        activity_type: String,
    }
    let channel = tonic::transport::Channel::from_shared(server.addr.clone()).unwrap();
    let mut raw = tonic::client::Grpc::new(channel.connect().await.unwrap());
    raw.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/sluice.v1.ActivityService/StartActivity");
    let req = RawStart { activity_id: vec![0xff, 0xfe, b'a'], activity_type: "hello".into() };
    let err = raw
        .unary::<_, pb::StartActivityResponse, _>(
            tonic::Request::new(req),
            path,
            tonic_prost::ProstCodec::<RawStart, pb::StartActivityResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("invalid string value: data is not UTF-8 encoded"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_service_reports_its_health_and_probes_may_skip_the_token() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let hash = sluice::api::hash_token("s3cret");
    let (server, _dir) =
        Server::start(&format!("[server.auth]\ntokens_sha256 = [\"{hash}\"]\nhealth_without_token = true\n"));
    let channel = tonic::transport::Channel::from_shared(server.addr.clone()).unwrap();
    let mut health = HealthClient::new(channel.connect().await.unwrap());
    for service in [
        "sluice.v1.ActivityService",
        "sluice.v1.CompletionService",
        "sluice.v1.WorkerService",
        "sluice.v1.OperatorService",
    ] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service}");
    }
    // Everything else still needs the token.
    let err = server.activities().await.list_activities(pb::ListActivitiesRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_output_lines_is_stored_bounded_and_read_in_pages() {
    let (server, _dir) = Server::start("");
    let mut c = server.activities().await;
    c.start_activity(start_req("misbehaving", "lines", json!({"do": "lines", "count": 200_000}))).await.unwrap();
    let e = result(&mut c, "lines", 30.0).await;
    assert_eq!(decode(&e.result), json!({"lines": 200_000}));
    let page = |token: String| pb::DescribeActivityRequest {
        activity_id: "lines".into(),
        logs_page_size: 60,
        logs_page_token: token,
        ..Default::default()
    };
    // The first 100 lines are kept, the rest counted.
    let first = c.describe_activity(page(String::new())).await.unwrap().into_inner();
    assert_eq!(first.logs.len(), 60);
    assert!(!first.next_logs_page_token.is_empty());
    let rest = c.describe_activity(page(first.next_logs_page_token)).await.unwrap().into_inner();
    assert_eq!(rest.logs.len(), 41);
    let last = rest.logs.last().unwrap();
    assert_eq!(last.message, "199900 more stdout lines (0 bytes) were not kept: at most 100");
    assert!(rest.next_logs_page_token.is_empty());

    // The CLI shows the first page and says how to read on.
    let out = server.cli(&["describe", "lines", "--logs", "10"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("… more: sluice describe lines --logs-page-token "), "{text}");
    let err = c
        .describe_activity(pb::DescribeActivityRequest { logs_page_token: "zz".into(), ..page(String::new()) })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "bad page token: it is not a logs page token"));
    let err = c
        .describe_activity(pb::DescribeActivityRequest { logs_page_size: 1001, ..page(String::new()) })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "logs_page_size must be at most 1000"));
}
