//! The engine's public operations on executions: start, complete, fail,
//! report cancelled, heartbeat, cancel, terminate. Each validates its
//! input, then goes through the store (start) or `mutate` (the rest).

use std::sync::Arc;
use std::time::Duration;

use super::mutate::Mutated;
use super::{Engine, EngineError, EventKind, HeartbeatAnswer, StartRequest, StartResponse, Target};
use crate::activity::{Change, Execution, Failure, Fairness, Millis, NewExecution, Reject, Status};
use crate::payload::Payload;
use crate::store::{Committed, NewStart, StartOutcome};
use crate::token::TaskToken;

/// The activity id of a start that names only a request id: a UUID made
/// from the request id's hash, the same for every retry of the request.
fn id_for_request(request_id: &str) -> String {
    let hash = blake3::hash(request_id.as_bytes());
    let bytes: [u8; 16] = hash.as_bytes()[..16].try_into().expect("16 of 32 bytes");
    uuid::Uuid::new_v8(bytes).to_string()
}

pub(super) fn check_name(what: &str, value: &str) -> Result<(), EngineError> {
    crate::limits::check_name(what, value).map_err(EngineError::Invalid)
}

/// Checks an activity id and optional run id sent by a client.
pub(super) fn check_ids(activity_id: &str, run_id: Option<&str>) -> Result<(), EngineError> {
    check_name("activity_id", activity_id)?;
    run_id.map_or(Ok(()), |r| check_name("run_id", r))
}

impl Engine {
    /// Schedules an execution (or returns the existing one, per policies).
    pub async fn start_activity(self: &Arc<Self>, req: StartRequest) -> Result<StartResponse, EngineError> {
        self.start_activities(vec![req]).await.pop().expect("one response per request")
    }

    /// Schedules many executions in one store operation (one commit), in
    /// order; each gets its own answer.
    pub async fn start_activities(
        self: &Arc<Self>,
        reqs: Vec<StartRequest>,
    ) -> Vec<Result<StartResponse, EngineError>> {
        let now = self.clock.now();
        // The valid starts go to the store (moved, inputs not copied); each
        // request keeps its activity id or its refusal, in order.
        let mut valid = Vec::with_capacity(reqs.len());
        // Per valid start: the slots and `started` transition of an eager one.
        let mut eager = Vec::with_capacity(reqs.len());
        let ids: Vec<Result<String, EngineError>> = reqs
            .into_iter()
            .map(|r| {
                let mut start = self.prepare_start(r, now)?;
                let id = start.exec.activity_id.clone();
                let slots = self.start_eagerly(&mut start.exec, now);
                start.started = slots.as_ref().map(|(_, t)| t.clone());
                eager.push(slots);
                valid.push(start);
                Ok(id)
            })
            .collect();
        let mut eager = eager.into_iter();
        let mut outcomes = match self.store.start_many(valid).await {
            Ok(o) => o.into_iter(),
            Err(e) => {
                let e = EngineError::from(e);
                return ids.into_iter().map(|id| id.and(Err(EngineError::Internal(e.to_string())))).collect();
            }
        };
        ids.into_iter()
            .map(|id| {
                let activity_id = id?;
                let eager = eager.next().expect("one per valid start");
                match outcomes.next().expect("one outcome per valid start") {
                    StartOutcome::Created(c) => {
                        self.act(&c.value, &c.transition, now);
                        let run_id = c.value.run_id.clone();
                        if let Some((slots, started)) = eager {
                            self.act(&c.value, &started, now);
                            let claimed = Committed { value: c.value, version: c.version, transition: started };
                            tokio::spawn(Box::pin(super::attempt::run(self.clone(), claimed, slots)));
                        }
                        Ok(StartResponse { activity_id, run_id, created: true })
                    }
                    StartOutcome::Existing(v) => {
                        Ok(StartResponse { activity_id, run_id: v.value.run_id, created: false })
                    }
                    StartOutcome::Rejected(reason) => Err(EngineError::AlreadyExists(reason)),
                }
            })
            .collect()
    }

    /// Validates a start request and builds its execution.
    fn prepare_start(&self, req: StartRequest, now: Millis) -> Result<NewStart, EngineError> {
        let StartRequest {
            activity_id,
            activity_type,
            task_queue,
            input,
            timeouts,
            retry,
            priority,
            request_id,
            conflict,
            reuse,
            cancel_grace,
            version,
            traceparent,
            fairness_key,
            fairness_weight,
        } = req;
        check_name("activity_type", &activity_type)?;
        if let Some(r) = &request_id {
            check_name("request_id", r)?;
        }
        let activity_id = match (activity_id, &request_id) {
            (Some(id), _) => id,
            // A retried start with the same request id finds its run.
            (None, Some(r)) => id_for_request(r),
            (None, None) => uuid::Uuid::now_v7().to_string(),
        };
        check_name("activity_id", &activity_id)?;
        let ty = self.registry.get(&activity_type);
        let defaults = ty.as_ref().map(|t| &t.config);
        if let Some(v) = &version {
            self.check_version(&activity_type, v)?;
        }
        let task_queue = task_queue
            .or_else(|| defaults.and_then(|d| d.queues.first().cloned()))
            .unwrap_or_else(|| "default".to_string());
        check_name("task_queue", &task_queue)?;
        let input = input.unwrap_or_else(|| Payload::json(&serde_json::Value::Null));
        self.check_payload("input", Some(&input))?;
        let priority = match priority {
            None | Some(0) => 3,
            Some(p @ 1..=5) => p,
            Some(p) => return Err(EngineError::Invalid(format!("priority must be 1 (first) to 5, got {p}"))),
        };
        let timeouts = match defaults {
            Some(d) => timeouts.or(&d.timeouts()),
            None => timeouts,
        };
        let fairness = fairness(fairness_key, fairness_weight)?;
        let retry = retry.unwrap_or_else(|| defaults.map(|d| d.retry.policy()).unwrap_or_default());
        let cancel_grace = cancel_grace.or(defaults.map(|d| d.cancel_grace)).unwrap_or(Duration::from_secs(5));
        let exec = Execution::new(
            NewExecution {
                activity_id,
                run_id: uuid::Uuid::now_v7().to_string(),
                activity_type,
                task_queue,
                input,
                priority,
                request_id,
                timeouts,
                retry,
                cancel_grace,
                pinned_version: version,
                trace: crate::traces::context(traceparent.as_deref(), self.tracer.is_some()),
                fairness,
            },
            now,
        )?;
        Ok(NewStart { exec, conflict, reuse, started: None })
    }

    /// Resolves a completion target to (activity id, run id, attempt).
    fn resolve(&self, target: &Target) -> Result<(String, Option<String>, Option<u32>), EngineError> {
        match target {
            Target::Token(t) => {
                let TaskToken { activity_id, run_id, attempt } = self.signer.verify(t)?;
                Ok((activity_id, Some(run_id), Some(attempt)))
            }
            Target::Id { activity_id, run_id } => {
                check_ids(activity_id, run_id.as_deref())?;
                Ok((activity_id.clone(), run_id.clone(), None))
            }
        }
    }

    /// Applies `f` to the attempt `target` names (the current one, by id).
    async fn on_attempt<F>(self: &Arc<Self>, target: &Target, f: F) -> Result<Mutated, EngineError>
    where
        F: Fn(&mut Execution, u32, Millis) -> Result<Change, Reject>,
    {
        let (activity_id, run_id, attempt) = self.resolve(target)?;
        self.mutate(&activity_id, run_id.as_deref(), None, |e, now| f(e, attempt.unwrap_or(e.attempt), now).map(Some))
            .await
    }

    fn check_payload(&self, what: &str, p: Option<&Payload>) -> Result<(), EngineError> {
        if let Some(p) = p {
            p.check_size(what, self.max_payload).map_err(|e| EngineError::TooLarge(e.to_string()))?;
        }
        Ok(())
    }

    /// Completes the attempt. Repeating with the same result is a no-op.
    pub async fn complete(self: &Arc<Self>, target: &Target, result: Payload) -> Result<(), EngineError> {
        self.check_payload("result", Some(&result))?;
        self.on_attempt(target, |e, a, now| e.complete(a, result.clone(), now)).await.map(|_| ())
    }

    /// Fails the attempt with an application error; the retry policy decides.
    pub async fn fail(self: &Arc<Self>, target: &Target, failure: Failure) -> Result<Status, EngineError> {
        self.check_payload("failure details", failure.details.as_ref())?;
        self.on_attempt(target, |e, a, now| e.fail(a, failure.clone(), now)).await.map(|m| m.exec.status)
    }

    /// The attempt acknowledges cancellation.
    pub async fn report_cancelled(
        self: &Arc<Self>,
        target: &Target,
        details: Option<Payload>,
    ) -> Result<(), EngineError> {
        self.check_payload("cancellation details", details.as_ref())?;
        self.on_attempt(target, |e, a, now| e.report_cancelled(a, details.clone(), now)).await.map(|_| ())
    }

    /// Records a heartbeat; answers whether the attempt should stop.
    pub async fn heartbeat(
        self: &Arc<Self>,
        target: &Target,
        details: Option<Payload>,
    ) -> Result<HeartbeatAnswer, EngineError> {
        self.check_payload("heartbeat details", details.as_ref())?;
        let m = self.on_attempt(target, |e, a, now| e.heartbeat(a, details.clone(), now)).await?;
        self.publish(
            &m.exec,
            m.exec.attempt,
            self.clock.now(),
            EventKind::Heartbeat { details: m.exec.heartbeat_details.clone() },
        );
        Ok(HeartbeatAnswer {
            cancel_requested: matches!(m.change, Some(Change::Heartbeat { cancel_requested: true })),
            paused: m.exec.paused,
            reset: matches!(m.change, Some(Change::RetryScheduled { .. })),
        })
    }

    /// Requests cancellation (immediate for a scheduled execution).
    pub async fn request_cancel(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
    ) -> Result<Status, EngineError> {
        check_ids(activity_id, run_id)?;
        let m = self.mutate(activity_id, run_id, None, |e, now| e.request_cancel(now).map(Some)).await?;
        Ok(m.exec.status)
    }

    /// Ends the execution without asking its attempt.
    pub async fn terminate(
        self: &Arc<Self>,
        activity_id: &str,
        run_id: Option<&str>,
        reason: &str,
    ) -> Result<(), EngineError> {
        check_ids(activity_id, run_id)?;
        let reason = if reason.is_empty() { "terminated" } else { reason };
        self.mutate(activity_id, run_id, None, |e, now| e.terminate(reason, now).map(Some)).await.map(|_| ())
    }
}

/// A start's fairness key and weight, checked (a weight needs a key).
fn fairness(key: Option<String>, weight: Option<f64>) -> Result<Option<Fairness>, EngineError> {
    let weight = match weight {
        None => 1.0,
        Some(w) if (Fairness::MIN_WEIGHT..=Fairness::MAX_WEIGHT).contains(&w) => w,
        Some(w) => {
            return Err(EngineError::Invalid(format!(
                "fairness_weight must be {} to {}, got {w}",
                Fairness::MIN_WEIGHT,
                Fairness::MAX_WEIGHT
            )));
        }
    };
    match key {
        Some(key) => {
            check_name("fairness_key", &key)?;
            Ok(Some(Fairness { key, weight }))
        }
        None if weight != 1.0 => Err(EngineError::Invalid("fairness_weight needs a fairness_key".into())),
        None => Ok(None),
    }
}
