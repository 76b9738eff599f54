//! The visibility queries people write against standalone activities, as
//! Temporal words them: `Field = 'value'` terms joined by `AND`, over
//! `ActivityType`, `ExecutionStatus`, `TaskQueue` and `ActivityId`.
//! Anything else is refused with Temporal's INVALID_ARGUMENT texts.

use tonic::Status;

use crate::activity::Status as SluiceStatus;
use crate::store::ListFilter;

/// A parsed query.
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    pub activity_type: Option<String>,
    pub statuses: Option<Vec<SluiceStatus>>,
    pub task_queue: Option<String>,
    pub activity_id: Option<String>,
}

impl Query {
    /// The store filter that finds its executions (an exact activity id is
    /// also checked by `matches`).
    pub fn filter(&self) -> ListFilter {
        let (status, open) = match self.statuses.as_deref() {
            Some([one]) => (Some(*one), false),
            Some(_) => (None, true),
            None => (None, false),
        };
        ListFilter {
            status,
            open,
            activity_type: self.activity_type.clone(),
            task_queue: self.task_queue.clone(),
            id_prefix: self.activity_id.clone(),
            ..ListFilter::default()
        }
    }

    pub fn matches(&self, e: &crate::activity::Execution) -> bool {
        self.activity_id.as_ref().is_none_or(|id| *id == e.activity_id)
    }
}

fn invalid(m: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("invalid query: {m}"))
}

pub fn parse(text: &str) -> Result<Query, Status> {
    let mut q = Query::default();
    let text = text.trim();
    if text.is_empty() {
        return Ok(q);
    }
    if text.to_ascii_uppercase().contains("ORDER BY") {
        return Err(invalid("operation is not supported: 'ORDER BY' clause"));
    }
    for term in split_and(text) {
        let (field, value) =
            term.split_once('=').ok_or_else(|| invalid(format!("expected Field = 'value', got {:?}", term.trim())))?;
        let (field, value) = (field.trim(), unquote(value.trim())?);
        match field {
            "ActivityType" => q.activity_type = Some(value),
            "TaskQueue" => q.task_queue = Some(value),
            "ActivityId" => q.activity_id = Some(value),
            "ExecutionStatus" => {
                q.statuses = Some(crate::temporal::convert::status_named(&value).ok_or_else(|| {
                    invalid(format!(
                        "invalid ExecutionStatus value '{value}' (Running, Completed, Failed, Canceled, Terminated, \
                         TimedOut)"
                    ))
                })?)
            }
            other => return Err(invalid(format!("unknown or unsupported search attribute: {other}"))),
        }
    }
    Ok(q)
}

/// Terms of `a AND b AND c` (case-insensitive, outside quotes).
fn split_and(text: &str) -> Vec<String> {
    let (mut terms, mut current, mut quote) = (Vec::new(), String::new(), None);
    let words: Vec<&str> = text.split(' ').collect();
    for word in words {
        for c in word.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                None if c == '\'' || c == '"' => quote = Some(c),
                _ => {}
            }
        }
        if quote.is_none() && word.eq_ignore_ascii_case("and") {
            terms.push(std::mem::take(&mut current));
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
    }
    terms.push(current);
    terms
}

fn unquote(v: &str) -> Result<String, Status> {
    let quoted = |q: char| v.len() >= 2 && v.starts_with(q) && v.ends_with(q);
    if quoted('\'') || quoted('"') {
        Ok(v[1..v.len() - 1].to_string())
    } else {
        Err(invalid(format!("a value must be quoted, got {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_queries_parse_and_the_rest_is_refused_with_temporals_words() {
        let q = parse("ActivityType = 'resize' AND ExecutionStatus = 'Running' and TaskQueue=\"q one\"").unwrap();
        assert_eq!(q.activity_type.as_deref(), Some("resize"));
        assert_eq!(q.statuses, Some(vec![SluiceStatus::Scheduled, SluiceStatus::Started]));
        assert_eq!(q.task_queue.as_deref(), Some("q one"));
        assert!(q.filter().open && q.filter().status.is_none());
        let done = parse("ExecutionStatus = 'Completed'").unwrap().filter();
        assert_eq!((done.status, done.open), (Some(SluiceStatus::Completed), false));
        assert_eq!(parse("  ").unwrap(), Query::default());
        let msg = |t: &str| parse(t).unwrap_err().message().to_string();
        assert_eq!(
            msg("ActivityType = 'a' ORDER BY StartTime"),
            "invalid query: operation is not supported: 'ORDER BY' clause"
        );
        assert_eq!(msg("WorkflowId = 'x'"), "invalid query: unknown or unsupported search attribute: WorkflowId");
        assert!(
            msg("ExecutionStatus = 'running'").starts_with("invalid query: invalid ExecutionStatus value 'running'")
        );
        assert_eq!(msg("ActivityType = a"), "invalid query: a value must be quoted, got a");
        assert_eq!(msg("ActivityType"), "invalid query: expected Field = 'value', got \"ActivityType\"");
    }
}
