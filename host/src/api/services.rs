//! The four gRPC services, thin over the engine.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{self, status_of};
use super::deploy;
use super::pb;
use crate::activity::{Failure, ResetRequest, Timeouts};
use crate::config::ActivityConfig;
use crate::engine::{BatchOp, CloseFilter, CloseWatch, Deploy, Engine, EventKind, StartRequest, StartResponse, Target};
use crate::limits::{MAX_FAILURE_MESSAGE, MAX_NAME, MAX_REASON};
use crate::store::TypeRecord;
use crate::store::{ListFilter, LogPage};

/// Longest GetActivityResult wait.
const MAX_RESULT_WAIT: Duration = Duration::from_secs(300);
/// Longest PollActivityTask wait.
const MAX_POLL_WAIT: Duration = Duration::from_secs(60);
/// Largest and default ListActivities page.
const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 100;

pub struct Api {
    pub engine: Arc<Engine>,
}

fn opt(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

fn required(what: &str, s: &str) -> Result<(), Status> {
    if s.is_empty() {
        return Err(Status::invalid_argument(format!("{what} is required")));
    }
    Ok(())
}

/// The caller's W3C trace context (`traceparent` metadata), if any.
fn traceparent<T>(request: &Request<T>) -> Option<String> {
    request.metadata().get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Most starts in one StartActivities request.
const MAX_BATCH_STARTS: usize = 1000;

fn started_pb(s: StartResponse) -> pb::StartActivityResponse {
    pb::StartActivityResponse { activity_id: s.activity_id, run_id: s.run_id, started: s.created }
}

impl Api {
    /// A start request, checked.
    fn start_request(&self, r: pb::StartActivityRequest) -> Result<StartRequest, Status> {
        required("activity_type", &r.activity_type)?;
        let retry = match r.retry_policy {
            Some(p) => Some(convert::retry_policy(p, self.engine.retry_defaults(&r.activity_type))?),
            None => None,
        };
        let priority =
            u8::try_from(r.priority).map_err(|_| Status::invalid_argument("priority must be 1 (first) to 5"))?;
        Ok(StartRequest {
            activity_id: opt(r.activity_id),
            activity_type: r.activity_type,
            task_queue: opt(r.task_queue),
            input: convert::payload(r.input),
            timeouts: Timeouts {
                schedule_to_close: convert::duration(r.schedule_to_close_timeout, "schedule_to_close_timeout")?,
                schedule_to_start: convert::duration(r.schedule_to_start_timeout, "schedule_to_start_timeout")?,
                start_to_close: convert::duration(r.start_to_close_timeout, "start_to_close_timeout")?,
                heartbeat: convert::duration(r.heartbeat_timeout, "heartbeat_timeout")?,
            },
            retry,
            priority: Some(priority),
            request_id: opt(r.request_id),
            conflict: convert::conflict(r.id_conflict_policy)?,
            reuse: convert::reuse(r.id_reuse_policy)?,
            cancel_grace: None,
            version: opt(r.version),
            traceparent: None,
            fairness_key: opt(r.fairness_key),
            fairness_weight: (r.fairness_weight != 0.0).then_some(r.fairness_weight),
        })
    }
}

/// The `oneof target` of a completion request.
macro_rules! target {
    ($req:expr, $module:ident) => {
        match $req.target {
            Some(pb::$module::Target::TaskToken(t)) => convert::target(Some(t), None),
            Some(pb::$module::Target::Activity(a)) => convert::target(None, Some(a)),
            None => convert::target(None, None),
        }
    };
}

#[tonic::async_trait]
impl pb::activity_service_server::ActivityService for Api {
    async fn start_activity(
        &self,
        request: Request<pb::StartActivityRequest>,
    ) -> Result<Response<pb::StartActivityResponse>, Status> {
        let traceparent = traceparent(&request);
        let mut req = self.start_request(request.into_inner())?;
        req.traceparent = traceparent;
        let started = self.engine.start_activity(req).await.map_err(status_of)?;
        Ok(Response::new(started_pb(started)))
    }

    async fn start_activities(
        &self,
        request: Request<pb::StartActivitiesRequest>,
    ) -> Result<Response<pb::StartActivitiesResponse>, Status> {
        let traceparent = traceparent(&request);
        let starts = request.into_inner().starts;
        if starts.is_empty() || starts.len() > MAX_BATCH_STARTS {
            return Err(Status::invalid_argument(format!(
                "starts must hold 1 to {MAX_BATCH_STARTS} requests, not {}",
                starts.len()
            )));
        }
        // The valid requests go to the engine; each start keeps its place
        // (or its refusal) in `checked`.
        let mut valid = Vec::with_capacity(starts.len());
        let checked: Vec<Result<(), Status>> = starts
            .into_iter()
            .map(|r| self.start_request(r).map(|s| valid.push(StartRequest { traceparent: traceparent.clone(), ..s })))
            .collect();
        let mut started = self.engine.start_activities(valid).await.into_iter();
        let outcome = |o| pb::StartActivityOutcome { outcome: Some(o) };
        let error = |s: Status| {
            pb::start_activity_outcome::Outcome::Error(pb::StartError {
                code: s.code() as i32,
                message: s.message().to_string(),
            })
        };
        let outcomes = checked
            .into_iter()
            .map(|c| {
                outcome(match c.map(|_| started.next().expect("one answer per valid start")) {
                    Ok(Ok(s)) => pb::start_activity_outcome::Outcome::Started(started_pb(s)),
                    Ok(Err(e)) => error(status_of(e)),
                    Err(s) => error(s),
                })
            })
            .collect();
        Ok(Response::new(pb::StartActivitiesResponse { outcomes }))
    }

    async fn describe_activity(
        &self,
        request: Request<pb::DescribeActivityRequest>,
    ) -> Result<Response<pb::DescribeActivityResponse>, Status> {
        let r = request.into_inner();
        required("activity_id", &r.activity_id)?;
        if r.logs_page_size > MAX_PAGE {
            return Err(Status::invalid_argument(format!("logs_page_size must be at most {MAX_PAGE}")));
        }
        let logs = LogPage {
            token: opt(r.logs_page_token),
            size: if r.logs_page_size == 0 { DEFAULT_PAGE } else { r.logs_page_size } as usize,
        };
        let d = self.engine.describe(&r.activity_id, opt(r.run_id).as_deref(), logs).await.map_err(status_of)?;
        let task_token = match d.execution.status {
            crate::activity::Status::Started => self.engine.task_token_of(&d.execution),
            _ => String::new(),
        };
        let mut execution = convert::execution(&d.execution);
        execution.input = Some(convert::pb_payload(&d.execution.input));
        Ok(Response::new(pb::DescribeActivityResponse {
            execution: Some(execution),
            history: d.history.iter().map(convert::history).collect(),
            logs: d.logs.iter().map(convert::log).collect(),
            next_logs_page_token: d.next_logs_page.unwrap_or_default(),
            task_token,
        }))
    }

    async fn get_activity_result(
        &self,
        request: Request<pb::GetActivityResultRequest>,
    ) -> Result<Response<pb::GetActivityResultResponse>, Status> {
        let r = request.into_inner();
        required("activity_id", &r.activity_id)?;
        let wait = convert::duration(r.wait, "wait")?.unwrap_or_default().min(MAX_RESULT_WAIT);
        let e = self.engine.wait_closed(&r.activity_id, opt(r.run_id).as_deref(), wait).await.map_err(status_of)?;
        Ok(Response::new(pb::GetActivityResultResponse {
            closed: e.status.is_closed(),
            execution: Some(convert::execution(&e)),
        }))
    }

    type WatchActivitiesStream = Pin<Box<dyn Stream<Item = Result<pb::WatchActivitiesEvent, Status>> + Send>>;

    async fn watch_activities(
        &self,
        request: Request<pb::WatchActivitiesRequest>,
    ) -> Result<Response<Self::WatchActivitiesStream>, Status> {
        let r = request.into_inner();
        let watch = if r.activity_ids.is_empty() {
            self.engine.watch_filter(CloseFilter { task_queue: opt(r.task_queue), activity_type: opt(r.activity_type) })
        } else if !r.task_queue.is_empty() || !r.activity_type.is_empty() {
            return Err(Status::invalid_argument(
                "watch either activity ids or a task_queue and/or activity_type, not both",
            ));
        } else {
            self.engine.watch_ids(r.activity_ids).await
        }
        .map_err(status_of)?;
        let events = futures_util::stream::unfold(watch, |mut w: CloseWatch| async move {
            let event = w.next().await?.map_err(status_of);
            Some((event.map(|e| pb::WatchActivitiesEvent { execution: Some(convert::execution(&e)) }), w))
        });
        Ok(Response::new(Box::pin(events)))
    }

    type WatchActivityStream = Pin<Box<dyn Stream<Item = Result<pb::WatchActivityEvent, Status>> + Send>>;

    async fn watch_activity(
        &self,
        request: Request<pb::WatchActivityRequest>,
    ) -> Result<Response<Self::WatchActivityStream>, Status> {
        let r = request.into_inner();
        required("activity_id", &r.activity_id)?;
        let engine = self.engine.clone();
        let mut events = engine.subscribe();
        let run_id = opt(r.run_id);
        let snapshot = engine.execution(&r.activity_id, run_id.as_deref()).await.map_err(status_of)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let snap = |e: &crate::activity::Execution| pb::WatchActivityEvent {
                time: Some(convert::timestamp(engine.now())),
                attempt: e.attempt,
                event: Some(pb::watch_activity_event::Event::Snapshot(convert::execution(e))),
            };
            if tx.send(Ok(snap(&snapshot))).await.is_err() || snapshot.status.is_closed() {
                return;
            }
            loop {
                let ev = match events.recv().await {
                    Ok(ev) if ev.run_id == snapshot.run_id => ev,
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind: send a fresh snapshot instead of the missed events.
                        let Ok(e) = engine.execution(&snapshot.activity_id, Some(&snapshot.run_id)).await else {
                            return;
                        };
                        if tx.send(Ok(snap(&e))).await.is_err() || e.status.is_closed() {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                };
                let (event, closed) = match ev.kind {
                    EventKind::Transition { transition, status } => (
                        pb::watch_activity_event::Event::Transition(pb::Transition {
                            kind: transition.to_string(),
                            status: convert::pb_status(status) as i32,
                        }),
                        status.is_closed(),
                    ),
                    EventKind::Progress { percent, message } => (
                        pb::watch_activity_event::Event::Progress(pb::Progress {
                            percent,
                            message,
                            time: Some(convert::timestamp(ev.at)),
                        }),
                        false,
                    ),
                    EventKind::Heartbeat { details } => (
                        pb::watch_activity_event::Event::Heartbeat(pb::Heartbeat {
                            details: details.as_ref().map(convert::pb_payload),
                        }),
                        false,
                    ),
                    EventKind::Log { level, message, fields } => (
                        pb::watch_activity_event::Event::Log(pb::LogRecord {
                            time: Some(convert::timestamp(ev.at)),
                            attempt: ev.attempt,
                            level,
                            message,
                            fields: fields.into_iter().collect(),
                        }),
                        false,
                    ),
                };
                let msg = pb::WatchActivityEvent {
                    time: Some(convert::timestamp(ev.at)),
                    attempt: ev.attempt,
                    event: Some(event),
                };
                if tx.send(Ok(msg)).await.is_err() || closed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list_activities(
        &self,
        request: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ListActivitiesResponse>, Status> {
        let r = request.into_inner();
        if r.page_size > MAX_PAGE {
            return Err(Status::invalid_argument(format!("page_size must be at most {MAX_PAGE}")));
        }
        if r.activity_id_prefix.len() > MAX_NAME {
            return Err(Status::invalid_argument(format!("activity_id_prefix is over {MAX_NAME} bytes")));
        }
        let filter = ListFilter {
            status: convert::status_filter(r.status)?,
            activity_type: opt(r.activity_type),
            task_queue: opt(r.task_queue),
            id_prefix: opt(r.activity_id_prefix),
            scheduled_after: r.scheduled_after.map(|t| convert::millis(t, "scheduled_after")).transpose()?,
            scheduled_before: r.scheduled_before.map(|t| convert::millis(t, "scheduled_before")).transpose()?,
            page_token: opt(r.page_token),
            page_size: if r.page_size == 0 { DEFAULT_PAGE } else { r.page_size } as usize,
            open: false,
        };
        let (page, next) = self.engine.list(filter).await.map_err(status_of)?;
        Ok(Response::new(pb::ListActivitiesResponse {
            executions: page.iter().map(convert::execution_summary).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn request_cancel_activity(
        &self,
        request: Request<pb::RequestCancelActivityRequest>,
    ) -> Result<Response<pb::RequestCancelActivityResponse>, Status> {
        let r = request.into_inner();
        required("activity_id", &r.activity_id)?;
        let status = self.engine.request_cancel(&r.activity_id, opt(r.run_id).as_deref()).await.map_err(status_of)?;
        Ok(Response::new(pb::RequestCancelActivityResponse { status: convert::pb_status(status) as i32 }))
    }

    async fn terminate_activity(
        &self,
        request: Request<pb::TerminateActivityRequest>,
    ) -> Result<Response<pb::TerminateActivityResponse>, Status> {
        let r = request.into_inner();
        required("activity_id", &r.activity_id)?;
        if r.reason.len() > MAX_REASON {
            return Err(Status::invalid_argument(format!("reason is over {MAX_REASON} bytes")));
        }
        self.engine.terminate(&r.activity_id, opt(r.run_id).as_deref(), &r.reason).await.map_err(status_of)?;
        Ok(Response::new(pb::TerminateActivityResponse {}))
    }

    async fn pause_activity(
        &self,
        request: Request<pb::PauseActivityRequest>,
    ) -> Result<Response<pb::PauseActivityResponse>, Status> {
        let (id, run) = activity_ref(request.into_inner().activity)?;
        let e = self.engine.pause(&id, run.as_deref()).await.map_err(status_of)?;
        Ok(Response::new(pb::PauseActivityResponse { execution: Some(convert::execution_summary(&e)) }))
    }

    async fn unpause_activity(
        &self,
        request: Request<pb::UnpauseActivityRequest>,
    ) -> Result<Response<pb::UnpauseActivityResponse>, Status> {
        let r = request.into_inner();
        let jitter = convert::duration(r.jitter, "jitter")?.unwrap_or_default();
        let (id, run) = activity_ref(r.activity)?;
        let e = self.engine.unpause(&id, run.as_deref(), jitter).await.map_err(status_of)?;
        Ok(Response::new(pb::UnpauseActivityResponse { execution: Some(convert::execution_summary(&e)) }))
    }

    async fn reset_activity(
        &self,
        request: Request<pb::ResetActivityRequest>,
    ) -> Result<Response<pb::ResetActivityResponse>, Status> {
        let r = request.into_inner();
        let req = ResetRequest { keep_paused: r.keep_paused, reset_heartbeat: r.reset_heartbeat };
        let (id, run) = activity_ref(r.activity)?;
        let e = self.engine.reset(&id, run.as_deref(), req).await.map_err(status_of)?;
        Ok(Response::new(pb::ResetActivityResponse { execution: Some(convert::execution_summary(&e)) }))
    }

    async fn update_activity_options(
        &self,
        request: Request<pb::UpdateActivityOptionsRequest>,
    ) -> Result<Response<pb::UpdateActivityOptionsResponse>, Status> {
        let r = request.into_inner();
        let change = convert::options_change(&r)?;
        let (id, run) = activity_ref(r.activity)?;
        let e = self.engine.update_options(&id, run.as_deref(), change).await.map_err(status_of)?;
        Ok(Response::new(pb::UpdateActivityOptionsResponse { execution: Some(convert::execution_summary(&e)) }))
    }

    async fn delete_activity(
        &self,
        request: Request<pb::DeleteActivityRequest>,
    ) -> Result<Response<pb::DeleteActivityResponse>, Status> {
        let (id, run) = activity_ref(request.into_inner().activity)?;
        self.engine.delete(&id, run.as_deref()).await.map_err(status_of)?;
        Ok(Response::new(pb::DeleteActivityResponse {}))
    }

    async fn batch_operation(
        &self,
        request: Request<pb::BatchOperationRequest>,
    ) -> Result<Response<pb::BatchOperationResponse>, Status> {
        let r = request.into_inner();
        if r.reason.len() > MAX_REASON {
            return Err(Status::invalid_argument(format!("reason is over {MAX_REASON} bytes")));
        }
        let op = match r.operation.as_str() {
            "cancel" => BatchOp::Cancel,
            "terminate" => BatchOp::Terminate {
                reason: if r.reason.is_empty() { "terminated by a batch operation".into() } else { r.reason },
            },
            "pause" => BatchOp::Pause,
            "unpause" => BatchOp::Unpause { jitter: convert::duration(r.jitter, "jitter")?.unwrap_or_default() },
            "reset" => BatchOp::Reset(ResetRequest { keep_paused: r.keep_paused, reset_heartbeat: r.reset_heartbeat }),
            "delete" => BatchOp::Delete,
            other => {
                return Err(Status::invalid_argument(format!(
                    "operation {other:?} is not one of cancel, terminate, pause, unpause, reset, delete"
                )));
            }
        };
        let report = self.engine.batch(&r.query, op, r.dry_run).await.map_err(status_of)?;
        Ok(Response::new(pb::BatchOperationResponse {
            matched: report.matched as u64,
            applied: report.applied as u64,
            failed: report.failed as u64,
            errors: report
                .errors
                .into_iter()
                .map(|(activity_id, message)| pb::BatchError { activity_id, message })
                .collect(),
        }))
    }
}

/// Most settings in one request, and the longest.
const MAX_SETS: usize = 100;
const MAX_SET: usize = 4096;

pub(crate) fn check_sets(sets: &[String]) -> Result<(), Status> {
    if sets.len() > MAX_SETS {
        return Err(Status::invalid_argument(format!("at most {MAX_SETS} settings per request")));
    }
    if let Some(s) = sets.iter().find(|s| s.len() > MAX_SET) {
        return Err(Status::invalid_argument(format!("setting {:?}… is over {MAX_SET} bytes", &s[..32])));
    }
    Ok(())
}

impl Api {
    fn record_pb(&self, record: &TypeRecord) -> Result<pb::ActivityType, Status> {
        let (_, config) = self.engine.activity_type(&record.name).map_err(status_of)?;
        Ok(self.type_pb(record, &config))
    }

    pub(crate) fn type_pb(&self, t: &TypeRecord, config: &ActivityConfig) -> pb::ActivityType {
        let current = t.versions.iter().find(|v| Some(&v.label) == t.current_version.as_ref());
        pb::ActivityType {
            name: t.name.clone(),
            component: current.map(|v| self.engine.component_file(&v.hash).display().to_string()).unwrap_or_default(),
            component_hash: current.map(|v| v.hash.clone()).unwrap_or_default(),
            task_queues: config.queues.clone(),
            current_version: t.current_version.clone().unwrap_or_default(),
            versions: t
                .versions
                .iter()
                .map(|v| pb::TypeVersion {
                    label: v.label.clone(),
                    hash: v.hash.clone(),
                    size: v.size,
                    deployed_at: Some(convert::timestamp(v.deployed_at)),
                    deployed_by: v.deployed_by.clone(),
                })
                .collect(),
            settings_json: t.settings.to_string(),
            slots: config.slots.unwrap_or(0),
            memory_bytes: config.memory.as_u64(),
            env: config.env.keys().cloned().collect(),
            dirs: config.dirs.iter().chain(&config.dirs_rw).cloned().collect(),
            allow_http: config.allow_http.clone(),
        }
    }
}

/// (activity id, run id) of a required `activity` field.
fn activity_ref(r: Option<pb::ActivityRef>) -> Result<(String, Option<String>), Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("activity is required"))?;
    required("activity.activity_id", &r.activity_id)?;
    Ok((r.activity_id, opt(r.run_id)))
}

#[tonic::async_trait]
impl pb::completion_service_server::CompletionService for Api {
    async fn complete_activity(
        &self,
        request: Request<pb::CompleteActivityRequest>,
    ) -> Result<Response<pb::CompleteActivityResponse>, Status> {
        let r = request.into_inner();
        let result = convert::payload(r.result.clone())
            .unwrap_or_else(|| crate::payload::Payload::json(&serde_json::Value::Null));
        let target: Target = target!(r, complete_activity_request)?;
        self.engine.complete(&target, result).await.map_err(status_of)?;
        Ok(Response::new(pb::CompleteActivityResponse {}))
    }

    async fn fail_activity(
        &self,
        request: Request<pb::FailActivityRequest>,
    ) -> Result<Response<pb::FailActivityResponse>, Status> {
        let r = request.into_inner();
        let f = r.failure.clone().ok_or_else(|| Status::invalid_argument("failure is required"))?;
        if f.message.len() > MAX_FAILURE_MESSAGE || f.error_type.len() > MAX_NAME {
            return Err(Status::invalid_argument(format!(
                "failure message ({MAX_FAILURE_MESSAGE} bytes) or error_type ({MAX_NAME} bytes) too long"
            )));
        }
        let failure = Failure::application(
            &f.error_type,
            &f.message,
            f.non_retryable,
            convert::payload(f.details),
            convert::duration(f.next_retry_delay, "failure.next_retry_delay")?,
        );
        let target: Target = target!(r, fail_activity_request)?;
        let status = self.engine.fail(&target, failure).await.map_err(status_of)?;
        Ok(Response::new(pb::FailActivityResponse { status: convert::pb_status(status) as i32 }))
    }

    async fn report_activity_cancelled(
        &self,
        request: Request<pb::ReportActivityCancelledRequest>,
    ) -> Result<Response<pb::ReportActivityCancelledResponse>, Status> {
        let r = request.into_inner();
        let details = convert::payload(r.details.clone());
        let target: Target = target!(r, report_activity_cancelled_request)?;
        self.engine.report_cancelled(&target, details).await.map_err(status_of)?;
        Ok(Response::new(pb::ReportActivityCancelledResponse {}))
    }

    async fn record_heartbeat(
        &self,
        request: Request<pb::RecordHeartbeatRequest>,
    ) -> Result<Response<pb::RecordHeartbeatResponse>, Status> {
        let r = request.into_inner();
        let details = convert::payload(r.details.clone());
        let target: Target = target!(r, record_heartbeat_request)?;
        let a = self.engine.heartbeat(&target, details).await.map_err(status_of)?;
        Ok(Response::new(pb::RecordHeartbeatResponse {
            cancel_requested: a.cancel_requested,
            paused: a.paused,
            reset: a.reset,
        }))
    }
}

#[tonic::async_trait]
impl pb::worker_service_server::WorkerService for Api {
    async fn poll_activity_task(
        &self,
        request: Request<pb::PollActivityTaskRequest>,
    ) -> Result<Response<pb::PollActivityTaskResponse>, Status> {
        let r = request.into_inner();
        required("task_queue", &r.task_queue)?;
        required("identity", &r.identity)?;
        if r.activity_types.len() > 100 {
            return Err(Status::invalid_argument("at most 100 activity_types"));
        }
        let wait = convert::duration(r.wait, "wait")?.unwrap_or_default().min(MAX_POLL_WAIT);
        let polled = self.engine.poll(&r.task_queue, &r.identity, r.activity_types, wait).await.map_err(status_of)?;
        let task = polled.map(convert::task);
        Ok(Response::new(pb::PollActivityTaskResponse { task }))
    }
}

#[tonic::async_trait]
impl pb::operator_service_server::OperatorService for Api {
    async fn describe_task_queue(
        &self,
        request: Request<pb::DescribeTaskQueueRequest>,
    ) -> Result<Response<pb::DescribeTaskQueueResponse>, Status> {
        let r = request.into_inner();
        required("task_queue", &r.task_queue)?;
        let stats = self.engine.queue_stats(&r.task_queue, r.closed_counts).await.map_err(status_of)?;
        let served = self.engine.served_queue(&r.task_queue);
        let rate_limit = self.engine.queue_rate(&r.task_queue);
        Ok(Response::new(pb::DescribeTaskQueueResponse {
            backlog: stats.backlog,
            running: stats.running,
            served_here: served.is_some(),
            free_slots: served.as_ref().map_or(0, |s| s.0 as u32),
            activity_types: served.map(|s| s.1).unwrap_or_default(),
            counts: stats
                .counts
                .into_iter()
                .map(|(activity_type, status, count)| pb::TypeStatusCount {
                    activity_type,
                    status: convert::pb_status(status) as i32,
                    count,
                })
                .collect(),
            paused: rate_limit == Some(0.0),
            rate_limit,
        }))
    }

    async fn list_activity_types(
        &self,
        _request: Request<pb::ListActivityTypesRequest>,
    ) -> Result<Response<pb::ListActivityTypesResponse>, Status> {
        let activity_types = self
            .engine
            .activity_types()
            .iter()
            .filter_map(|t| self.engine.activity_type(&t.name).ok())
            .map(|(record, config)| self.type_pb(&record, &config))
            .collect();
        Ok(Response::new(pb::ListActivityTypesResponse { activity_types }))
    }

    async fn describe_activity_type(
        &self,
        request: Request<pb::DescribeActivityTypeRequest>,
    ) -> Result<Response<pb::DescribeActivityTypeResponse>, Status> {
        let r = request.into_inner();
        required("name", &r.name)?;
        let (record, config) = self.engine.activity_type(&r.name).map_err(status_of)?;
        Ok(Response::new(pb::DescribeActivityTypeResponse { activity_type: Some(self.type_pb(&record, &config)) }))
    }

    async fn deploy_component(
        &self,
        request: Request<tonic::Streaming<pb::DeployChunk>>,
    ) -> Result<Response<pb::DeployComponentResponse>, Status> {
        let caller = Caller::of(&request);
        let upload = deploy::receive(&self.engine, request.into_inner()).await?;
        let by = match (&upload.by, &caller.token) {
            (by, Some(t)) => format!("{by} (token {t}…)"),
            (by, None) => by.clone(),
        };
        let d = Deploy { by, operator: caller.operator, ..upload };
        let record = self.engine.deploy(d).await.map_err(status_of)?;
        Ok(Response::new(pb::DeployComponentResponse { activity_type: Some(self.record_pb(&record)?) }))
    }

    async fn rollback_activity_type(
        &self,
        request: Request<pb::RollbackActivityTypeRequest>,
    ) -> Result<Response<pb::RollbackActivityTypeResponse>, Status> {
        let r = request.into_inner();
        required("name", &r.name)?;
        let record = self.engine.rollback(&r.name, opt(r.to).as_deref()).await.map_err(status_of)?;
        Ok(Response::new(pb::RollbackActivityTypeResponse { activity_type: Some(self.record_pb(&record)?) }))
    }

    async fn update_activity_type(
        &self,
        request: Request<pb::UpdateActivityTypeRequest>,
    ) -> Result<Response<pb::UpdateActivityTypeResponse>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        required("name", &r.name)?;
        check_sets(&r.set)?;
        let record = self.engine.update_type(&r.name, &r.set, caller.operator).await.map_err(status_of)?;
        Ok(Response::new(pb::UpdateActivityTypeResponse { activity_type: Some(self.record_pb(&record)?) }))
    }

    async fn remove_type_version(
        &self,
        request: Request<pb::RemoveTypeVersionRequest>,
    ) -> Result<Response<pb::RemoveTypeVersionResponse>, Status> {
        let r = request.into_inner();
        required("name", &r.name)?;
        required("version", &r.version)?;
        let record = self.engine.remove_version(&r.name, &r.version).await.map_err(status_of)?;
        Ok(Response::new(pb::RemoveTypeVersionResponse { activity_type: Some(self.record_pb(&record)?) }))
    }
}
