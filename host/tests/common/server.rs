//! A real `sluice serve` process on loopback, for end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice::api::pb;
use sluice_test_programs::{ASYNC_EMAIL, HELLO, MISBEHAVING, RESUMABLE};

pub use pb::activity_service_client::ActivityServiceClient;
pub use pb::completion_service_client::CompletionServiceClient;

/// The activity types every test server has; `extra` is appended.
pub fn config(extra: &str) -> String {
    let cache = super::cache_dir();
    format!(
        r#"
[store]
path = "sluice.db"

[sandbox]
pool_instances = 64
cache_dir = "{cache}"

[queues.default]
slots = 16

[activities.hello]
component = "{HELLO}"
start_to_close_timeout = "10s"
[activities.hello.retry]
initial_interval = "100ms"
maximum_attempts = 3

[activities.misbehaving]
component = "{MISBEHAVING}"
start_to_close_timeout = "30s"
cancel_grace = "500ms"
[activities.misbehaving.retry]
initial_interval = "100ms"
maximum_attempts = 2

[activities.resumable]
component = "{RESUMABLE}"
start_to_close_timeout = "30s"
[activities.resumable.retry]
initial_interval = "100ms"

[activities.send-email]
component = "{ASYNC_EMAIL}"
dirs_rw = ["outbox::/outbox"]
start_to_close_timeout = "60s"
{extra}
"#,
        cache = cache.display()
    )
}

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    /// The HTTP listener's `127.0.0.1:PORT`.
    pub http: String,
    pub dir: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a server in a new temporary directory.
    pub fn start(extra_config: &str) -> (Server, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("outbox")).unwrap();
        std::fs::write(dir.path().join("sluice.toml"), config(extra_config)).unwrap();
        (Server::start_in(dir.path()), dir)
    }

    /// Starts a server on the config and store already in `dir`.
    pub fn start_in(dir: &Path) -> Server {
        // Run from the folder, as a user would: `--config sluice.toml`.
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .current_dir(dir)
            .args(["serve", "--config", "sluice.toml"])
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--shutdown-grace", "1s"])
            .env("SLUICE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("sluice serving on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
                if let Some(rest) = line.strip_prefix("sluice http on http://") {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let mut next = || match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("sluice serve did not start:\n{}", log.lock().unwrap());
            }
        };
        let (addr, http) = (next(), next());
        Server { child, addr: format!("http://{addr}"), http, dir: dir.to_path_buf(), log }
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    pub async fn activities(&self) -> ActivityServiceClient<tonic::transport::Channel> {
        ActivityServiceClient::connect(self.addr.clone()).await.unwrap()
    }

    pub async fn completions(&self) -> CompletionServiceClient<tonic::transport::Channel> {
        CompletionServiceClient::connect(self.addr.clone()).await.unwrap()
    }

    /// Runs the `sluice` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).env("SLUICE_ADDRESS", &self.addr).output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn json(v: serde_json::Value) -> Option<pb::Payload> {
    Some(pb::Payload { encoding: "json/plain".into(), data: serde_json::to_vec(&v).unwrap() })
}

pub fn decode(p: &Option<pb::Payload>) -> serde_json::Value {
    serde_json::from_slice(&p.as_ref().expect("payload").data).unwrap()
}

pub fn secs(s: f64) -> Option<pbjson_types::Duration> {
    let d = Duration::from_secs_f64(s);
    Some(pbjson_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 })
}

pub fn start_req(activity_type: &str, id: &str, input: serde_json::Value) -> pb::StartActivityRequest {
    pb::StartActivityRequest {
        activity_id: id.into(),
        activity_type: activity_type.into(),
        input: json(input),
        ..Default::default()
    }
}

/// Waits (long-polling) until the execution closes.
pub async fn result(
    c: &mut ActivityServiceClient<tonic::transport::Channel>,
    id: &str,
    wait_s: f64,
) -> pb::ActivityExecution {
    let deadline = Instant::now() + Duration::from_secs_f64(wait_s);
    loop {
        let r = c
            .get_activity_result(pb::GetActivityResultRequest {
                activity_id: id.into(),
                run_id: String::new(),
                wait: secs(5.0),
            })
            .await
            .unwrap()
            .into_inner();
        if r.closed || Instant::now() > deadline {
            return r.execution.unwrap();
        }
    }
}

pub async fn describe(
    c: &mut ActivityServiceClient<tonic::transport::Channel>,
    id: &str,
) -> pb::DescribeActivityResponse {
    c.describe_activity(pb::DescribeActivityRequest {
        activity_id: id.into(),
        logs_page_size: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

/// Polls until the execution has `status` (panics after ~10 s).
pub async fn wait_status(
    c: &mut ActivityServiceClient<tonic::transport::Channel>,
    id: &str,
    status: pb::ActivityStatus,
) {
    for _ in 0..400 {
        if describe(c, id).await.execution.unwrap().status == status as i32 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} never reached {status:?}");
}
