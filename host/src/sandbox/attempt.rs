//! Running one attempt: a fresh instance in a fresh store, the call to the
//! guest's `run`, and the classification of how it ended.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::LoadedComponent;
use super::bindings::{ActivityComponent, ActivityInfo, Outcome};
use super::control::{AttemptControl, InterruptReason};
use super::events::AttemptEvent;
use super::host_api::{ActivityHost, LogLimitExceeded};
use super::http::HttpHooks;
use super::limits::{Limits, MemoryLimiter};
use super::warm::{MAX_USES, Warm, WarmPool};
use super::wasi::{self, Captured, Grants};
use crate::payload::{Payload, PayloadTooLarge};

/// Everything needed to run one attempt.
pub struct AttemptRequest {
    pub info: ActivityInfo,
    pub input: Payload,
    /// Details of the latest heartbeat of earlier attempts, if any.
    pub last_heartbeat: Option<Payload>,
    pub task_token: String,
    pub limits: Limits,
    pub grants: Grants,
    pub control: Arc<AttemptControl>,
    /// Receives heartbeats, progress and logs as they happen.
    pub events: Option<UnboundedSender<AttemptEvent>>,
    /// Where to take a warm instance from and return it to; `None` runs
    /// every attempt in a fresh instance (the default).
    pub warm: Option<Arc<WarmPool>>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// The guest returned a result.
    Completed {
        #[serde(serialize_with = "as_json")]
        result: Payload,
    },
    /// The guest handed the work off; it will be completed externally.
    Pending,
    /// The guest acknowledged a cancellation request.
    Cancelled {
        #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
        details: Option<Payload>,
    },
    /// The guest reported an application error.
    Failed(ApplicationError),
    /// The sandbox stopped the guest (trap, limit, deadline, ...).
    SandboxFailure(SandboxFailure),
}

fn as_json<S: serde::Serializer>(p: &Payload, s: S) -> Result<S::Ok, S::Error> {
    p.to_json_value().serialize(s)
}

/// An error the activity reported on purpose.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationError {
    pub message: String,
    pub error_type: String,
    pub non_retryable: bool,
    #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
    pub details: Option<Payload>,
    pub next_retry_delay: Option<Duration>,
}

/// The sandbox ended the attempt; `kind` says why in one word.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxFailure {
    pub kind: FailureKind,
    pub message: String,
    /// The guest's wasm backtrace, when it trapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backtrace: Option<String>,
}

/// The categories of sandbox failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The start-to-close deadline passed; the guest was interrupted.
    Timeout,
    /// No heartbeat within the heartbeat timeout; the guest was interrupted.
    HeartbeatTimeout,
    /// Interrupted after ignoring a cancellation request.
    Cancelled,
    /// Interrupted because the execution was terminated.
    Terminated,
    /// Interrupted because the host is shutting down.
    Shutdown,
    /// The guest needed more memory than its cap.
    OutOfMemory,
    /// The guest overflowed its stack.
    StackOverflow,
    /// The guest used up its fuel.
    FuelExhausted,
    /// stdout, stderr or the log went over the output cap.
    OutputLimit,
    /// The result or heartbeat details went over the payload cap.
    PayloadTooLarge,
    /// The guest trapped (panic, unreachable, bad memory access, ...).
    Trap,
    /// The host could not run the guest (e.g. no free instance slot).
    Host,
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(v.as_str().unwrap_or("unknown"))
    }
}

/// Bytes a guest wrote to a stream, and whether some were refused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Output {
    #[serde(serialize_with = "lossy")]
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

fn lossy<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// The full account of one attempt.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptReport {
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
    /// The latest heartbeat details, to hand to the next attempt.
    #[serde(serialize_with = "crate::payload::serialize_opt_as_json")]
    pub last_heartbeat: Option<Payload>,
    /// Socket uses and other capability checks the sandbox refused.
    pub denials: Vec<String>,
    pub stdout: Output,
    pub stderr: Output,
    pub duration: Duration,
    /// The attempt ran in a warm instance kept from an earlier attempt.
    pub warm: bool,
}

/// The data of an attempt's store.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    http_hooks: HttpHooks,
    /// Socket and HTTP refusals of the current attempt.
    denials: Arc<Mutex<Vec<String>>>,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) host: ActivityHost,
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

pub(crate) async fn run(component: &LoadedComponent, req: AttemptRequest) -> AttemptReport {
    let started = Instant::now();
    let deadline = req.limits.timeout.map(|t| started + t);
    let heartbeat_before = req.last_heartbeat.clone();
    let pool = req.warm.clone();

    let prepared = match pool.as_ref().and_then(|p| p.take()) {
        Some(warm) => Ok(rearm(component, warm, &req, deadline)),
        None => prepare(component, &req, deadline),
    };
    let mut p = match prepared {
        Ok(p) => p,
        Err(err) => {
            let failure = failure(FailureKind::Host, format!("cannot set up the sandbox: {err:#}"));
            return report(failure, heartbeat_before, None, None, started, false);
        }
    };

    let control = req.control.clone();
    let input = req.input.into();
    let warm = p.instance.is_some();
    let instance = p.instance.take();
    let store = &mut p.store;
    let call = async {
        let instance = match instance {
            Some(i) => i,
            None => component.pre.instantiate_async(&mut *store).await?,
        };
        let outcome = instance.sluice_activity_activity().call_run(&mut *store, &input).await?;
        Ok((instance, outcome))
    };
    let result = tokio::select! {
        result = call => result.map_err(Stop::Error),
        reason = control.wait_interrupted() => Err(Stop::Interrupted(reason)),
        () = crate::util::sleep_until(deadline.map(Into::into)) => {
            control.interrupt(InterruptReason::Timeout);
            Err(Stop::Interrupted(InterruptReason::Timeout))
        }
    };

    let state = p.store.data();
    let (outcome, instance) = match result {
        Ok((instance, outcome)) => (guest_outcome(outcome, &req.limits), Some(instance)),
        Err(stop) => (AttemptOutcome::SandboxFailure(classify(stop, state, &p.captured, &req.limits)), None),
    };
    let last_heartbeat = state.host.heartbeat_details.clone().map(Into::into);
    let report = report(outcome, last_heartbeat, Some(&state.denials), Some(&p.captured), started, warm);

    // Keep the instance only if the guest ended normally and left it sound.
    if let (Some(pool), Some(instance)) = (pool, instance) {
        let sound = !matches!(report.outcome, AttemptOutcome::SandboxFailure(_))
            && p.store.data().limiter.refused.is_none()
            && control.interrupted().is_none()
            && p.captured.has_room()
            && p.uses + 1 < MAX_USES;
        if sound {
            pool.put(Warm { store: p.store, instance, captured: p.captured, uses: p.uses + 1 });
        }
    }
    report
}

/// A store ready for one attempt, with its instance when it is warm.
struct Prepared {
    store: Store<StoreState>,
    instance: Option<ActivityComponent>,
    captured: Captured,
    uses: u32,
}

fn prepare(component: &LoadedComponent, req: &AttemptRequest, deadline: Option<Instant>) -> anyhow::Result<Prepared> {
    let denials = Arc::new(Mutex::new(Vec::new()));
    let (wasi, captured) = wasi::build(&req.grants, req.limits.max_output, req.warm.is_some(), denials.clone())?;
    let state = StoreState {
        wasi,
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
        http_hooks: HttpHooks { allow: req.grants.http.clone().into(), denials: denials.clone() },
        denials,
        limiter: MemoryLimiter::new(req.limits.memory),
        host: activity_host(req),
    };
    let mut store = Store::new(component.engine(), state);
    store.limiter(|s| &mut s.limiter);
    if !component.metered() && req.limits.fuel.is_some() {
        anyhow::bail!("a fuel limit needs the component loaded with metering");
    }
    arm(&mut store, req, deadline, component.metered())?;
    Ok(Prepared { store, instance: None, captured, uses: 0 })
}

/// A warm instance, reset for this attempt: its own host state, limits,
/// deadline and output; the guest's memory and module state are as the
/// previous attempt left them.
fn rearm(component: &LoadedComponent, warm: Warm, req: &AttemptRequest, deadline: Option<Instant>) -> Prepared {
    let Warm { mut store, instance, mut captured, uses } = warm;
    let state = store.data_mut();
    state.host = activity_host(req);
    state.limiter = MemoryLimiter::new(req.limits.memory);
    state.http_hooks = HttpHooks { allow: req.grants.http.clone().into(), denials: state.denials.clone() };
    captured.rearm(req.limits.max_output);
    // Setting fuel cannot fail here: the instance was first prepared for the
    // same type, with the same limits.
    let _ = arm(&mut store, req, deadline, component.metered());
    Prepared { store, instance: Some(instance), captured, uses }
}

fn activity_host(req: &AttemptRequest) -> ActivityHost {
    ActivityHost {
        info: req.info.clone(),
        task_token: req.task_token.clone(),
        control: req.control.clone(),
        events: req.events.clone(),
        heartbeat_details: req.last_heartbeat.clone().map(Into::into),
        max_payload: req.limits.max_payload,
        max_log: req.limits.max_output,
        log_bytes: 0,
    }
}

/// Fuel and the epoch callback of one attempt.
fn arm(
    store: &mut Store<StoreState>,
    req: &AttemptRequest,
    deadline: Option<Instant>,
    metered: bool,
) -> anyhow::Result<()> {
    if metered {
        store.set_fuel(req.limits.fuel.unwrap_or(u64::MAX))?;
    }
    // Every epoch tick the guest checks in: stop it if the host asked or the
    // deadline passed, otherwise yield to the async runtime so one busy guest
    // cannot starve the others.
    let control = req.control.clone();
    store.epoch_deadline_callback(move |_| {
        if control.interrupted().is_some() {
            return Ok(UpdateDeadline::Interrupt);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            control.interrupt(InterruptReason::Timeout);
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
    Ok(())
}

enum Stop {
    Error(wasmtime::Error),
    Interrupted(InterruptReason),
}

fn guest_outcome(outcome: Outcome, limits: &Limits) -> AttemptOutcome {
    match outcome {
        Outcome::Completed(result) => {
            let result: Payload = result.into();
            match result.check_size("the result", limits.max_payload) {
                Ok(()) => AttemptOutcome::Completed { result },
                Err(e) => AttemptOutcome::SandboxFailure(failure_of(FailureKind::PayloadTooLarge, e)),
            }
        }
        Outcome::Pending => AttemptOutcome::Pending,
        Outcome::Cancelled(details) => AttemptOutcome::Cancelled { details: details.map(Into::into) },
        Outcome::Failed(e) => AttemptOutcome::Failed(ApplicationError {
            message: e.message,
            error_type: e.error_type,
            non_retryable: e.non_retryable,
            details: e.details.map(Into::into),
            next_retry_delay: e.next_retry_delay_ms.map(Duration::from_millis),
        }),
    }
}

fn classify(stop: Stop, state: &StoreState, captured: &Captured, limits: &Limits) -> SandboxFailure {
    let err = match stop {
        Stop::Interrupted(reason) => return interrupted(reason, limits),
        Stop::Error(err) => err,
    };
    if let Some(reason) = state.host.control.interrupted() {
        return interrupted(reason, limits);
    }
    if let Some(e) = err.downcast_ref::<PayloadTooLarge>() {
        return failure_of(FailureKind::PayloadTooLarge, e);
    }
    if let Some(e) = err.downcast_ref::<LogLimitExceeded>() {
        return failure_of(FailureKind::OutputLimit, e);
    }
    let backtrace = err.downcast_ref::<wasmtime::WasmBacktrace>().map(|b| b.to_string());
    let with_bt = |mut f: SandboxFailure| {
        f.backtrace = backtrace.clone();
        f
    };
    if let Some(asked) = state.limiter.refused {
        return with_bt(failure(
            FailureKind::OutOfMemory,
            format!(
                "the activity needed more than its memory limit of {} (it asked for {})",
                bytesize::ByteSize(limits.memory),
                bytesize::ByteSize(asked)
            ),
        ));
    }
    if captured.overflowed() {
        return with_bt(failure(
            FailureKind::OutputLimit,
            format!(
                "the activity wrote more than {} to stdout or stderr; the output was truncated",
                bytesize::ByteSize(limits.max_output as u64)
            ),
        ));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => with_bt(failure(
            FailureKind::StackOverflow,
            "the activity overflowed its stack (runaway recursion?)".into(),
        )),
        Some(Trap::OutOfFuel) => with_bt(failure(
            FailureKind::FuelExhausted,
            format!("the activity used up its fuel ({} units)", limits.fuel.unwrap_or(0)),
        )),
        Some(trap) => {
            let mut message = format!("the activity trapped: {trap}");
            if *trap == Trap::MemoryOutOfBounds {
                message
                    .push_str(" (deep recursion that overflows a shadow stack in linear memory looks like this too)");
            }
            if let Some(panic) = panic_message(&captured.stderr()) {
                message.push_str(&format!(" after a panic: {panic}"));
            }
            with_bt(failure(FailureKind::Trap, message))
        }
        None => with_bt(failure(FailureKind::Host, format!("the host could not run the activity: {err:#}"))),
    }
}

fn interrupted(reason: InterruptReason, limits: &Limits) -> SandboxFailure {
    let (kind, message) = match reason {
        InterruptReason::Timeout => (
            FailureKind::Timeout,
            format!(
                "the activity ran past its {} deadline and was interrupted",
                limits.timeout.map(|t| humantime::format_duration(t).to_string()).unwrap_or_default()
            ),
        ),
        InterruptReason::HeartbeatTimeout => {
            (FailureKind::HeartbeatTimeout, "no heartbeat within the heartbeat timeout; interrupted".into())
        }
        InterruptReason::Cancelled => {
            (FailureKind::Cancelled, "the activity did not stop after cancellation was requested; interrupted".into())
        }
        InterruptReason::Terminated => (FailureKind::Terminated, "the execution was terminated".into()),
        InterruptReason::Shutdown => (FailureKind::Shutdown, "the host is shutting down".into()),
    };
    failure(kind, message)
}

/// The message of a Rust guest's panic, from its stderr.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let at = text.rfind("panicked at ")?;
    let rest = &text[at..];
    // "panicked at src/lib.rs:1:2:\nmessage\nnote: ..."
    let message = rest.lines().nth(1)?.trim();
    Some(message.to_string())
}

fn failure(kind: FailureKind, message: String) -> SandboxFailure {
    SandboxFailure { kind, message, backtrace: None }
}

fn failure_of(kind: FailureKind, e: impl std::fmt::Display) -> SandboxFailure {
    failure(kind, e.to_string())
}

fn report(
    outcome: impl Into<AttemptOutcome>,
    last_heartbeat: Option<Payload>,
    denials: Option<&Mutex<Vec<String>>>,
    captured: Option<&Captured>,
    started: Instant,
    warm: bool,
) -> AttemptReport {
    let output = |bytes: Vec<u8>, cap: usize| Output { truncated: bytes.len() >= cap, bytes };
    let (stdout, stderr) = match captured {
        Some(c) => (output(c.stdout(), c.cap), output(c.stderr(), c.cap)),
        None => Default::default(),
    };
    let denials = denials.map(|d| std::mem::take(&mut *d.lock().unwrap())).unwrap_or_default();
    AttemptReport {
        outcome: outcome.into(),
        last_heartbeat,
        denials,
        stdout,
        stderr,
        duration: started.elapsed(),
        warm,
    }
}

impl From<SandboxFailure> for AttemptOutcome {
    fn from(f: SandboxFailure) -> Self {
        AttemptOutcome::SandboxFailure(f)
    }
}
