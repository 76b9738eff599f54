//! The HTTP listener of `sluice serve`: the JSON API — the gRPC services'
//! own methods called with JSON (proto3 mapping, snake_case names), so
//! validation, limits and error meanings are the gRPC API's —, Server-Sent
//! Events, the OpenAPI document and Prometheus metrics.

mod console;
mod deploy;
mod openapi;
mod routes;
mod sse;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tonic::{Code, Status};

use crate::api::{Api, Auth, Caller};

pub use openapi::document as openapi_document;

/// What every handler reaches.
#[derive(Clone)]
pub(crate) struct AppState {
    pub api: Arc<Api>,
    pub auth: Auth,
}

/// Serves HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    api: Arc<Api>,
    auth: Auth,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let max_body = api.engine.max_payload().saturating_mul(2) + (1 << 20);
    let app = routes::router(max_body).with_state(AppState { api, auth });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// `GET /metrics`: Prometheus text format (with a bearer token when the
/// server has tokens: Prometheus's `authorization` scrape setting).
pub(crate) async fn metrics(axum::extract::State(s): axum::extract::State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = caller(&s, &headers) {
        return error(e);
    }
    let text = crate::metrics::render(&s.api.engine).await;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Binds the HTTP address with a clear error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen for HTTP on {addr}"))
}

/// The HTTP status of a gRPC code, as grpc-gateway maps them (but a size
/// limit is 413).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON error body: `{"code": "NOT_FOUND", "message": "no activity x"}`.
#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

pub(crate) fn error(status: Status) -> Response {
    let code = status.code();
    let name = match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    };
    (http_status(code), Json(ErrorBody { code: name, message: status.message().to_string() })).into_response()
}

/// The caller, authorised like a gRPC call (`Authorization: Bearer <token>`).
pub(crate) fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Status> {
    let header = headers.get(axum::http::header::AUTHORIZATION).map(|h| h.to_str().unwrap_or(""));
    state.auth.check(header)
}

/// A request message from a JSON body (empty: `{}`) with `fill`'s fields
/// (path and query parameters) set over it.
pub(crate) fn message<T: DeserializeOwned>(
    body: &[u8],
    fill: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<T, Status> {
    let mut value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| Status::invalid_argument(format!("the body is not JSON: {e}")))?
    };
    let map = value.as_object_mut().ok_or_else(|| Status::invalid_argument("the body must be a JSON object"))?;
    fill(map);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Status::invalid_argument(format!("{path}: {}", e.into_inner()))
    })
}

/// Calls a gRPC method with `req` as `caller` (with the request's W3C
/// `traceparent`, if any) and answers its reply as JSON.
pub(crate) async fn call<Req, Resp, Fut>(
    state: &AppState,
    caller: Caller,
    headers: &HeaderMap,
    req: Req,
    method: impl FnOnce(Arc<Api>, tonic::Request<Req>) -> Fut,
) -> Response
where
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    Resp: Serialize,
{
    let mut request = tonic::Request::new(req);
    request.extensions_mut().insert(caller);
    if let Some(v) = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) {
        request.metadata_mut().insert("traceparent", v);
    }
    match method(state.api.clone(), request).await {
        Ok(reply) => Json(reply.into_inner()).into_response(),
        Err(status) => error(status),
    }
}
