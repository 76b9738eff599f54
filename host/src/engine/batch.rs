//! Operations on every execution a query matches: cancel, terminate, pause,
//! unpause, reset, delete, with a dry run that only counts.
//!
//! A query is `field = "value"` conditions joined by `AND`; fields are
//! `type`, `status` and `queue`, e.g. `type = "resize" AND status = "scheduled"`.

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, EngineError};
use crate::activity::{ResetRequest, Status};
use crate::store::ListFilter;

/// Most executions one batch request acts on.
pub const MAX_BATCH: usize = 100_000;
/// Errors reported back, the rest only counted.
const MAX_ERRORS: usize = 20;
/// Longest query accepted.
const MAX_QUERY: usize = 1024;

/// What to do to each matched execution.
#[derive(Debug, Clone)]
pub enum BatchOp {
    Cancel,
    Terminate { reason: String },
    Pause,
    Unpause { jitter: Duration },
    Reset(ResetRequest),
    Delete,
}

/// What a batch did.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    pub matched: usize,
    pub applied: usize,
    /// (activity id, error) of the first failures.
    pub errors: Vec<(String, String)>,
    pub failed: usize,
}

/// Parses a query into a list filter.
pub fn parse_query(query: &str) -> Result<ListFilter, EngineError> {
    let bad = |m: String| EngineError::Invalid(format!("query: {m}"));
    if query.len() > MAX_QUERY {
        return Err(bad(format!("longer than {MAX_QUERY} bytes")));
    }
    let mut filter = ListFilter::default();
    let mut rest = query.trim();
    if rest.is_empty() {
        return Err(bad("empty: write e.g. type = \"resize\" AND status = \"failed\"".into()));
    }
    loop {
        let (field, after) =
            rest.split_once('=').ok_or_else(|| bad(format!("expected `field = \"value\"` at {rest:?}")))?;
        let field = field.trim();
        let after = after.trim_start();
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').ok_or_else(|| bad(format!("unclosed quote in {after:?}")))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_at(after.find(char::is_whitespace).unwrap_or(after.len())),
        };
        if value.is_empty() {
            return Err(bad(format!("{field} has no value")));
        }
        let value = value.to_string();
        match field {
            "type" | "activity_type" => set_once(&mut filter.activity_type, value, field)?,
            "queue" | "task_queue" => set_once(&mut filter.task_queue, value, field)?,
            "status" => {
                let status = Status::parse(&value).ok_or_else(|| {
                    bad(format!("unknown status {value:?} (one of {})", Status::ALL.map(|s| s.as_str()).join(", ")))
                })?;
                set_once(&mut filter.status, status, field)?;
            }
            other => return Err(bad(format!("unknown field {other:?} (type, status, queue)"))),
        }
        let after = after.trim_start();
        if after.is_empty() {
            return Ok(filter);
        }
        let (word, next) = after.split_at(after.find(char::is_whitespace).unwrap_or(after.len()));
        if !word.eq_ignore_ascii_case("and") {
            return Err(bad(format!("expected AND before {after:?} (conditions are joined by AND)")));
        }
        rest = next.trim_start();
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, field: &str) -> Result<(), EngineError> {
    if slot.is_some() {
        return Err(EngineError::Invalid(format!("query: {field} is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

impl Engine {
    /// Applies `op` to every execution `query` matches (the runs as listed:
    /// every run of an id), or only counts them when `dry_run`.
    pub async fn batch(self: &Arc<Self>, query: &str, op: BatchOp, dry_run: bool) -> Result<BatchReport, EngineError> {
        let mut filter = parse_query(query)?;
        filter.page_size = 1000;
        // Collected first: the operations change what a later page would list.
        let mut runs = Vec::new();
        loop {
            let (page, next) = self.list(filter.clone()).await?;
            runs.extend(page.into_iter().map(|e| (e.activity_id, e.run_id)));
            if runs.len() > MAX_BATCH {
                return Err(EngineError::TooLarge(format!(
                    "the query matches over {MAX_BATCH} executions; narrow it (add status, type or queue)"
                )));
            }
            match next {
                Some(token) => filter.page_token = Some(token),
                None => break,
            }
        }
        let mut report = BatchReport { matched: runs.len(), ..BatchReport::default() };
        if dry_run {
            return Ok(report);
        }
        for (id, run) in runs {
            let run = Some(run.as_str());
            let result = match &op {
                BatchOp::Cancel => self.request_cancel(&id, run).await.map(|_| ()),
                BatchOp::Terminate { reason } => self.terminate(&id, run, reason).await,
                BatchOp::Pause => self.pause(&id, run).await.map(|_| ()),
                BatchOp::Unpause { jitter } => self.unpause(&id, run, *jitter).await.map(|_| ()),
                BatchOp::Reset(req) => self.reset(&id, run, *req).await.map(|_| ()),
                BatchOp::Delete => self.delete(&id, run).await,
            };
            match result {
                Ok(()) => report.applied += 1,
                Err(e) => {
                    report.failed += 1;
                    if report.errors.len() < MAX_ERRORS {
                        report.errors.push((id, e.to_string()));
                    }
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_into_filters() {
        let f = parse_query(r#"type = "resize" AND status = "failed" and queue=media"#).unwrap();
        assert_eq!(f.activity_type.as_deref(), Some("resize"));
        assert_eq!(f.status, Some(Status::Failed));
        assert_eq!(f.task_queue.as_deref(), Some("media"));
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        let err = |q: &str| parse_query(q).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("colour = \"red\"").contains("unknown field \"colour\""));
        assert!(err("status = \"done\"").contains("unknown status \"done\""));
        assert!(err("type = \"a\" OR type = \"b\"").contains("expected AND"));
        assert!(err("type = \"a").contains("unclosed quote"));
        assert!(err("type = \"a\" AND type = \"b\"").contains("type is given twice"));
        assert!(err("type").contains(r#"expected `field = "value"`"#));
        assert!(err(&"type = x AND ".repeat(100)).contains("longer than 1024 bytes"));
    }
}
