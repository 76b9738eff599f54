//! Execution options: the four timeouts and the retry policy, with
//! Temporal's defaults, capping rules and validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::time::{MAX_DURATION, check_duration};

/// The timeouts of an execution. `None` (or zero when given) means unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// The whole execution, all attempts and backoffs included. Never retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_close: Option<Duration>,
    /// How long one attempt may wait in its queue. Never retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_to_start: Option<Duration>,
    /// How long one attempt may run. Retryable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_to_close: Option<Duration>,
    /// Maximum gap between heartbeats of a started attempt. Retryable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Duration>,
}

/// Invalid execution options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("one of schedule_to_close_timeout and start_to_close_timeout is required")]
    NoCloseTimeout,
    #[error("retry_policy.backoff_coefficient must be at least 1.0, got {0}")]
    BackoffBelowOne(String),
    #[error(
        "retry_policy.maximum_interval ({max:?}) must not be shorter than retry_policy.initial_interval ({initial:?})"
    )]
    MaxBelowInitial { initial: Duration, max: Duration },
    #[error("retry_policy.initial_interval must be positive")]
    ZeroInitialInterval,
    /// A duration over `MAX_DURATION`; the message names the field.
    #[error("{0}")]
    TooLong(String),
}

/// Checks that the duration `what`, if set, is at most `MAX_DURATION`.
fn in_range(what: &str, d: Option<Duration>) -> Result<(), OptionsError> {
    match d {
        Some(d) => check_duration(what, d).map(|_| ()).map_err(OptionsError::TooLong),
        None => Ok(()),
    }
}

fn set(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

fn min(a: Option<Duration>, cap: Option<Duration>) -> Option<Duration> {
    match (a, cap) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

impl Timeouts {
    /// Applies the defaults and caps: schedule-to-start and start-to-close
    /// default to schedule-to-close and are capped by it; heartbeat is
    /// capped by start-to-close. At least one of schedule-to-close and
    /// start-to-close must be set.
    pub fn resolve(&self) -> Result<Timeouts, OptionsError> {
        in_range("schedule_to_close_timeout", self.schedule_to_close)?;
        in_range("schedule_to_start_timeout", self.schedule_to_start)?;
        in_range("start_to_close_timeout", self.start_to_close)?;
        in_range("heartbeat_timeout", self.heartbeat)?;
        let s2c = set(self.schedule_to_close);
        let stc = set(self.start_to_close);
        if s2c.is_none() && stc.is_none() {
            return Err(OptionsError::NoCloseTimeout);
        }
        let stc = min(stc, s2c);
        Ok(Timeouts {
            schedule_to_close: s2c,
            schedule_to_start: min(set(self.schedule_to_start), s2c),
            start_to_close: stc,
            heartbeat: set(self.heartbeat).map(|h| stc.map_or(h, |s| h.min(s))),
        })
    }

    /// Fields set here override those of `defaults`.
    pub fn or(&self, defaults: &Timeouts) -> Timeouts {
        Timeouts {
            schedule_to_close: set(self.schedule_to_close).or(defaults.schedule_to_close),
            schedule_to_start: set(self.schedule_to_start).or(defaults.schedule_to_start),
            start_to_close: set(self.start_to_close).or(defaults.start_to_close),
            heartbeat: set(self.heartbeat).or(defaults.heartbeat),
        }
    }
}

/// How failed attempts are retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub initial_interval: Duration,
    /// Each retry waits this many times longer than the one before (≥ 1).
    pub backoff_coefficient: f64,
    /// Cap on the delay; `None` = 100 × initial interval.
    pub maximum_interval: Option<Duration>,
    /// Attempts allowed in all, the first included; 0 = unlimited.
    pub maximum_attempts: u32,
    /// Application error types that are never retried (exact match).
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_interval: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            maximum_interval: None,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.initial_interval.is_zero() {
            return Err(OptionsError::ZeroInitialInterval);
        }
        in_range("retry_policy.initial_interval", Some(self.initial_interval))?;
        in_range("retry_policy.maximum_interval", self.maximum_interval)?;
        // Written so NaN is refused too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(self.backoff_coefficient >= 1.0) {
            return Err(OptionsError::BackoffBelowOne(self.backoff_coefficient.to_string()));
        }
        if let Some(max) = self.maximum_interval
            && max < self.initial_interval
        {
            return Err(OptionsError::MaxBelowInitial { initial: self.initial_interval, max });
        }
        Ok(())
    }

    /// The cap on retry delays: as set, else 100 × the initial interval;
    /// never over `MAX_DURATION`.
    pub fn maximum_interval(&self) -> Duration {
        self.maximum_interval.unwrap_or(self.initial_interval.saturating_mul(100)).min(MAX_DURATION)
    }

    /// The delay after attempt `attempt` failed: initial × coefficient^(n-1),
    /// capped by the maximum interval.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let max = self.maximum_interval();
        let factor = self.backoff_coefficient.powi(attempt.saturating_sub(1).min(1024) as i32);
        let secs = self.initial_interval.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= max.as_secs_f64() {
            return max;
        }
        Duration::from_secs_f64(secs)
    }

    /// Whether another attempt is allowed after `attempt` failed.
    pub fn attempts_left(&self, attempt: u32) -> bool {
        self.maximum_attempts == 0 || attempt < self.maximum_attempts
    }

    pub fn is_non_retryable_type(&self, error_type: &str) -> bool {
        self.non_retryable_error_types.iter().any(|t| t == error_type)
    }
}
