//! Property tests of the state machine: arbitrary options (durations
//! anywhere in protobuf's range), arbitrary events in arbitrary orders, a
//! clock that jumps anywhere. Whatever happens: no panic, every deadline and
//! dispatch time representable and not before the moment it counts from, a
//! refused request changes nothing, a closed execution never changes, and
//! attempts only grow.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::payload::Payload;

/// protobuf's Duration range: ±10,000 years.
const PROTO_MAX_SECS: u64 = 315_576_000_000;

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..10_000).prop_map(Duration::from_millis),
        (0u64..=PROTO_MAX_SECS, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(MAX_DURATION),
        Just(Duration::MAX),
    ]
}

fn timeouts() -> impl Strategy<Value = Timeouts> {
    let d = || proptest::option::of(duration());
    (d(), d(), d(), d()).prop_map(|(a, b, c, h)| Timeouts {
        schedule_to_close: a,
        schedule_to_start: b,
        start_to_close: c,
        heartbeat: h,
    })
}

fn retry() -> impl Strategy<Value = RetryPolicy> {
    let coefficient = prop_oneof![Just(1.0), 1.0f64..10.0, Just(f64::MAX), Just(f64::INFINITY), Just(f64::NAN)];
    (duration(), coefficient, proptest::option::of(duration()), 0u32..5, any::<bool>()).prop_map(
        |(initial_interval, backoff_coefficient, maximum_interval, maximum_attempts, boom)| RetryPolicy {
            initial_interval,
            backoff_coefficient,
            maximum_interval,
            maximum_attempts,
            non_retryable_error_types: if boom { vec!["Boom".into()] } else { vec![] },
        },
    )
}

#[derive(Debug, Clone)]
enum Event {
    /// The clock jumps to this moment (forwards or backwards).
    Clock(Millis),
    /// The clock moves on by this much.
    Advance(Duration),
    Start,
    /// A heartbeat naming the current attempt, or a stale one.
    Heartbeat {
        stale: bool,
    },
    Progress,
    End(Outcome),
    Complete {
        same: bool,
    },
    Fail {
        error_type: &'static str,
        non_retryable: bool,
        delay: Option<Duration>,
    },
    ReportCancelled,
    RequestCancel,
    Terminate,
    Timer,
    HostLost,
}

fn failure() -> impl Strategy<Value = Failure> {
    (prop_oneof![Just("Boom"), Just("Other")], any::<bool>(), proptest::option::of(duration()))
        .prop_map(|(t, non_retryable, delay)| Failure::application(t, "failed", non_retryable, None, delay))
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0..=MAX_MILLIS).prop_map(Event::Clock),
        duration().prop_map(Event::Advance),
        (0u64..100_000).prop_map(|ms| Event::Advance(Duration::from_millis(ms))),
        Just(Event::Start),
        any::<bool>().prop_map(|stale| Event::Heartbeat { stale }),
        Just(Event::Progress),
        prop_oneof![
            Just(Outcome::Completed(Payload::json(&1))),
            Just(Outcome::Pending),
            Just(Outcome::Cancelled(None)),
            failure().prop_map(Outcome::Failed),
            Just(Outcome::DeadlinePassed),
        ]
        .prop_map(Event::End),
        any::<bool>().prop_map(|same| Event::Complete { same }),
        failure().prop_map(|f| Event::Fail {
            error_type: if f.error_type == "Boom" { "Boom" } else { "Other" },
            non_retryable: f.non_retryable,
            delay: f.next_retry_delay
        }),
        Just(Event::ReportCancelled),
        Just(Event::RequestCancel),
        Just(Event::Terminate),
        Just(Event::Timer),
        Just(Event::HostLost),
    ]
}

/// Applies `event` at `now`: `Some(result)` for requests that may be refused.
fn apply(e: &mut Execution, event: &Event, now: &mut Millis) -> Option<Result<Change, Reject>> {
    let attempt = e.attempt;
    Some(match event {
        Event::Clock(t) => {
            *now = *t;
            return None;
        }
        Event::Advance(d) => {
            *now = after(*now, *d);
            return None;
        }
        Event::Start => e.start("w", None, *now),
        Event::Heartbeat { stale } => {
            e.heartbeat(if *stale { attempt.wrapping_sub(1) } else { attempt }, Some(Payload::json(now)), *now)
        }
        Event::Progress => {
            // Not a transition: only its refusal is a result.
            let progress = Progress { percent: Some(50.0), message: "half".into(), at: *now };
            return e.record_progress(attempt, progress).err().map(Err);
        }
        Event::End(outcome) => {
            let end =
                AttemptEnd { outcome: outcome.clone(), heartbeat_details: Some(Payload::json(&"end")), progress: None };
            e.end_attempt(attempt, end, *now)
        }
        Event::Complete { same } => e.complete(attempt, Payload::json(&if *same { 1 } else { 2 }), *now),
        Event::Fail { error_type, non_retryable, delay } => {
            e.fail(attempt, Failure::application(error_type, "no", *non_retryable, None, *delay), *now)
        }
        Event::ReportCancelled => e.report_cancelled(attempt, None, *now),
        Event::RequestCancel => e.request_cancel(*now),
        Event::Terminate => e.terminate("enough", *now),
        Event::Timer => return e.on_timer(*now).map(Ok),
        Event::HostLost => return e.host_lost(*now).map(Ok),
    })
}

/// Every moment the execution keeps is representable, and no deadline lies
/// before the moment it counts from.
fn check_moments(e: &Execution) -> Result<(), TestCaseError> {
    for t in [e.next_deadline(), e.dispatchable_at(), e.schedule_to_close_deadline(), e.start_to_close_deadline()] {
        prop_assert!(t.is_none_or(|t| t <= MAX_MILLIS), "{t:?} is not representable");
    }
    if let Some(d) = e.schedule_to_close_deadline() {
        prop_assert!(d >= e.scheduled_at.min(MAX_MILLIS));
    }
    if let (Some(d), Some(started)) = (e.start_to_close_deadline(), e.started_at) {
        prop_assert!(d >= started.min(MAX_MILLIS));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_events_at_any_times_keep_the_invariants(
        timeouts in timeouts(),
        retry in retry(),
        start in 0..=MAX_MILLIS,
        events in proptest::collection::vec(event(), 0..40),
    ) {
        let new = NewExecution {
            activity_id: "a".into(),
            run_id: "r".into(),
            activity_type: "t".into(),
            task_queue: "q".into(),
            input: Payload::json(&0),
            priority: 3,
            request_id: None,
            timeouts,
            retry,
            cancel_grace: Duration::from_secs(5),
            pinned_version: None,
            trace: None,
            fairness: None,
        };
        // Options out of range are refused, with a reason, and that is all.
        let Ok(mut e) = Execution::new(new, start) else { return Ok(()) };
        let mut now = start;
        let mut closed: Option<Execution> = None;
        for event in &events {
            let before = e.clone();
            let result = apply(&mut e, event, &mut now);
            match &result {
                Some(Err(_)) => prop_assert_eq!(&e, &before, "a refused {:?} changed the execution", event),
                Some(Ok(Change::AlreadyDone)) => prop_assert_eq!(&e, &before, "a repeated {:?} changed it", event),
                Some(Ok(Change::RetryScheduled { at, .. })) => {
                    prop_assert!(*at >= now.min(MAX_MILLIS), "retry at {} before now {}", at, now);
                    prop_assert_eq!(e.dispatchable_at(), Some(*at));
                }
                _ => {}
            }
            check_moments(&e)?;
            prop_assert!(e.attempt >= before.attempt, "attempts went from {} to {}", before.attempt, e.attempt);
            if let Some(c) = &closed {
                prop_assert_eq!(&e, c, "{:?} changed a closed execution", event);
            } else if e.status.is_closed() {
                closed = Some(e.clone());
            }
        }
    }

    #[test]
    fn retry_delays_never_overflow(retry in retry(), attempt in any::<u32>()) {
        if retry.validate().is_ok() {
            let d = retry.delay_after(attempt);
            prop_assert!(d <= retry.maximum_interval() && d <= MAX_DURATION);
        }
    }
}
