//! The log records of one attempt: guest log calls, lines of its stdout and
//! stderr, refused capabilities. Bounded in records and in bytes per
//! record, whatever the guest does: past a cap, records are counted and
//! summed up in a closing record instead of being kept. Output has a
//! smaller cap than log calls: a guest that floods stdout must not flood
//! the store (each record is a row).

use crate::activity::Millis;
use crate::store::LogEntry;

/// Records kept per attempt.
pub const MAX_RECORDS: usize = 1000;
/// Lines kept per output stream (stdout, stderr) and attempt.
pub const MAX_OUTPUT_LINES: usize = 100;
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

    /// Keeps a record (the kept one is returned), or counts it past the cap.
    pub fn push(
        &mut self,
        at: Millis,
        level: &str,
        mut message: String,
        fields: Vec<(String, String)>,
    ) -> Option<&LogEntry> {
        if self.entries.len() >= MAX_RECORDS {
            self.dropped += 1;
            self.dropped_bytes += message.len();
            return None;
        }
        if message.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
            let rest = message.len() - cut;
            message.truncate(cut);
            message.push_str(&format!("… [{rest} more bytes]"));
        }
        self.entries.push(LogEntry { at, attempt: self.attempt, level: level.into(), message, fields });
        self.entries.last()
    }

    /// The first lines of a captured stream, as records of level `level`;
    /// the rest counted in one record.
    pub fn push_lines(&mut self, at: Millis, level: &str, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // A final newline ends the last line; it does not start another.
        let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut lines = text.split(|b| *b == b'\n');
        for line in lines.by_ref().take(MAX_OUTPUT_LINES) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.push(at, level, String::from_utf8_lossy(line).into_owned(), Vec::new());
        }
        let (mut more, mut more_bytes) = (0usize, 0usize);
        for line in lines {
            more += 1;
            more_bytes += line.len();
        }
        if more > 0 {
            let message =
                format!("{more} more {level} lines ({more_bytes} bytes) were not kept: at most {MAX_OUTPUT_LINES}");
            self.push(at, "warn", message, Vec::new());
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
    fn a_flood_of_log_records_is_kept_up_to_the_cap_and_counted() {
        let mut book = LogBook::new(2);
        for i in 0..1500 {
            book.push(5, "info", format!("{i}"), vec![]);
        }
        let entries = book.finish(7);
        assert_eq!(entries.len(), MAX_RECORDS + 1);
        let last = entries.last().unwrap();
        assert_eq!((last.level.as_str(), last.attempt), ("warn", 2));
        assert_eq!(last.message, "500 more log records (2000 bytes) were not kept: at most 1000 per attempt");
    }

    #[test]
    fn output_keeps_its_first_lines_and_counts_the_rest() {
        let mut book = LogBook::new(1);
        book.push_lines(5, "stdout", "\n".repeat(1_000_000).as_bytes());
        book.push_lines(5, "stderr", b"one\r\ntwo\n");
        book.push_lines(5, "stderr", b"no newline");
        let entries = book.finish(7);
        let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages.len(), MAX_OUTPUT_LINES + 4);
        assert!(messages[..MAX_OUTPUT_LINES].iter().all(|m| m.is_empty()));
        assert_eq!(
            messages[MAX_OUTPUT_LINES..],
            ["999900 more stdout lines (0 bytes) were not kept: at most 100", "one", "two", "no newline"]
        );
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
