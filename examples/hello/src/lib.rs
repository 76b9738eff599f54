//! The smallest useful activity: greets whoever is named in the input.
//!
//! Input `{"name": "Ada"}` → output `{"greeting": "Hello, Ada!"}`.
//! An empty name is a non-retryable error of type `EmptyName`.

use serde::{Deserialize, Serialize};
use sluice_guest::{ActivityError, Context, LogLevel};

#[derive(Deserialize)]
struct Input {
    name: String,
}

#[derive(Serialize)]
struct Output {
    greeting: String,
}

fn hello(ctx: &Context, input: Input) -> Result<Output, ActivityError> {
    if input.name.trim().is_empty() {
        return Err(ActivityError::new("EmptyName", "name must not be empty").non_retryable());
    }
    ctx.log(LogLevel::Info, "greeting", &[("name", &input.name)]);
    ctx.progress(Some(100.0), "greeted");
    Ok(Output { greeting: format!("Hello, {}!", input.name) })
}

sluice_guest::export_activity!(hello);
