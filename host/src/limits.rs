//! Bounds on the values clients send, in one place (the proto and the
//! docs state the same numbers).

/// Longest id, name, identity or request id, in bytes.
pub const MAX_NAME: usize = 256;
/// Longest failure message, in bytes.
pub const MAX_FAILURE_MESSAGE: usize = 64 * 1024;
/// Longest termination reason, in bytes.
pub const MAX_REASON: usize = 4096;

/// Checks that the name `what` is set and within [`MAX_NAME`].
pub fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > MAX_NAME {
        return Err(format!("{what} is {} bytes, over the limit of {MAX_NAME}", value.len()));
    }
    Ok(())
}
