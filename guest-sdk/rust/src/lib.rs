//! Write [Sluice](https://github.com/) activities in Rust.
//!
//! An activity is a plain function from a typed input to a typed output.
//! Inputs and outputs travel as JSON and are (de)serialised with serde; the
//! [`Context`] gives access to heartbeats, progress, the last heartbeat
//! details of a previous attempt, the attempt's info and its task token.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use sluice_guest::{Context, ActivityError};
//!
//! #[derive(Deserialize)]
//! struct Input { name: String }
//!
//! #[derive(Serialize)]
//! struct Output { greeting: String }
//!
//! fn hello(_ctx: &Context, input: Input) -> Result<Output, ActivityError> {
//!     Ok(Output { greeting: format!("Hello, {}!", input.name) })
//! }
//!
//! sluice_guest::export_activity!(hello);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2`
//! (`cargo build --release --target wasm32-wasip2`) and run the resulting
//! `.wasm` with `sluice run`.
//!
//! # Errors, retries, cancellation and async completion
//!
//! Return an [`ActivityError`] to fail the attempt. Errors are retryable by
//! default; [`ActivityError::non_retryable`] fails the execution at once,
//! [`ActivityError::with_next_retry_delay`] overrides the retry policy's
//! delay. Any `std::error::Error` converts with `?` into a retryable error
//! whose type is the Rust type name of the error.
//!
//! [`Context::heartbeat`] returns `Err(ActivityError::cancelled())` once
//! cancellation was requested, so `ctx.heartbeat(&position)?;` stops the
//! activity cleanly. Return [`ActivityError::pending()`] after handing
//! [`Context::task_token`] to another system to complete the activity later.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "activity-component",
        pub_export_macro: true,
        export_macro_name: "__export_bindings",
        default_bindings_module: "sluice_guest::bindings",
    });
}

mod context;
mod error;

pub use context::{Context, Info, LogLevel};
pub use error::ActivityError;

use bindings::exports::sluice::activity::activity::Outcome;
use bindings::sluice::activity::types::{ApplicationError, Payload};

/// Encoding tag of JSON payloads, the default everywhere.
pub const JSON: &str = "json/plain";

/// Error type reported when the input cannot be decoded into the activity's
/// input type. Not retryable: the same input fails the same way again.
pub const INVALID_INPUT: &str = "InvalidInput";

/// Error type reported when the output or heartbeat details cannot be encoded.
pub const ENCODING_ERROR: &str = "EncodingError";

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Payload, ActivityError> {
    serde_json::to_vec(value)
        .map(|data| Payload { encoding: JSON.to_string(), data })
        .map_err(|e| ActivityError::new(ENCODING_ERROR, format!("cannot encode as JSON: {e}")).non_retryable())
}

fn decode<T: DeserializeOwned>(payload: &Payload, what: &str) -> Result<T, ActivityError> {
    if payload.encoding != JSON {
        return Err(ActivityError::new(
            INVALID_INPUT,
            format!("{what} has encoding {:?}, expected {JSON:?}", payload.encoding),
        )
        .non_retryable());
    }
    // An absent payload decodes like JSON `null`, so `()` and `Option` inputs work.
    let data: &[u8] = if payload.data.is_empty() { b"null" } else { &payload.data };
    serde_json::from_slice(data)
        .map_err(|e| ActivityError::new(INVALID_INPUT, format!("cannot decode {what}: {e}")).non_retryable())
}

/// Runs `f` on a raw input payload and turns its result into the WIT outcome.
/// Used by [`export_activity!`]; not meant to be called directly.
#[doc(hidden)]
pub fn __run<I, O, F>(input: Payload, f: F) -> Outcome
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(&Context, I) -> Result<O, ActivityError>,
{
    let result =
        decode(&input, "activity input").and_then(|input| f(&Context::new(), input)).and_then(|output| encode(&output));
    match result {
        Ok(payload) => Outcome::Completed(payload),
        Err(err) => err.into_outcome(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn application_error(
    message: String,
    error_type: String,
    non_retryable: bool,
    details: Option<Payload>,
    next_retry_delay: Option<Duration>,
) -> ApplicationError {
    ApplicationError { message, error_type, non_retryable, details, next_retry_delay_ms: next_retry_delay.map(millis) }
}

/// Exports `f` as the component's activity.
///
/// `f` must have the shape `fn(&Context, I) -> Result<O, ActivityError>`
/// where `I: DeserializeOwned` and `O: Serialize`.
#[macro_export]
macro_rules! export_activity {
    ($f:path) => {
        struct __SluiceActivity;
        impl $crate::bindings::exports::sluice::activity::activity::Guest for __SluiceActivity {
            fn run(
                input: $crate::bindings::sluice::activity::types::Payload,
            ) -> $crate::bindings::exports::sluice::activity::activity::Outcome {
                $crate::__run(input, $f)
            }
        }
        $crate::bindings::__export_bindings!(__SluiceActivity with_types_in $crate::bindings);
    };
}
