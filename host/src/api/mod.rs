//! The gRPC server (tonic): the four services of `proto/sluice/v1`, bearer
//! token auth on every RPC when configured, optional TLS, bounded requests.

mod auth;
pub mod convert;
mod deploy;
mod payload_json;
pub(crate) mod services;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::ServerConfig;
use crate::engine::Engine;

pub use auth::{Auth, Caller, hash_token};
pub use services::Api;

/// The generated protobuf types and service stubs.
#[allow(clippy::large_enum_variant)]
pub mod pb {
    tonic::include_proto!("sluice.v1");
    // Serde in the proto3 JSON mapping, for the HTTP API.
    include!(concat!(env!("OUT_DIR"), "/sluice.v1.serde.rs"));
}

/// The encoded descriptors of the contract (for the OpenAPI document).
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sluice_descriptor.bin"));

/// Bytes a request may carry beyond one maximal payload (ids, options).
const ENVELOPE: usize = 64 * 1024;

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_with(engine, listener, config, None, shutdown).await
}

/// Serves the API, and Temporal's `WorkflowService` when given, on
/// `listener` until `shutdown` resolves.
pub async fn serve_with(
    engine: Arc<Engine>,
    listener: TcpListener,
    config: &ServerConfig,
    temporal: Option<crate::temporal::Frontend>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let auth = Auth::from_config(config);
    let max = engine.max_payload() + ENVELOPE;
    let api = || services::Api { engine: engine.clone() };

    use pb::{
        activity_service_server::ActivityServiceServer, completion_service_server::CompletionServiceServer,
        operator_service_server::OperatorServiceServer, worker_service_server::WorkerServiceServer,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ActivityServiceServer<services::Api>>().await;
    health.set_serving::<CompletionServiceServer<services::Api>>().await;
    health.set_serving::<WorkerServiceServer<services::Api>>().await;
    health.set_serving::<OperatorServiceServer<services::Api>>().await;
    let health_auth = match config.auth.as_ref().is_some_and(|a| a.health_without_token) {
        true => Auth::none(),
        false => auth.clone(),
    };

    let mut server = Server::builder().layer(tower::util::MapResponseLayer::new(client_errors_keep_their_codes));
    if let Some(tls) = &config.tls {
        let cert =
            std::fs::read(&tls.cert).with_context(|| format!("reading TLS certificate {}", tls.cert.display()))?;
        let key = std::fs::read(&tls.key).with_context(|| format!("reading TLS key {}", tls.key.display()))?;
        server = server.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))?;
    }
    macro_rules! service {
        ($server:ident) => {
            tonic::service::interceptor::InterceptedService::new(
                $server::new(api()).max_decoding_message_size(max),
                auth.clone(),
            )
        };
    }
    let temporal = temporal.map(|frontend| {
        // Temporal's SDKs send gzip-compressed requests.
        let server = crate::temporal::WorkflowServiceServer::new(frontend)
            .max_decoding_message_size(max)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        tonic::service::interceptor::InterceptedService::new(server, auth.clone())
    });
    server
        .add_service(tonic::service::interceptor::InterceptedService::new(health_service, health_auth))
        .add_service(service!(ActivityServiceServer))
        .add_service(service!(CompletionServiceServer))
        .add_service(service!(WorkerServiceServer))
        .add_service(service!(OperatorServiceServer))
        .add_optional_service(temporal)
        .serve_with_incoming_shutdown(accept(listener), shutdown)
        .await?;
    Ok(())
}

/// Accepted connections, with Nagle's algorithm off: replies are small and
/// must not wait for the client's delayed ACK (~40 ms on loopback).
fn accept(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

/// tonic reports a request over the size limit as OUT_OF_RANGE, and a
/// request it cannot decode (say, invalid UTF-8 in a string) as INTERNAL;
/// gRPC (and our contract) says RESOURCE_EXHAUSTED and INVALID_ARGUMENT.
/// Errors before any response message travel in the headers
/// ("trailers-only"), so a header rewrite suffices.
fn client_errors_keep_their_codes<B>(mut res: http::Response<B>) -> http::Response<B> {
    let headers = res.headers_mut();
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0");
    let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).unwrap_or("").replace("%20", " ");
    let rewritten = match code {
        "11" if message.contains("message length too large") => "8",
        "13" if message.contains("failed to decode Protobuf message") => "3",
        _ => return res,
    };
    headers.insert("grpc-status", http::HeaderValue::from_static(rewritten));
    res
}

/// Binds the listen address with a clear error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_delayed_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = std::pin::pin!(super::accept(listener));
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let conn = incoming.next().await.unwrap().unwrap();
        assert!(conn.nodelay().unwrap());
    }
}
