//! Errors of the engine's API, each mapping to one gRPC status code.

use crate::activity::{OptionsError, Reject};
use crate::store::StoreError;
use crate::token::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input: maps to INVALID_ARGUMENT.
    #[error("{0}")]
    Invalid(String),
    /// NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// ALREADY_EXISTS.
    #[error("{0}")]
    AlreadyExists(String),
    /// The execution is not in a state that allows this: FAILED_PRECONDITION.
    #[error("{0}")]
    Precondition(String),
    /// Over a size or rate limit: RESOURCE_EXHAUSTED.
    #[error("{0}")]
    TooLarge(String),
    /// UNAUTHENTICATED / PERMISSION_DENIED for bad tokens.
    #[error("{0}")]
    BadToken(String),
    /// INTERNAL (store failures and the like).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            e @ StoreError::BadPageToken(_) => EngineError::Invalid(e.to_string()),
            StoreError::Refused(m) => EngineError::Precondition(m),
            StoreError::NotFound(m) => EngineError::NotFound(m),
            e => EngineError::Internal(e.to_string()),
        }
    }
}

impl From<Reject> for EngineError {
    fn from(e: Reject) -> Self {
        match e {
            e @ Reject::InvalidOptions { .. } => EngineError::Invalid(e.to_string()),
            e => EngineError::Precondition(e.to_string()),
        }
    }
}

impl From<OptionsError> for EngineError {
    fn from(e: OptionsError) -> Self {
        EngineError::Invalid(e.to_string())
    }
}

impl From<TokenError> for EngineError {
    fn from(e: TokenError) -> Self {
        EngineError::BadToken(e.to_string())
    }
}
