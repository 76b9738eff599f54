//! The log records of one attempt: guest log calls, lines of its stdout and
//! stderr, refused capabilities. Bounded in records and in bytes per
//! record, whatever the guest does: past the cap, records are counted and
//! summed up in one closing record instead of being kept.

use crate::activity::Millis;
use crate::store::LogEntry;

/// Records kept per attempt.
pub const MAX_RECORDS: usize = 1000;
/// Longest message kept in one record; longer ones are cut.
pub const MAX_MESSAGE: usize = 4096;

pub(super) struct LogBook {
    attempt: u32,
    entries: Vec<LogEntry>,
    dropped: usize,
    dropped_bytes: usize,
}

impl LogBook {
    pub fn new(attempt: u32) -> LogBook {
        LogBook { attempt, entries: Vec::new(), dropped: 0, dropped_bytes: 0 }
    }

    pub fn push(&mut self, at: Millis, level: &str, mut message: String, fields: Vec<(String, String)>) {
        if self.entries.len() >= MAX_RECORDS {
            self.dropped += 1;
            self.dropped_bytes += message.len();
            return;
        }
        if message.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
            let rest = message.len() - cut;
            message.truncate(cut);
            message.push_str(&format!("… [{rest} more bytes]"));
        }
        self.entries.push(LogEntry { at, attempt: self.attempt, level: level.into(), message, fields });
    }

    /// Each line of a captured stream, as records of level `level`.
    pub fn push_lines(&mut self, at: Millis, level: &str, bytes: &[u8]) {
        for line in String::from_utf8_lossy(bytes).lines() {
            self.push(at, level, line.to_string(), Vec::new());
        }
    }

    /// The records kept, closed by a count of those that were not.
    pub fn finish(mut self, at: Millis) -> Vec<LogEntry> {
        if self.dropped > 0 {
            let message = format!(
                "{} more log records ({} bytes) were not kept: at most {MAX_RECORDS} per attempt",
                self.dropped, self.dropped_bytes
            );
            self.entries.push(LogEntry { at, attempt: self.attempt, level: "warn".into(), message, fields: vec![] });
        }
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_kept_up_to_the_cap_and_counted() {
        let mut book = LogBook::new(2);
        book.push_lines(5, "stdout", "\n".repeat(1_000_000).as_bytes());
        book.push(6, "info", "late".into(), vec![]);
        let entries = book.finish(7);
        assert_eq!(entries.len(), MAX_RECORDS + 1);
        let last = entries.last().unwrap();
        assert_eq!((last.level.as_str(), last.attempt), ("warn", 2));
        assert_eq!(last.message, "999001 more log records (4 bytes) were not kept: at most 1000 per attempt");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let mut book = LogBook::new(1);
        book.push(1, "stdout", "é".repeat(3000), vec![]);
        let message = &book.finish(1)[0].message;
        assert!(message.starts_with(&"é".repeat(2048)));
        assert!(message.ends_with("… [1904 more bytes]"), "{message}");
    }
}
