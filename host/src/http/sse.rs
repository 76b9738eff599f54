//! Server-Sent Events: one execution's events (the WatchActivity stream),
//! or every execution's transitions, progress and heartbeats (for live
//! lists). Each event's name is its kind; its data is JSON.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio_stream::StreamExt as _;

use super::{AppState, caller, error};
use crate::api::pb;
use crate::api::pb::activity_service_server::ActivityService;
use crate::api::pb::watch_activity_event::Event as Watched;

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(data).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")))
}

/// `GET /api/v1/activities/{id}/events`
pub(crate) async fn activity(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&s, &headers) {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    let req = pb::WatchActivityRequest { activity_id: id, run_id: query.get("run_id").cloned().unwrap_or_default() };
    let mut request = tonic::Request::new(req);
    request.extensions_mut().insert(caller);
    let stream = match ActivityService::watch_activity(&*s.api, request).await {
        Ok(r) => r.into_inner(),
        Err(e) => return error(e),
    };
    let events = stream.map(|item| {
        Ok::<_, Infallible>(match item {
            Ok(pb::WatchActivityEvent { event: Some(event), .. }) => match event {
                Watched::Snapshot(e) => json_event("snapshot", &e),
                Watched::Transition(t) => json_event("transition", &t),
                Watched::Progress(p) => json_event("progress", &p),
                Watched::Heartbeat(h) => json_event("heartbeat", &h),
                Watched::Log(l) => json_event("log", &l),
            },
            Ok(_) => Event::default().comment("empty"),
            Err(status) => {
                json_event("error", &serde_json::json!({"code": status.code() as i32, "message": status.message()}))
            }
        })
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// `GET /api/v1/events`
pub(crate) async fn all(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = caller(&s, &headers) {
        return error(e);
    }
    let receiver = s.api.engine.subscribe();
    let events = tokio_stream::wrappers::BroadcastStream::new(receiver).map(|item| {
        Ok::<_, Infallible>(match item {
            Ok(e) => {
                let name = match &e.kind {
                    crate::engine::EventKind::Transition { .. } => "transition",
                    crate::engine::EventKind::Progress { .. } => "progress",
                    crate::engine::EventKind::Heartbeat { .. } => "heartbeat",
                    crate::engine::EventKind::Log { .. } => "log",
                };
                json_event(name, &e)
            }
            // A slow reader missed some: it should re-read what it shows.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                json_event("lagged", &serde_json::json!({ "missed": n }))
            }
        })
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
