//! The trace an execution belongs to (W3C trace context): the caller's
//! trace when its start request carried a `traceparent`, else a new one.
//! The execution is one span of it, each attempt a span under that.

use serde::{Deserialize, Serialize};

/// Ids in lowercase hex, as W3C writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// 32 hex digits.
    pub trace_id: String,
    /// The execution's own span (16 hex digits).
    pub span_id: String,
    /// The caller's span, if the start came with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
}

fn hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // Without randomness the ids are zero, which W3C calls invalid: tracing
    // then shows the execution in a trace of its own, nothing worse.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new span id (16 hex digits).
pub fn new_span_id() -> String {
    hex(8)
}

impl TraceContext {
    /// A new trace with the execution as its root span.
    pub fn new_root() -> TraceContext {
        TraceContext { trace_id: hex(16), span_id: new_span_id(), parent_span_id: None }
    }

    /// The execution's span in the caller's trace, from a W3C `traceparent`
    /// (`00-<trace id>-<parent span id>-<flags>`); `None` if it is not one
    /// (an invalid header is ignored, as W3C asks).
    pub fn from_traceparent(header: &str) -> Option<TraceContext> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let is_hex =
            |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let valid = is_hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && is_hex(trace, 32)
            && trace.bytes().any(|b| b != b'0')
            && is_hex(parent, 16)
            && parent.bytes().any(|b| b != b'0')
            && is_hex(flags, 2);
        valid.then(|| TraceContext {
            trace_id: trace.to_string(),
            span_id: new_span_id(),
            parent_span_id: Some(parent.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_continues_the_callers_trace_and_a_bad_one_is_ignored() {
        let t = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(t.span_id.len(), 16);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
        }
        let root = TraceContext::new_root();
        assert_eq!((root.trace_id.len(), root.parent_span_id), (32, None));
    }
}
