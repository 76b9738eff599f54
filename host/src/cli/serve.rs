//! `sluice serve`: the host process: store, engine, gRPC API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::Exit;
use crate::config::Config;
use crate::engine::{Engine, SystemClock};
use crate::store::{PostgresStore, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The host configuration (see examples/sluice.toml).
    #[arg(long, short, env = "SLUICE_CONFIG", default_value = "sluice.toml")]
    pub config: PathBuf,

    /// Listen on this address instead of the configured one (port 0 picks
    /// a free port; the chosen address is printed).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,

    /// Serve HTTP (JSON API, metrics) on this address instead of the
    /// configured one (port 0 picks a free port; the chosen one is printed).
    #[arg(long)]
    pub http_listen: Option<std::net::SocketAddr>,

    /// How long running attempts may take to finish on shutdown before
    /// they are interrupted (they are retried on the next start).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let mut config = Config::load(&args.config)?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(listen) = args.http_listen {
        config.server.http.listen = listen;
    }
    let (store, store_name): (Arc<dyn Store>, String) = match &config.store.url {
        Some(url) => (
            Arc::new(PostgresStore::open(url, config.store.pool_size as usize, &config.host_id()).await?),
            format!("PostgreSQL {}", crate::store::redacted(url)),
        ),
        None => (Arc::new(SqliteStore::open(&config.store.path)?), config.store.path.display().to_string()),
    };
    let engine = Engine::start(&config, store, Arc::new(SystemClock)).await?;
    let listener = crate::api::bind(config.server.listen).await?;
    let addr = listener.local_addr()?;
    let http = match config.server.http.enabled {
        true => Some(crate::http::bind(config.server.http.listen).await?),
        false => None,
    };
    say!(
        "sluice serving on {addr} (host {}, store {}, {} activity types)",
        engine.host_id(),
        store_name,
        engine.activity_types().len()
    );
    let (stopped, _) = tokio::sync::watch::channel(false);
    let stop_http = {
        let mut rx = stopped.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    if let Some(listener) = http {
        say!("sluice http on http://{}/ (JSON API /api/v1, metrics /metrics)", listener.local_addr()?);
        let api = Arc::new(crate::api::Api { engine: engine.clone() });
        let auth = crate::api::Auth::from_config(&config.server);
        tokio::spawn(async move {
            if let Err(e) = crate::http::serve(api, auth, listener, stop_http).await {
                tracing::error!("the HTTP listener stopped: {e:#}");
            }
        });
    }
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match &mut term { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        say!("shutting down");
        let _ = stopped.send(true);
    };
    let temporal = config.temporal.enabled.then(|| crate::temporal::Frontend {
        engine: engine.clone(),
        namespace: config.temporal.namespace.clone(),
        retention: config.store.retention,
    });
    crate::api::serve_with(engine.clone(), listener, &config.server, temporal, stop).await?;
    engine.shutdown(args.shutdown_grace).await;
    Ok(Exit::Completed)
}
