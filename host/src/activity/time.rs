//! Moments and durations, and the ranges they are kept in so that no
//! arithmetic on them can overflow: every duration accepted anywhere is at
//! most [`MAX_DURATION`], and every moment is at most [`MAX_MILLIS`], which
//! a store keeps as a signed 64-bit number.

use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// The longest timeout, retry interval, delay or grace period accepted:
/// 100 years (365-day years).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The latest moment kept (in practice, never reached: now plus a few
/// [`MAX_DURATION`]s is far below it).
pub const MAX_MILLIS: Millis = i64::MAX as u64;

/// `d` in milliseconds, at most [`MAX_MILLIS`].
pub fn millis(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).min(MAX_MILLIS)
}

/// The moment `d` after `t`, at most [`MAX_MILLIS`].
pub fn after(t: Millis, d: Duration) -> Millis {
    t.saturating_add(millis(d)).min(MAX_MILLIS)
}

/// `d` if it is at most [`MAX_DURATION`]; else an error naming `what`.
pub fn check_duration(what: &str, d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err(format!("{what} is {}, over the limit of 100 years", humantime::format_duration(d)));
    }
    Ok(d)
}
