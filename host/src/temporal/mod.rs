//! The Temporal frontend: Temporal's `WorkflowService` on the gRPC
//! listener, so Temporal SDK clients start, follow and end Sluice
//! activities (Temporal's Standalone Activities) and Temporal SDK workers
//! serve Sluice task queues, with only the address changed. Workflows are
//! not here: every RPC not implemented answers UNIMPLEMENTED (the
//! generated default stubs). The mapping of messages is `convert`, the
//! errors `errors`, the visibility queries `query`.

pub mod convert;
mod errors;
mod query;

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::{common, enums, namespace, workflowservice::v1 as ws};
use tonic::{Request, Response, Status};

use crate::activity::{ConflictPolicy, ReusePolicy};
use crate::engine::{EXTERNAL_PREFIX, Engine, StartRequest, Target};

/// The generated server side of `temporal.api.workflowservice.v1`.
#[allow(clippy::all, unreachable_pub)]
pub mod service {
    tonic::include_proto!("temporal.api.workflowservice.v1");
}

pub use service::workflow_service_server::WorkflowServiceServer;

/// The version reported to SDKs: the Temporal server whose behaviour this
/// frontend copies.
const SERVER_VERSION: &str = "1.32.0";
/// Longest long-poll, whatever the caller's deadline.
const MAX_POLL: Duration = Duration::from_secs(70);
/// Most executions a count reads.
const MAX_COUNT: usize = 100_000;

pub struct Frontend {
    pub engine: Arc<Engine>,
    pub namespace: String,
    pub retention: Duration,
}

type Reply<T> = Result<Response<T>, Status>;

impl Frontend {
    fn check_namespace(&self, namespace: &str) -> Result<(), Status> {
        if namespace == self.namespace { Ok(()) } else { Err(errors::namespace_not_found(namespace)) }
    }
}

/// How long a long-poll may wait: the caller's deadline less a second (the
/// empty answer must arrive before the caller gives up), at most `MAX_POLL`.
fn poll_wait<T>(req: &Request<T>) -> Duration {
    let deadline = req.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(grpc_timeout);
    deadline.map_or(MAX_POLL, |d| d.saturating_sub(Duration::from_secs(1)).min(MAX_POLL))
}

/// A `grpc-timeout` header value: digits and a unit.
fn grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn token_text(token: &[u8]) -> Result<String, Status> {
    String::from_utf8(token.to_vec()).map_err(|_| Status::invalid_argument("Error deserializing task token."))
}

impl Frontend {
    /// The execution's activity id, by token or as given.
    fn activity_of(&self, target: &Target) -> String {
        match target {
            Target::Token(t) => self.engine.token_activity(t).unwrap_or_default(),
            Target::Id { activity_id, .. } => activity_id.clone(),
        }
    }

    /// A worker's call about an attempt: an attempt no longer current, or a
    /// closed execution, is NOT_FOUND (how a worker learns of a terminate).
    fn attempt_error(&self, e: crate::engine::EngineError, target: &Target) -> Status {
        use crate::engine::EngineError as E;
        match e {
            E::BadToken(_) => Status::invalid_argument("Error deserializing task token."),
            E::NotFound(_) | E::Precondition(_) => errors::not_found(&self.activity_of(target)),
            other => errors::engine(other, &self.activity_of(target)),
        }
    }

    fn by_id(&self, activity_id: String, run_id: String) -> Result<Target, Status> {
        if activity_id.is_empty() {
            return Err(Status::invalid_argument("activityId is not set"));
        }
        Ok(Target::Id { activity_id, run_id: opt(run_id) })
    }

    fn start_request(&self, r: ws::StartActivityExecutionRequest) -> Result<StartRequest, Status> {
        if r.activity_id.is_empty() {
            return Err(Status::invalid_argument("activityId is not set"));
        }
        let activity_type = r.activity_type.map(|t| t.name).unwrap_or_default();
        if activity_type.is_empty() {
            return Err(Status::invalid_argument("activityType is not set"));
        }
        let task_queue = r.task_queue.map(|q| q.name).unwrap_or_default();
        if task_queue.is_empty() {
            return Err(Status::invalid_argument("missing task queue name"));
        }
        if r.start_delay.is_some_and(|d| d.seconds != 0 || d.nanos != 0) {
            return Err(Status::invalid_argument("start_delay is not supported by Sluice"));
        }
        let timeouts = convert::timeouts_in(
            r.schedule_to_close_timeout,
            r.schedule_to_start_timeout,
            r.start_to_close_timeout,
            r.heartbeat_timeout,
        )?;
        let configured = self
            .engine
            .activity_type(&activity_type)
            .is_ok_and(|(_, c)| c.timeouts().start_to_close.is_some() || c.timeouts().schedule_to_close.is_some());
        if timeouts.start_to_close.is_none() && timeouts.schedule_to_close.is_none() && !configured {
            return Err(Status::invalid_argument(format!(
                "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the activity. ActivityId={} \
                 ActivityType={activity_type}",
                r.activity_id
            )));
        }
        let priority = r.priority.unwrap_or_default();
        let priority_key = match priority.priority_key {
            0 => None,
            p @ 1..=5 => Some(p as u8),
            p => return Err(Status::invalid_argument(format!("priority key must be 1 to 5, got {p}"))),
        };
        Ok(StartRequest {
            activity_id: Some(r.activity_id),
            activity_type,
            task_queue: Some(task_queue),
            input: convert::payload_in(r.input, "input")?,
            timeouts,
            retry: r.retry_policy.map(convert::retry_in).transpose()?,
            priority: priority_key,
            request_id: opt(r.request_id),
            conflict: match enums::v1::ActivityIdConflictPolicy::try_from(r.id_conflict_policy) {
                Ok(enums::v1::ActivityIdConflictPolicy::UseExisting) => ConflictPolicy::UseExisting,
                _ => ConflictPolicy::Fail,
            },
            reuse: match enums::v1::ActivityIdReusePolicy::try_from(r.id_reuse_policy) {
                Ok(enums::v1::ActivityIdReusePolicy::AllowDuplicateFailedOnly) => ReusePolicy::AllowDuplicateFailedOnly,
                Ok(enums::v1::ActivityIdReusePolicy::RejectDuplicate) => ReusePolicy::RejectDuplicate,
                _ => ReusePolicy::AllowDuplicate,
            },
            fairness_key: opt(priority.fairness_key),
            fairness_weight: (priority.fairness_weight != 0.0).then_some(priority.fairness_weight as f64),
            ..Default::default()
        })
    }

    /// Every execution matching a query, up to `MAX_COUNT`.
    async fn count(&self, q: &query::Query) -> Result<usize, Status> {
        let mut filter = q.filter();
        filter.page_size = 1000;
        let mut n = 0;
        loop {
            let (page, next) = self.engine.list(filter.clone()).await.map_err(|e| errors::engine(e, ""))?;
            n += page.iter().filter(|e| q.matches(e)).count();
            if n > MAX_COUNT {
                return Err(Status::resource_exhausted(format!(
                    "the query matches more than {MAX_COUNT} activity executions; narrow it"
                )));
            }
            match next {
                Some(t) => filter.page_token = Some(t),
                None => return Ok(n),
            }
        }
    }
}

fn identity_of(worker: &Option<String>) -> String {
    worker.as_deref().map(|w| w.strip_prefix(EXTERNAL_PREFIX).unwrap_or(w).to_string()).unwrap_or_default()
}

#[tonic::async_trait]
impl service::workflow_service_server::WorkflowService for Frontend {
    async fn get_system_info(&self, _: Request<ws::GetSystemInfoRequest>) -> Reply<ws::GetSystemInfoResponse> {
        Ok(Response::new(ws::GetSystemInfoResponse {
            server_version: SERVER_VERSION.into(),
            capabilities: Some(ws::get_system_info_response::Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                encoded_failure_attributes: true,
                sdk_metadata: true,
                ..Default::default()
            }),
        }))
    }

    async fn describe_namespace(
        &self,
        req: Request<ws::DescribeNamespaceRequest>,
    ) -> Reply<ws::DescribeNamespaceResponse> {
        let r = req.into_inner();
        let id = format!("sluice-{}", self.namespace);
        if r.namespace != self.namespace && r.id != id {
            return Err(errors::namespace_not_found(&r.namespace));
        }
        Ok(Response::new(ws::DescribeNamespaceResponse {
            namespace_info: Some(namespace::v1::NamespaceInfo {
                name: self.namespace.clone(),
                state: enums::v1::NamespaceState::Registered as i32,
                description: "Sluice".into(),
                id,
                capabilities: Some(namespace::v1::namespace_info::Capabilities {
                    standalone_activities: true,
                    standalone_activity_operator_commands: true,
                    ..Default::default()
                }),
                limits: Some(namespace::v1::namespace_info::Limits {
                    blob_size_limit_error: self.engine.max_payload() as i64,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            config: Some(namespace::v1::NamespaceConfig {
                workflow_execution_retention_ttl: Some(convert::duration_out(self.retention)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn shutdown_worker(&self, req: Request<ws::ShutdownWorkerRequest>) -> Reply<ws::ShutdownWorkerResponse> {
        self.check_namespace(&req.get_ref().namespace)?;
        Ok(Response::new(ws::ShutdownWorkerResponse::default()))
    }

    async fn start_activity_execution(
        &self,
        req: Request<ws::StartActivityExecutionRequest>,
    ) -> Reply<ws::StartActivityExecutionResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let (activity_id, request_id) = (r.activity_id.clone(), r.request_id.clone());
        let start = self.start_request(r)?;
        match self.engine.start_activity(start).await {
            Ok(s) => Ok(Response::new(ws::StartActivityExecutionResponse {
                run_id: s.run_id,
                started: s.created,
                ..Default::default()
            })),
            Err(crate::engine::EngineError::AlreadyExists(_)) => {
                let existing =
                    self.engine.execution(&activity_id, None).await.map_err(|e| errors::engine(e, &activity_id))?;
                Err(errors::already_started(&request_id, &existing.run_id))
            }
            Err(e) => Err(errors::engine(e, &activity_id)),
        }
    }

    async fn describe_activity_execution(
        &self,
        req: Request<ws::DescribeActivityExecutionRequest>,
    ) -> Reply<ws::DescribeActivityExecutionResponse> {
        let wait = poll_wait(&req);
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let id = r.activity_id.clone();
        let run = opt(r.run_id.clone());
        let mut e = self.engine.execution(&id, run.as_deref()).await.map_err(|e| errors::engine(e, &id))?;
        if !r.long_poll_token.is_empty() {
            // A long poll: answer when it closes, or empty at the deadline.
            e = self.engine.wait_closed(&id, Some(&e.run_id), wait).await.map_err(|e| errors::engine(e, &id))?;
            if !e.status.is_closed() {
                return Ok(Response::new(ws::DescribeActivityExecutionResponse {
                    run_id: e.run_id,
                    long_poll_token: r.long_poll_token,
                    ..Default::default()
                }));
            }
        }
        Ok(Response::new(ws::DescribeActivityExecutionResponse {
            run_id: e.run_id.clone(),
            info: Some(convert::info(&e, identity_of(&e.worker))),
            input: r.include_input.then(|| convert::payloads_out(&e.input)),
            outcome: if r.include_outcome { convert::outcome(&e) } else { None },
            long_poll_token: format!("{}:{}", e.run_id, e.status).into_bytes(),
            ..Default::default()
        }))
    }

    async fn poll_activity_execution(
        &self,
        req: Request<ws::PollActivityExecutionRequest>,
    ) -> Reply<ws::PollActivityExecutionResponse> {
        let wait = poll_wait(&req);
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let id = r.activity_id.clone();
        let e =
            self.engine.wait_closed(&id, opt(r.run_id).as_deref(), wait).await.map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::PollActivityExecutionResponse { outcome: convert::outcome(&e), run_id: e.run_id }))
    }

    async fn list_activity_executions(
        &self,
        req: Request<ws::ListActivityExecutionsRequest>,
    ) -> Reply<ws::ListActivityExecutionsResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let q = query::parse(&r.query)?;
        let mut filter = q.filter();
        filter.page_size = match r.page_size {
            n if n <= 0 => 1000,
            n => (n as usize).min(1000),
        };
        if !r.next_page_token.is_empty() {
            filter.page_token =
                Some(token_text(&r.next_page_token).map_err(|_| Status::invalid_argument("invalid page token"))?);
        }
        let (page, next) = self.engine.list(filter).await.map_err(|e| errors::engine(e, ""))?;
        Ok(Response::new(ws::ListActivityExecutionsResponse {
            executions: page.iter().filter(|e| q.matches(e)).map(convert::list_info).collect(),
            next_page_token: next.map(String::into_bytes).unwrap_or_default(),
        }))
    }

    async fn count_activity_executions(
        &self,
        req: Request<ws::CountActivityExecutionsRequest>,
    ) -> Reply<ws::CountActivityExecutionsResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        if r.query.to_ascii_uppercase().contains("GROUP BY") {
            return Err(Status::invalid_argument("invalid query: operation is not supported: 'GROUP BY' clause"));
        }
        let q = query::parse(&r.query)?;
        Ok(Response::new(ws::CountActivityExecutionsResponse { count: self.count(&q).await? as i64, groups: vec![] }))
    }

    async fn request_cancel_activity_execution(
        &self,
        req: Request<ws::RequestCancelActivityExecutionRequest>,
    ) -> Reply<ws::RequestCancelActivityExecutionResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let id = r.activity_id.clone();
        let e =
            self.engine.execution(&id, opt(r.run_id.clone()).as_deref()).await.map_err(|e| errors::engine(e, &id))?;
        if e.status.is_closed() {
            return Err(Status::failed_precondition(format!(
                "activity is in terminal state {}",
                convert::terminal_name(e.status)
            )));
        }
        self.engine.request_cancel(&id, Some(&e.run_id)).await.map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::RequestCancelActivityExecutionResponse::default()))
    }

    async fn terminate_activity_execution(
        &self,
        req: Request<ws::TerminateActivityExecutionRequest>,
    ) -> Reply<ws::TerminateActivityExecutionResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let id = r.activity_id.clone();
        let e =
            self.engine.execution(&id, opt(r.run_id.clone()).as_deref()).await.map_err(|e| errors::engine(e, &id))?;
        if e.status.is_closed() {
            return Err(Status::failed_precondition(format!(
                "invalid transition from {}",
                convert::terminal_name(e.status)
            )));
        }
        self.engine.terminate(&id, Some(&e.run_id), &r.reason).await.map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::TerminateActivityExecutionResponse::default()))
    }

    async fn delete_activity_execution(
        &self,
        req: Request<ws::DeleteActivityExecutionRequest>,
    ) -> Reply<ws::DeleteActivityExecutionResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let id = r.activity_id.clone();
        self.engine.delete(&id, opt(r.run_id).as_deref()).await.map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::DeleteActivityExecutionResponse::default()))
    }

    async fn pause_activity_execution(
        &self,
        req: Request<ws::PauseActivityExecutionRequest>,
    ) -> Reply<ws::PauseActivityExecutionResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let id = r.activity_id.clone();
        self.engine.pause(&id, opt(r.run_id).as_deref()).await.map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::PauseActivityExecutionResponse::default()))
    }

    async fn unpause_activity_execution(
        &self,
        req: Request<ws::UnpauseActivityExecutionRequest>,
    ) -> Reply<ws::UnpauseActivityExecutionResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let id = r.activity_id.clone();
        let jitter = convert::duration_in(r.jitter, "Jitter")?.unwrap_or_default();
        self.engine.unpause(&id, opt(r.run_id).as_deref(), jitter).await.map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::UnpauseActivityExecutionResponse::default()))
    }

    async fn reset_activity_execution(
        &self,
        req: Request<ws::ResetActivityExecutionRequest>,
    ) -> Reply<ws::ResetActivityExecutionResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        if convert::duration_in(r.jitter, "Jitter")?.is_some() || r.restore_original_options {
            return Err(Status::invalid_argument(
                "jitter and restore_original_options on reset are not supported by Sluice",
            ));
        }
        let id = r.activity_id.clone();
        let reset = crate::activity::ResetRequest { keep_paused: r.keep_paused, reset_heartbeat: r.reset_heartbeat };
        self.engine.reset(&id, opt(r.run_id).as_deref(), reset).await.map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::ResetActivityExecutionResponse::default()))
    }

    async fn update_activity_execution_options(
        &self,
        req: Request<ws::UpdateActivityExecutionOptionsRequest>,
    ) -> Reply<ws::UpdateActivityExecutionOptionsResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        if r.restore_original {
            return Err(Status::invalid_argument("restore_original is not supported by Sluice"));
        }
        let id = r.activity_id.clone();
        let change = convert::options_change(
            r.activity_options.unwrap_or_default(),
            r.update_mask.map(|m| m.paths).unwrap_or_default(),
        )?;
        let e = self
            .engine
            .update_options(&id, opt(r.run_id).as_deref(), change)
            .await
            .map_err(|e| errors::engine(e, &id))?;
        Ok(Response::new(ws::UpdateActivityExecutionOptionsResponse {
            activity_options: Some(convert::options_out(&e)),
        }))
    }

    async fn poll_activity_task_queue(
        &self,
        req: Request<ws::PollActivityTaskQueueRequest>,
    ) -> Reply<ws::PollActivityTaskQueueResponse> {
        let wait = poll_wait(&req);
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let queue = r.task_queue.map(|q| q.name).unwrap_or_default();
        if queue.is_empty() {
            return Err(Status::invalid_argument("missing task queue name"));
        }
        let identity = if r.identity.is_empty() { "temporal-worker".to_string() } else { r.identity };
        let task = self.engine.poll(&queue, &identity, Vec::new(), wait).await.map_err(|e| errors::engine(e, ""))?;
        let Some(task) = task else { return Ok(Response::new(ws::PollActivityTaskQueueResponse::default())) };
        let e = task.execution;
        let t = &e.timeouts;
        Ok(Response::new(ws::PollActivityTaskQueueResponse {
            task_token: task.task_token.into_bytes(),
            workflow_namespace: self.namespace.clone(),
            activity_type: Some(common::v1::ActivityType { name: e.activity_type.clone() }),
            activity_id: e.activity_id.clone(),
            input: Some(convert::args_out(&e.input)),
            heartbeat_details: convert::opt_payloads(&e.heartbeat_details),
            scheduled_time: Some(convert::time_out(e.scheduled_at)),
            current_attempt_scheduled_time: Some(convert::time_out(e.attempt_scheduled_at)),
            started_time: e.started_at.map(convert::time_out),
            attempt: e.policy_attempt() as i32,
            schedule_to_close_timeout: t.schedule_to_close.map(convert::duration_out),
            start_to_close_timeout: t.start_to_close.map(convert::duration_out),
            heartbeat_timeout: t.heartbeat.map(convert::duration_out),
            retry_policy: Some(convert::retry_out(&e.retry)),
            priority: Some(convert::priority_out(&e)),
            activity_run_id: e.run_id.clone(),
            ..Default::default()
        }))
    }

    async fn record_activity_task_heartbeat(
        &self,
        req: Request<ws::RecordActivityTaskHeartbeatRequest>,
    ) -> Reply<ws::RecordActivityTaskHeartbeatResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let target = Target::Token(token_text(&r.task_token)?);
        self.heartbeat(target, r.details).await
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        req: Request<ws::RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Reply<ws::RecordActivityTaskHeartbeatByIdResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        let target = self.by_id(r.activity_id, r.run_id)?;
        let answer = self.heartbeat(target, r.details).await?.into_inner();
        Ok(Response::new(ws::RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: answer.cancel_requested,
            activity_paused: answer.activity_paused,
            activity_reset: answer.activity_reset,
        }))
    }

    async fn respond_activity_task_completed(
        &self,
        req: Request<ws::RespondActivityTaskCompletedRequest>,
    ) -> Reply<ws::RespondActivityTaskCompletedResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        self.complete(Target::Token(token_text(&r.task_token)?), r.result).await?;
        Ok(Response::new(ws::RespondActivityTaskCompletedResponse::default()))
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        req: Request<ws::RespondActivityTaskCompletedByIdRequest>,
    ) -> Reply<ws::RespondActivityTaskCompletedByIdResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        self.complete(self.by_id(r.activity_id, r.run_id)?, r.result).await?;
        Ok(Response::new(ws::RespondActivityTaskCompletedByIdResponse::default()))
    }

    async fn respond_activity_task_failed(
        &self,
        req: Request<ws::RespondActivityTaskFailedRequest>,
    ) -> Reply<ws::RespondActivityTaskFailedResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        self.fail(Target::Token(token_text(&r.task_token)?), r.failure, r.last_heartbeat_details).await?;
        Ok(Response::new(ws::RespondActivityTaskFailedResponse::default()))
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        req: Request<ws::RespondActivityTaskFailedByIdRequest>,
    ) -> Reply<ws::RespondActivityTaskFailedByIdResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        self.fail(self.by_id(r.activity_id, r.run_id)?, r.failure, r.last_heartbeat_details).await?;
        Ok(Response::new(ws::RespondActivityTaskFailedByIdResponse::default()))
    }

    async fn respond_activity_task_canceled(
        &self,
        req: Request<ws::RespondActivityTaskCanceledRequest>,
    ) -> Reply<ws::RespondActivityTaskCanceledResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        self.cancelled(Target::Token(token_text(&r.task_token)?), r.details).await?;
        Ok(Response::new(ws::RespondActivityTaskCanceledResponse::default()))
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        req: Request<ws::RespondActivityTaskCanceledByIdRequest>,
    ) -> Reply<ws::RespondActivityTaskCanceledByIdResponse> {
        let r = req.into_inner();
        self.check_namespace(&r.namespace)?;
        self.cancelled(self.by_id(r.activity_id, r.run_id)?, r.details).await?;
        Ok(Response::new(ws::RespondActivityTaskCanceledByIdResponse::default()))
    }
}

/// The worker calls, shared by their token and by-id forms.
impl Frontend {
    async fn heartbeat(
        &self,
        target: Target,
        details: Option<common::v1::Payloads>,
    ) -> Reply<ws::RecordActivityTaskHeartbeatResponse> {
        let details = convert::payload_in(details, "heartbeat details")?;
        let answer = self.engine.heartbeat(&target, details).await.map_err(|e| self.attempt_error(e, &target))?;
        Ok(Response::new(ws::RecordActivityTaskHeartbeatResponse {
            cancel_requested: answer.cancel_requested,
            activity_paused: answer.paused,
            activity_reset: answer.reset,
        }))
    }

    async fn complete(&self, target: Target, result: Option<common::v1::Payloads>) -> Result<(), Status> {
        let result = convert::payload_in(result, "result")?
            .unwrap_or_else(|| crate::payload::Payload::json(&serde_json::Value::Null));
        self.engine.complete(&target, result).await.map_err(|e| self.attempt_error(e, &target))
    }

    async fn fail(
        &self,
        target: Target,
        failure: Option<temporalio_protos::temporal::api::failure::v1::Failure>,
        last_heartbeat: Option<common::v1::Payloads>,
    ) -> Result<(), Status> {
        let failure = convert::failure_in(failure)?;
        if let Some(details) = convert::payload_in(last_heartbeat, "last heartbeat details")? {
            // Recorded first, so the next attempt resumes from them.
            self.engine.heartbeat(&target, Some(details)).await.map_err(|e| self.attempt_error(e, &target))?;
        }
        self.engine.fail(&target, failure).await.map(|_| ()).map_err(|e| self.attempt_error(e, &target))
    }

    async fn cancelled(&self, target: Target, details: Option<common::v1::Payloads>) -> Result<(), Status> {
        let details = convert::payload_in(details, "cancellation details")?;
        self.engine.report_cancelled(&target, details).await.map_err(|e| self.attempt_error(e, &target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_poll_answers_a_second_before_the_callers_deadline() {
        assert_eq!(grpc_timeout("4S"), Some(Duration::from_secs(4)));
        assert_eq!(grpc_timeout("29999m"), Some(Duration::from_millis(29_999)));
        assert_eq!(grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout("x"), None);
        let mut req = Request::new(());
        req.metadata_mut().insert("grpc-timeout", "4S".parse().unwrap());
        assert_eq!(poll_wait(&req), Duration::from_secs(3));
        assert_eq!(poll_wait(&Request::new(())), MAX_POLL);
    }
}
