//! Engine rules through the real engine and a real SQLite store, on a
//! [`ManualClock`] with a scripted attempt runner: no WASM, no sleeps.

mod eager;
mod hosts;
mod operate;
mod rules;
mod types;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{AttemptCall, AttemptRunner, Engine, EngineEvent, EventKind, ManualClock, RunFuture, StartRequest};
use crate::activity::{Execution, HistoryKind, Status, Timeouts};
use crate::config::Config;
use crate::payload::Payload;
use crate::sandbox::{AttemptEvent, AttemptOutcome, AttemptReport, FailureKind, InterruptReason, SandboxFailure};
use crate::store::{LogPage, SqliteStore, Store};

/// The clock starts here (ms), far from zero so no rule relies on it.
const T0: u64 = 1_000_000;
/// Longest real wait for something the engine must do at once.
const PATIENCE: Duration = Duration::from_secs(10);

/// Hands every attempt to the test, which plays the guest.
struct ScriptedRunner {
    attempts: mpsc::UnboundedSender<Scripted>,
}

/// A running attempt, played by the test.
struct Scripted {
    call: AttemptCall,
    /// The latest heartbeat details, reported however the attempt ends.
    latest: Arc<Mutex<Option<Payload>>>,
    done: oneshot::Sender<AttemptOutcome>,
}

impl AttemptRunner for ScriptedRunner {
    fn run(&self, call: AttemptCall) -> RunFuture {
        let (done, outcome) = oneshot::channel();
        let control = call.control.clone();
        let latest = Arc::new(Mutex::new(call.last_heartbeat.clone()));
        let _ = self.attempts.send(Scripted { latest: latest.clone(), call, done });
        Box::pin(async move {
            // Like the sandbox: an interrupt stops the guest wherever it is.
            let outcome = tokio::select! {
                o = outcome => o.unwrap_or(AttemptOutcome::Pending),
                reason = control.wait_interrupted() => AttemptOutcome::SandboxFailure(interrupted(reason)),
            };
            let last_heartbeat = latest.lock().unwrap().clone();
            let mut report = AttemptReport::host_failure(String::new(), last_heartbeat);
            report.outcome = outcome;
            report
        })
    }

    fn check(&self, path: &std::path::Path) -> Result<(String, u64), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((blake3::hash(&bytes).to_hex().to_string(), bytes.len() as u64))
    }

    fn install(
        &self,
        _: &str,
        _: &crate::config::ActivityConfig,
        _: &[(String, std::path::PathBuf)],
    ) -> Result<(), String> {
        Ok(())
    }
}

fn interrupted(reason: InterruptReason) -> SandboxFailure {
    let kind = match reason {
        InterruptReason::Timeout => FailureKind::Timeout,
        InterruptReason::HeartbeatTimeout => FailureKind::HeartbeatTimeout,
        InterruptReason::Cancelled => FailureKind::Cancelled,
        InterruptReason::Terminated => FailureKind::Terminated,
        InterruptReason::Shutdown => FailureKind::Shutdown,
    };
    SandboxFailure { kind, message: format!("interrupted: {reason:?}"), backtrace: None }
}

impl Scripted {
    fn input(&self) -> Value {
        self.call.input.to_json_value()
    }

    /// Heartbeats like a guest; answers whether cancellation was requested.
    fn heartbeat(&self, details: Value) -> bool {
        let details = Payload::json(&details);
        *self.latest.lock().unwrap() = Some(details.clone());
        let _ = self.call.events.send(AttemptEvent::Heartbeat { details: Some(details) });
        self.call.control.cancel_requested()
    }

    /// Logs like a guest.
    fn log(&self, message: &str) {
        let level = crate::sandbox::LogLevel::Info;
        let _ = self.call.events.send(AttemptEvent::Log { level, message: message.into(), fields: vec![] });
    }

    /// Why the engine interrupted this attempt, if it did.
    fn interrupted(&self) -> Option<InterruptReason> {
        self.call.control.interrupted()
    }

    fn finish(self, outcome: AttemptOutcome) {
        let _ = self.done.send(outcome);
    }

    fn complete(self, result: Value) {
        self.finish(AttemptOutcome::Completed { result: Payload::json(&result) });
    }

    fn fail(self, error_type: &str) {
        self.finish(AttemptOutcome::Failed(crate::sandbox::ApplicationError {
            message: format!("{error_type} happened"),
            error_type: error_type.into(),
            non_retryable: false,
            details: None,
            next_retry_delay: None,
        }));
    }
}

struct Harness {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    store: Arc<SqliteStore>,
    attempts: mpsc::UnboundedReceiver<Scripted>,
    events: tokio::sync::broadcast::Receiver<EngineEvent>,
    config: Config,
    dir: tempfile::TempDir,
}

/// A config with type `t` on queue `q` (and `extra` TOML appended).
fn config(dir: &std::path::Path, extra: &str) -> Config {
    let text = format!(
        "[store]\npath = \"engine.db\"\n[server]\nhost_id = \"h1\"\n\
         [activities.t]\ncomponent = \"unused.wasm\"\nqueues = [\"q\"]\nstart_to_close_timeout = \"60s\"\n{extra}"
    );
    // The scripted runner runs no component, but the engine stores each.
    for file in ["unused.wasm", "u.wasm"] {
        std::fs::write(dir.join(file), file).unwrap();
    }
    Config::parse(&text, dir).unwrap()
}

impl Harness {
    async fn new(extra: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), extra);
        let store = Arc::new(SqliteStore::open(&config.store.path).unwrap());
        Harness::on(dir, config, store).await
    }

    /// An engine on `store`, as if the host (re)started now.
    async fn on(dir: tempfile::TempDir, config: Config, store: Arc<SqliteStore>) -> Harness {
        let clock = Arc::new(ManualClock::new(T0));
        let (tx, attempts) = mpsc::unbounded_channel();
        let runner = Arc::new(ScriptedRunner { attempts: tx });
        let engine = Engine::with_runner(&config, store.clone(), clock.clone(), runner).await.unwrap();
        let events = engine.subscribe();
        Harness { engine, clock, store, attempts, events, config, dir }
    }

    async fn start(&self, id: &str, input: Value, f: impl FnOnce(&mut StartRequest)) {
        let mut req = StartRequest {
            activity_id: Some(id.into()),
            activity_type: "t".into(),
            input: Some(Payload::json(&input)),
            ..Default::default()
        };
        f(&mut req);
        self.engine.start_activity(req).await.unwrap();
    }

    /// The next attempt the engine hands to its workers.
    async fn next_attempt(&mut self) -> Scripted {
        tokio::time::timeout(PATIENCE, self.attempts.recv()).await.expect("an attempt is dispatched").unwrap()
    }

    /// Waits for the transition `kind` of `id`.
    async fn transition(&mut self, id: &str, kind: HistoryKind) -> Status {
        loop {
            let ev = tokio::time::timeout(PATIENCE, self.events.recv()).await.expect("the transition happens").unwrap();
            if let EventKind::Transition { transition, status } = ev.kind
                && ev.activity_id == id
                && transition == kind
            {
                return status;
            }
        }
    }

    /// Waits for a heartbeat of `id` to be committed.
    async fn heartbeat_committed(&self, id: &str, details: Value) {
        let want = Some(Payload::json(&details));
        tokio::time::timeout(PATIENCE, async {
            while self.exec(id).await.heartbeat_details != want {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the heartbeat is committed");
    }

    /// Waits until the engine has received the heartbeat `details` of `id`
    /// (and so every heartbeat before it).
    async fn heartbeat_seen(&mut self, id: &str, details: Value) {
        let want = Some(Payload::json(&details));
        loop {
            let ev = tokio::time::timeout(PATIENCE, self.events.recv()).await.expect("the heartbeat arrives").unwrap();
            if let EventKind::Heartbeat { details } = ev.kind
                && ev.activity_id == id
                && details == want
            {
                return;
            }
        }
    }

    async fn exec(&self, id: &str) -> Execution {
        self.store.get(id, None).await.unwrap().unwrap().value
    }

    async fn history(&self, id: &str) -> Vec<String> {
        let d = self.store.describe(id, None, LogPage { token: None, size: 1 }).await.unwrap().unwrap();
        d.history.into_iter().map(|h| h.kind.to_string()).collect()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// Waits until the engine has interrupted `a` (it does so right after the
/// transition that ended the attempt is committed).
async fn interrupted_by(a: &Scripted) -> InterruptReason {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(r) = a.interrupted() {
                return r;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the attempt is interrupted")
}

fn stc(secs: u64) -> Timeouts {
    Timeouts { start_to_close: Some(Duration::from_secs(secs)), ..Timeouts::default() }
}

fn no_retries(req: &mut StartRequest) {
    req.retry = Some(crate::activity::RetryPolicy { maximum_attempts: 1, ..Default::default() });
}

fn input() -> Value {
    json!({"n": 1})
}
