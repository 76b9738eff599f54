//! Running one attempt: a fresh (or warm) instance in a store armed with
//! the attempt's limits and deadline, the call to the guest's `run`, raced
//! against the deadline and the host's interrupts.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpCtx;

use super::LoadedComponent;
use super::bindings::ActivityInfo;
use super::classify::{Stop, classify, failure, guest_outcome};
use super::control::{AttemptControl, InterruptReason};
use super::events::AttemptEvent;
use super::guest::Guest;
use super::host_api::ActivityHost;
use super::http::HttpHooks;
use super::limits::{Limits, MemoryLimiter};
use super::report::{AttemptOutcome, AttemptReport, FailureKind, Output};
use super::state::StoreState;
use super::warm::{MAX_USES, Warm, WarmPool};
use super::wasi::{self, Captured, Grants};
use crate::payload::Payload;

/// Everything needed to run one attempt.
pub struct AttemptRequest {
    pub info: ActivityInfo,
    pub input: Payload,
    /// Details of the latest heartbeat of earlier attempts, if any.
    pub last_heartbeat: Option<Payload>,
    pub task_token: crate::token::AttemptToken,
    pub limits: Limits,
    pub grants: Grants,
    pub control: Arc<AttemptControl>,
    /// Receives heartbeats, progress and logs as they happen.
    pub events: Option<UnboundedSender<AttemptEvent>>,
    /// Where to take a warm instance from and return it to; `None` runs
    /// every attempt in a fresh instance (the default).
    pub warm: Option<Arc<WarmPool>>,
}

/// What is left of an attempt once its report is out: the store, with its
/// instance's memory, tables and stack. Dropping it gives them back to the
/// pool (for an interpreted guest, unmapping the pages it touched: 0.1–0.2
/// ms for Python's `hello`); whoever holds it decides when.
#[must_use = "dropping a teardown is the work it stands for"]
pub struct Teardown(#[allow(dead_code, reason = "held to be dropped")] Option<Store<StoreState>>);

pub(crate) async fn run(component: &LoadedComponent, req: AttemptRequest) -> (AttemptReport, Teardown) {
    let started = Instant::now();
    let deadline = req.limits.timeout.map(|t| started + t);
    let heartbeat_before = req.last_heartbeat.clone();
    let pool = req.warm.clone();

    let metrics = crate::metrics::metrics();
    let prepared = match pool.as_ref().and_then(|p| p.take()) {
        Some(warm) => {
            metrics.warm_hits.inc();
            Ok(rearm(component, warm, &req, deadline))
        }
        None => {
            if pool.is_some() {
                metrics.warm_misses.inc();
            }
            prepare(component, &req, deadline)
        }
    };
    let mut p = match prepared {
        Ok(p) => p,
        Err(err) => {
            let failure = failure(FailureKind::Host, format!("cannot set up the sandbox: {err:#}"));
            return (report(failure, heartbeat_before, None, None, started, false), Teardown(None));
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
            None => {
                let at = Instant::now();
                let i = component.pre.instantiate_async(&mut *store).await?;
                metrics.instantiate.observe(at.elapsed().as_secs_f64());
                i
            }
        };
        let outcome = instance.call_run(&mut *store, &input).await?;
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
            return (report, Teardown(None));
        }
    }
    (report, Teardown(Some(p.store)))
}

/// A store ready for one attempt, with its instance when it is warm.
struct Prepared {
    store: Store<StoreState>,
    instance: Option<Guest>,
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
