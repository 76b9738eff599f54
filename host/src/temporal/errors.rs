//! Temporal's errors: the status codes and texts its server answers, with
//! the `errordetails.v1` message the SDKs turn into their own exceptions
//! (sent, as gRPC does, in a `google.rpc.Status` in the status details).

use prost::Message as _;
use temporalio_protos::google::rpc;
use temporalio_protos::temporal::api::errordetails::v1 as details;
use tonic::{Code, Status};

use crate::engine::EngineError;

fn with_detail(code: Code, message: String, type_name: &str, detail: Vec<u8>) -> Status {
    let status = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_wkt_types::Any {
            type_url: format!("type.googleapis.com/temporal.api.errordetails.v1.{type_name}"),
            value: detail,
        }],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

/// An unknown activity (or an attempt no longer current).
pub fn not_found(activity_id: &str) -> Status {
    with_detail(
        Code::NotFound,
        format!("activity not found for ID: {activity_id}"),
        "NotFoundFailure",
        details::NotFoundFailure::default().encode_to_vec(),
    )
}

pub fn namespace_not_found(namespace: &str) -> Status {
    with_detail(
        Code::NotFound,
        format!("Namespace {namespace} is not found."),
        "NamespaceNotFoundFailure",
        details::NamespaceNotFoundFailure { namespace: namespace.into() }.encode_to_vec(),
    )
}

/// A start refused by the id policies; `run_id` is the run in the way.
pub fn already_started(request_id: &str, run_id: &str) -> Status {
    with_detail(
        Code::AlreadyExists,
        "activity execution already started".into(),
        "ActivityExecutionAlreadyStartedFailure",
        details::ActivityExecutionAlreadyStartedFailure { start_request_id: request_id.into(), run_id: run_id.into() }
            .encode_to_vec(),
    )
}

/// An engine error about `activity_id`, as Temporal words it.
pub fn engine(e: EngineError, activity_id: &str) -> Status {
    match e {
        EngineError::NotFound(_) => not_found(activity_id),
        EngineError::Invalid(m) => Status::invalid_argument(m),
        EngineError::AlreadyExists(m) => Status::already_exists(m),
        EngineError::Precondition(m) => Status::failed_precondition(m),
        EngineError::TooLarge(m) => Status::resource_exhausted(m),
        EngineError::BadToken(_) => Status::invalid_argument("Error deserializing task token."),
        EngineError::Internal(m) => Status::internal(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_travel_in_a_google_rpc_status() {
        let s = already_started("req", "run-1");
        assert_eq!((s.code(), s.message()), (Code::AlreadyExists, "activity execution already started"));
        let decoded = rpc::Status::decode(s.details()).unwrap();
        assert_eq!(
            decoded.details[0].type_url,
            "type.googleapis.com/temporal.api.errordetails.v1.ActivityExecutionAlreadyStartedFailure"
        );
        let d = details::ActivityExecutionAlreadyStartedFailure::decode(&*decoded.details[0].value).unwrap();
        assert_eq!(d.run_id, "run-1");
    }
}
