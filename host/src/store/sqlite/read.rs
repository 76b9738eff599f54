//! Reading executions, their history and their logs: the queries behind
//! `get` and `describe`, each run on the writer's
//! connection (so a reply never shows what is not yet durable).

use rusqlite::{Connection, OptionalExtension, params};

use super::{LATEST, SELECT, decode, row_exec};
use crate::activity::{Execution, HistoryEntry, Millis};
use crate::store::{LogEntry, LogPage, StoreError, Versioned};

/// The given run, or the latest run of the id.
pub(super) fn get(
    conn: &Connection,
    activity_id: &str,
    run_id: Option<&str>,
) -> Result<Option<Versioned<Execution>>, StoreError> {
    let found = match run_id {
        Some(run) => conn
            .prepare_cached(&format!("{SELECT} WHERE run_id = ?1 AND activity_id = ?2"))?
            .query_row([run, activity_id], row_exec)
            .optional()?,
        None => conn.prepare_cached(LATEST)?.query_row([activity_id], row_exec).optional()?,
    };
    found.map(decode).transpose()
}

pub(super) fn history(conn: &Connection, run_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT history FROM executions WHERE run_id = ?1")?
        .query_row([run_id], |r| r.get(0))
        .optional()?;
    Ok(match text {
        Some(t) => serde_json::from_str(&t)?,
        None => Vec::new(),
    })
}

/// A page of the run's logs (`after` a record position, `size` records) and
/// the next page's token.
pub(super) fn logs(
    conn: &Connection,
    run_id: &str,
    after: i64,
    size: usize,
) -> Result<(Vec<LogEntry>, Option<String>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, attempt, level, message, fields, rowid FROM logs
         WHERE exec_seq = (SELECT seq FROM executions WHERE run_id = ?1) AND rowid > ?2
         ORDER BY rowid LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![run_id, after, size as i64 + 1], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, u32>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut entries = Vec::new();
    let mut last = None;
    for row in rows {
        let (at, attempt, level, message, fields, rowid) = row?;
        if entries.len() == size {
            return Ok((entries, last.map(LogPage::token_after)));
        }
        last = Some(rowid);
        let fields = serde_json::from_str(&fields)?;
        entries.push(LogEntry { at: at as Millis, attempt, level, message, fields });
    }
    Ok((entries, None))
}
