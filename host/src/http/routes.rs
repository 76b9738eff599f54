//! The routes of the JSON API: each is one gRPC method, its request built
//! from the JSON body with the path and query parameters set over it. The
//! table drives both the router and the OpenAPI document.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, RawPathParams, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use serde_json::{Map, Value, json};

use super::{AppState, call, caller, error, message, sse};

use crate::api::pb::activity_service_server::ActivityService;
use crate::api::pb::completion_service_server::CompletionService;
use crate::api::pb::operator_service_server::OperatorService;
use crate::api::pb::worker_service_server::WorkerService;

/// One route: what the OpenAPI document says of it, and its handler.
pub(crate) struct Route {
    pub method: &'static str,
    /// With `{param}`s.
    pub path: &'static str,
    pub summary: &'static str,
    /// The request message its body holds (path and query parameters are
    /// set over it); `None`: no body.
    pub body: Option<&'static str>,
    /// Query parameters: fields of `request`.
    pub query: &'static [&'static str],
    /// The request message (for the query parameters' types).
    pub request: &'static str,
    /// The reply message; `"sse"` for an event stream.
    pub response: &'static str,
    pub handler: fn() -> MethodRouter<AppState>,
}

/// Parameters as a handler sees them.
struct Params {
    path: HashMap<String, String>,
    query: HashMap<String, String>,
}

impl Params {
    fn id(&self) -> String {
        self.path.get("id").cloned().unwrap_or_default()
    }

    /// `{"activity_id": id, "run_id": run}` (run from `?run_id=`).
    fn activity(&self) -> Value {
        json!({ "activity_id": self.id(), "run_id": self.query.get("run_id").cloned().unwrap_or_default() })
    }

    /// Sets each query parameter as a field (a status may be written short: `failed`).
    fn query_into(&self, m: &mut Map<String, Value>) {
        for (k, v) in self.query.iter().filter(|(_, v)| !v.is_empty()) {
            let v = match k.as_str() {
                "status" if !v.starts_with("ACTIVITY_STATUS_") => {
                    format!("ACTIVITY_STATUS_{}", v.to_ascii_uppercase().replace('-', "_"))
                }
                // The one flag among the query parameters.
                "closed_counts" => {
                    m.insert(k.clone(), Value::Bool(v == "true"));
                    continue;
                }
                _ => v.clone(),
            };
            m.insert(k.clone(), Value::String(v));
        }
    }
}

/// Defines a handler: auth, then the request message, then the method.
macro_rules! handler {
    ($name:ident, $service:ident :: $method:ident, |$p:ident, $m:ident| $fill:expr) => {
        async fn $name(
            State(s): State<AppState>,
            raw: RawPathParams,
            Query(query): Query<HashMap<String, String>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let caller = match caller(&s, &headers) {
                Ok(c) => c,
                Err(e) => return error(e),
            };
            let $p = Params { path: raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), query };
            let req = match message(&body, |$m| $fill) {
                Ok(r) => r,
                Err(e) => return error(e),
            };
            call(&s, caller, &headers, req, |api, r| async move { $service::$method(&*api, r).await }).await
        }
    };
}

handler!(start, ActivityService::start_activity, |_p, _m| ());
handler!(start_many, ActivityService::start_activities, |_p, _m| ());
handler!(describe, ActivityService::describe_activity, |p, m| {
    p.query_into(m);
    m.insert("activity_id".into(), p.id().into());
});
handler!(result, ActivityService::get_activity_result, |p, m| {
    p.query_into(m);
    m.insert("activity_id".into(), p.id().into());
});
handler!(list, ActivityService::list_activities, |p, m| p.query_into(m));
handler!(cancel, ActivityService::request_cancel_activity, |p, m| {
    m.insert("activity_id".into(), p.id().into());
    m.insert("run_id".into(), p.query.get("run_id").cloned().unwrap_or_default().into());
});
handler!(terminate, ActivityService::terminate_activity, |p, m| {
    m.insert("activity_id".into(), p.id().into());
    m.insert("run_id".into(), p.query.get("run_id").cloned().unwrap_or_default().into());
});
handler!(pause, ActivityService::pause_activity, |p, m| {
    m.insert("activity".into(), p.activity());
});
handler!(unpause, ActivityService::unpause_activity, |p, m| {
    m.insert("activity".into(), p.activity());
});
handler!(reset, ActivityService::reset_activity, |p, m| {
    m.insert("activity".into(), p.activity());
});
handler!(update_options, ActivityService::update_activity_options, |p, m| {
    m.insert("activity".into(), p.activity());
});
handler!(delete_activity, ActivityService::delete_activity, |p, m| {
    m.insert("activity".into(), p.activity());
});
handler!(batch, ActivityService::batch_operation, |_p, _m| ());
handler!(complete, CompletionService::complete_activity, |p, m| by_id_or_token(&p, m));
handler!(fail, CompletionService::fail_activity, |p, m| by_id_or_token(&p, m));
handler!(report_cancelled, CompletionService::report_activity_cancelled, |p, m| by_id_or_token(&p, m));
handler!(heartbeat, CompletionService::record_heartbeat, |p, m| by_id_or_token(&p, m));
handler!(poll, WorkerService::poll_activity_task, |_p, _m| ());
handler!(queue, OperatorService::describe_task_queue, |p, m| {
    p.query_into(m);
    m.insert("task_queue".into(), p.path.get("name").cloned().unwrap_or_default().into());
});
handler!(types, OperatorService::list_activity_types, |_p, _m| ());
handler!(type_describe, OperatorService::describe_activity_type, |p, m| name(&p, m));
handler!(rollback, OperatorService::rollback_activity_type, |p, m| name(&p, m));
handler!(type_update, OperatorService::update_activity_type, |p, m| name(&p, m));
handler!(remove_version, OperatorService::remove_type_version, |p, m| {
    name(&p, m);
    m.insert("version".into(), p.path.get("version").cloned().unwrap_or_default().into());
});

/// The completion routes under /activities/{id} target the execution's
/// current attempt; under /tasks, the body's `task_token`.
fn by_id_or_token(p: &Params, m: &mut Map<String, Value>) {
    if p.path.contains_key("id") {
        m.insert("activity".into(), p.activity());
    }
}

fn name(p: &Params, m: &mut Map<String, Value>) {
    m.insert("name".into(), p.path.get("name").cloned().unwrap_or_default().into());
}

async fn openapi() -> Response {
    axum::Json(super::openapi::document()).into_response()
}

macro_rules! route {
    ($method:ident $path:literal, $summary:literal, body: $body:expr, query: $query:expr, $request:literal -> $response:literal, $handler:expr) => {
        Route {
            method: stringify!($method),
            path: $path,
            summary: $summary,
            body: $body,
            query: $query,
            request: $request,
            response: $response,
            handler: || $method($handler),
        }
    };
}

/// Every route of the JSON API.
pub(crate) fn table() -> Vec<Route> {
    const RUN: &[&str] = &["run_id"];
    vec![
        route!(post "/api/v1/activities", "Start an activity execution", body: Some("StartActivityRequest"), query: &[], "StartActivityRequest" -> "StartActivityResponse", start),
        route!(get "/api/v1/activities", "List executions, newest first (status may be short: failed)", body: None, query: &["status", "activity_type", "task_queue", "page_size", "page_token"], "ListActivitiesRequest" -> "ListActivitiesResponse", list),
        route!(post "/api/v1/batch/start", "Start up to 1,000 executions in one commit", body: Some("StartActivitiesRequest"), query: &[], "StartActivitiesRequest" -> "StartActivitiesResponse", start_many),
        route!(post "/api/v1/batch/operation", "Apply an operation to every execution a query matches (or count them)", body: Some("BatchOperationRequest"), query: &[], "BatchOperationRequest" -> "BatchOperationResponse", batch),
        route!(get "/api/v1/activities/{id}", "An execution: state, history and a page of logs", body: None, query: &["run_id", "logs_page_size", "logs_page_token"], "DescribeActivityRequest" -> "DescribeActivityResponse", describe),
        route!(delete "/api/v1/activities/{id}", "Delete an execution with its history and logs (an open one is terminated first)", body: None, query: RUN, "DeleteActivityRequest" -> "DeleteActivityResponse", delete_activity),
        route!(get "/api/v1/activities/{id}/result", "The execution, waiting up to `wait` (e.g. 10s) for it to close", body: None, query: &["run_id", "wait"], "GetActivityResultRequest" -> "GetActivityResultResponse", result),
        route!(get "/api/v1/activities/{id}/events", "Server-Sent Events of one execution: snapshot, transition, progress, heartbeat; ends when it closes", body: None, query: RUN, "WatchActivityRequest" -> "sse", sse::activity),
        route!(post "/api/v1/activities/{id}/cancel", "Request cancellation", body: None, query: RUN, "RequestCancelActivityRequest" -> "RequestCancelActivityResponse", cancel),
        route!(post "/api/v1/activities/{id}/terminate", "End an execution without asking its attempt", body: Some("TerminateActivityRequest"), query: RUN, "TerminateActivityRequest" -> "TerminateActivityResponse", terminate),
        route!(post "/api/v1/activities/{id}/pause", "Pause: no new attempt is dispatched", body: None, query: RUN, "PauseActivityRequest" -> "PauseActivityResponse", pause),
        route!(post "/api/v1/activities/{id}/unpause", "Unpause (optional jitter)", body: Some("UnpauseActivityRequest"), query: RUN, "UnpauseActivityRequest" -> "UnpauseActivityResponse", unpause),
        route!(post "/api/v1/activities/{id}/reset", "Start the retry count over", body: Some("ResetActivityRequest"), query: RUN, "ResetActivityRequest" -> "ResetActivityResponse", reset),
        route!(post "/api/v1/activities/{id}/options", "Change the task queue, priority, timeouts or retry policy (fields named in update_mask)", body: Some("UpdateActivityOptionsRequest"), query: RUN, "UpdateActivityOptionsRequest" -> "UpdateActivityOptionsResponse", update_options),
        route!(post "/api/v1/activities/{id}/complete", "Complete the current attempt", body: Some("CompleteActivityRequest"), query: RUN, "CompleteActivityRequest" -> "CompleteActivityResponse", complete),
        route!(post "/api/v1/activities/{id}/fail", "Fail the current attempt", body: Some("FailActivityRequest"), query: RUN, "FailActivityRequest" -> "FailActivityResponse", fail),
        route!(post "/api/v1/activities/{id}/report-cancelled", "The current attempt acknowledges cancellation", body: Some("ReportActivityCancelledRequest"), query: RUN, "ReportActivityCancelledRequest" -> "ReportActivityCancelledResponse", report_cancelled),
        route!(post "/api/v1/activities/{id}/heartbeat", "Heartbeat the current attempt", body: Some("RecordHeartbeatRequest"), query: RUN, "RecordHeartbeatRequest" -> "RecordHeartbeatResponse", heartbeat),
        route!(post "/api/v1/tasks/complete", "Complete the attempt a task token names", body: Some("CompleteActivityRequest"), query: &[], "CompleteActivityRequest" -> "CompleteActivityResponse", complete),
        route!(post "/api/v1/tasks/fail", "Fail the attempt a task token names", body: Some("FailActivityRequest"), query: &[], "FailActivityRequest" -> "FailActivityResponse", fail),
        route!(post "/api/v1/tasks/report-cancelled", "The attempt a task token names acknowledges cancellation", body: Some("ReportActivityCancelledRequest"), query: &[], "ReportActivityCancelledRequest" -> "ReportActivityCancelledResponse", report_cancelled),
        route!(post "/api/v1/tasks/heartbeat", "Heartbeat the attempt a task token names", body: Some("RecordHeartbeatRequest"), query: &[], "RecordHeartbeatRequest" -> "RecordHeartbeatResponse", heartbeat),
        route!(post "/api/v1/tasks/poll", "Take an attempt from a task queue (long-poll), as an external worker", body: Some("PollActivityTaskRequest"), query: &[], "PollActivityTaskRequest" -> "PollActivityTaskResponse", poll),
        route!(get "/api/v1/events", "Server-Sent Events of every execution: transitions, progress, heartbeats", body: None, query: &[], "WatchActivityRequest" -> "sse", sse::all),
        route!(get "/api/v1/queues/{name}", "A task queue: backlog, running, free slots, open executions by type (closed_counts=true: closed ones too)", body: None, query: &["closed_counts"], "DescribeTaskQueueRequest" -> "DescribeTaskQueueResponse", queue),
        route!(get "/api/v1/types", "The activity types with their versions", body: None, query: &[], "ListActivityTypesRequest" -> "ListActivityTypesResponse", types),
        route!(get "/api/v1/types/{name}", "One activity type", body: None, query: &[], "DescribeActivityTypeRequest" -> "DescribeActivityTypeResponse", type_describe),
        route!(post "/api/v1/types/{name}/rollback", "Make an earlier version current", body: Some("RollbackActivityTypeRequest"), query: &[], "RollbackActivityTypeRequest" -> "RollbackActivityTypeResponse", rollback),
        route!(post "/api/v1/types/{name}/settings", "Change settings (key=value)", body: Some("UpdateActivityTypeRequest"), query: &[], "UpdateActivityTypeRequest" -> "UpdateActivityTypeResponse", type_update),
        route!(put "/api/v1/types/{name}/versions", "Deploy a component (the body: its bytes) as a new version; query: version, queue, set=key%3Dvalue (repeatable)", body: Some("application/octet-stream"), query: &["version", "queue", "set"], "DeployHeader" -> "DeployComponentResponse", super::deploy::deploy),
        route!(delete "/api/v1/types/{name}/versions/{version}", "Remove an unused version", body: None, query: &[], "RemoveTypeVersionRequest" -> "RemoveTypeVersionResponse", remove_version),
    ]
}

/// The router: every route, the OpenAPI document and the metrics.
pub(crate) fn router(max_body: usize) -> Router<AppState> {
    let mut router = Router::new();
    for r in table() {
        let handler = (r.handler)();
        // A deploy carries a component, far larger than any JSON request.
        let handler = if r.method == "put" { handler.layer(DefaultBodyLimit::disable()) } else { handler };
        router = router.route(r.path, handler);
    }
    router
        .merge(super::console::routes())
        .route(super::openapi::PATH, get(openapi))
        .route("/metrics", get(super::metrics))
        .fallback(|| async { error(tonic::Status::not_found("no such route: see /api/v1/openapi.json")) })
        .method_not_allowed_fallback(|| async {
            let e = error(tonic::Status::invalid_argument(
                "this route does not take that method: see /api/v1/openapi.json",
            ));
            (axum::http::StatusCode::METHOD_NOT_ALLOWED, e).into_response()
        })
        .layer(DefaultBodyLimit::max(max_body))
}
