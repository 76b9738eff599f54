//! The gRPC API over loopback with concurrent clients, in one run:
//! starts/s (StartActivity of activities whose guest returns pending) and
//! async completions/s (CompleteActivity by activity id).
//!
//!     cargo bench -p sluice --bench api          (SLUICE_BENCH_N=... to resize)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice::api::pb;
use sluice::config::Config;
use sluice::engine::{Engine, SystemClock};
use sluice::store::SqliteStore;
use sluice_test_programs::MISBEHAVING;

/// Concurrent client tasks, spread over a few HTTP/2 connections.
const CLIENTS: usize = 64;
const CONNECTIONS: usize = 4;

fn main() {
    let n: usize = std::env::var("SLUICE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[store]\npath = \"bench.db\"\n[sandbox]\npool_instances = 512\n[queues.default]\nslots = 256\n\
             [activities.waiter]\ncomponent = \"{MISBEHAVING}\"\nstart_to_close_timeout = \"10m\"\n"
        );
        let config = Config::parse(&text, dir.path()).unwrap();
        let store = SqliteStore::open(&config.store.path).unwrap();
        let engine = Engine::start(&config, Arc::new(store), Arc::new(SystemClock)).await.unwrap();
        let listener = sluice::api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let server_config = config.server.clone();
        tokio::spawn({
            let engine = engine.clone();
            async move { sluice::api::serve(engine, listener, &server_config, std::future::pending()).await }
        });

        let mut channels = Vec::new();
        for _ in 0..CONNECTIONS {
            channels.push(tonic::transport::Endpoint::from_shared(addr.clone()).unwrap().connect().await.unwrap());
        }
        let input = pb::Payload { encoding: "json/plain".into(), data: br#"{"do":"pending"}"#.to_vec() };

        // Starts.
        let t = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let mut client =
                    pb::activity_service_client::ActivityServiceClient::new(channels[c % CONNECTIONS].clone());
                let input = input.clone();
                tokio::spawn(async move {
                    for i in (c..n).step_by(CLIENTS) {
                        let req = pb::StartActivityRequest {
                            activity_id: format!("a{i}"),
                            activity_type: "waiter".into(),
                            input: Some(input.clone()),
                            ..Default::default()
                        };
                        client.start_activity(req).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let starts = t.elapsed();
        while engine.stats().pending_async.load(Ordering::Relaxed) < n as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Completions by activity id.
        let t = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let mut client =
                    pb::completion_service_client::CompletionServiceClient::new(channels[c % CONNECTIONS].clone());
                tokio::spawn(async move {
                    for i in (c..n).step_by(CLIENTS) {
                        let req = pb::CompleteActivityRequest {
                            target: Some(pb::complete_activity_request::Target::Activity(pb::ActivityRef {
                                activity_id: format!("a{i}"),
                                run_id: String::new(),
                            })),
                            result: Some(pb::Payload { encoding: "json/plain".into(), data: b"true".to_vec() }),
                        };
                        client.complete_activity(req).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let completions = t.elapsed();
        assert_eq!(engine.stats().completed.load(Ordering::Relaxed), n as u64);
        println!("gRPC over loopback, {CLIENTS} concurrent clients on {CONNECTIONS} connections, {n} activities");
        println!("  StartActivity:    {:.0} starts/s", n as f64 / starts.as_secs_f64());
        println!(
            "  CompleteActivity: {:.0} async completions/s (by activity id, each committed)",
            n as f64 / completions.as_secs_f64()
        );
    });
}
