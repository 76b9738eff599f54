//! The gRPC server (tonic): the four services of `proto/sluice/v1`, bearer
//! token auth on every RPC when configured, optional TLS, bounded requests.

mod auth;
pub mod convert;
mod services;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::config::ServerConfig;
use crate::engine::Engine;

pub use auth::{Auth, hash_token};

/// The generated protobuf types and service stubs.
#[allow(clippy::large_enum_variant)]
pub mod pb {
    tonic::include_proto!("sluice.v1");
}

/// Bytes a request may carry beyond one maximal payload (ids, options).
const ENVELOPE: usize = 64 * 1024;

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let auth = Auth::from_config(config);
    let max = engine.max_payload() + ENVELOPE;
    let api = || services::Api { engine: engine.clone() };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<pb::activity_service_server::ActivityServiceServer<services::Api>>().await;

    let mut server = Server::builder().layer(tower::util::MapResponseLayer::new(oversized_is_resource_exhausted));
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
    use pb::{
        activity_service_server::ActivityServiceServer, completion_service_server::CompletionServiceServer,
        operator_service_server::OperatorServiceServer, worker_service_server::WorkerServiceServer,
    };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    server
        .add_service(tonic::service::interceptor::InterceptedService::new(health_service, auth.clone()))
        .add_service(service!(ActivityServiceServer))
        .add_service(service!(CompletionServiceServer))
        .add_service(service!(WorkerServiceServer))
        .add_service(service!(OperatorServiceServer))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// tonic reports a request over the size limit as OUT_OF_RANGE; gRPC (and
/// our contract) says RESOURCE_EXHAUSTED. Errors before any response
/// message travel in the headers ("trailers-only"), so a header rewrite
/// suffices.
fn oversized_is_resource_exhausted<B>(mut res: http::Response<B>) -> http::Response<B> {
    let headers = res.headers_mut();
    let out_of_range = headers.get("grpc-status").is_some_and(|v| v == "11");
    let too_large = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| m.replace("%20", " ").contains("message length too large"));
    if out_of_range && too_large {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    res
}

/// Binds the listen address with a clear error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
}
