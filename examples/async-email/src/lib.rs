//! Sends an email through an outside mail service, asynchronously.
//!
//! The activity writes the email and its task token into the outbox
//! directory it was granted (`/outbox`) and returns pending. The mail
//! service (`mail_service.py` beside this crate) picks it up, sends it, and
//! completes the activity over gRPC with the task token.
//!
//! Input: `{"to": "ada@example.com", "subject": "Hi", "body": "..."}`.
//! Result (set by the mail service): `{"message_id": "..."}`.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_guest::{ActivityError, Context, LogLevel};

#[derive(Deserialize, Serialize)]
struct Email {
    to: String,
    subject: String,
    #[serde(default)]
    body: String,
}

fn send(ctx: &Context, email: Email) -> Result<(), ActivityError> {
    if !email.to.contains('@') {
        return Err(ActivityError::new("InvalidAddress", format!("{:?} is not an email address", email.to)).non_retryable());
    }
    let info = ctx.info();
    let message = json!({
        "activity_id": info.activity_id,
        "attempt": info.attempt,
        "task_token": ctx.task_token(),
        "email": email,
    });
    // Write then rename, so the mail service never reads half a file.
    let name = format!("/outbox/{}-{}", info.activity_id, info.attempt);
    std::fs::write(format!("{name}.tmp"), message.to_string())?;
    std::fs::rename(format!("{name}.tmp"), format!("{name}.json"))?;
    ctx.log(LogLevel::Info, "handed to the mail service", &[("to", &email.to)]);
    Err(ActivityError::pending())
}

sluice_guest::export_activity!(send);
