//! The embedded store: one SQLite file in WAL mode, all access through the
//! group-commit writer thread.

mod read;
mod schema;
mod types;
mod writer;

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::fair::{self, Lane};
use super::record::{self, Fixed};
use super::rows::{Encoded, MAX_HISTORY, Row, encoded_history, encoded_logs, first_history};
use super::{
    Bucket, Committed, CurrentVersions, Described, ListFilter, LogEntry, LogPage, NewStart, QueueStats, StartOutcome,
    Store, StoreError, Tokens, TypeChange, TypeRecord, Versioned,
};
use crate::activity::{Admission, Change, Execution, HistoryEntry, HistoryKind, Millis, Status, Transition, admit};
use writer::Writer;

use crate::payload::Payload;

pub struct SqliteStore {
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn =
            Connection::open(path).map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        // WAL: readers never block the writer. NORMAL: SQLite does not
        // fsync on commit; the writer's fsync thread does, before any reply
        // (see writer.rs), so a reported commit is on disk.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A 4 MiB page cache holds the hot pages (recent rows and the
        // indexes' right edges; the rest is in the OS's cache), and is a
        // quarter of the host's memory under load at 16 MiB. Checkpoints
        // every ~80 MiB of WAL rather than every 4 MiB: hot pages are copied
        // to the database once per checkpoint, so fewer checkpoints mean
        // less work for the writer.
        conn.pragma_update(None, "cache_size", -4096)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Plans must not depend on bound values: otherwise every statement
        // with a range on a parameter is re-prepared on each execution.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.pragma_update(None, "wal_autocheckpoint", 20000)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        schema::migrate(&mut conn).map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(SqliteStore { writer: Writer::spawn(conn, wal.into()) })
    }
}

/// The columns an execution is read from, in `row_exec`'s order.
macro_rules! columns {
    () => {
        "run_id, activity_id, activity_type, task_queue, priority, request_id, input_encoding, input, options, \
         state, version"
    };
}
const SELECT: &str = concat!("SELECT ", columns!(), " FROM executions");
/// An activity's latest run (built once: every start looks it up).
const LATEST: &str =
    concat!("SELECT ", columns!(), " FROM executions WHERE activity_id = ?1 ORDER BY seq DESC LIMIT 1");
/// The status index leaves completed runs out; a query by another status
/// says so, for SQLite to use it (it proves no implications).
const INDEXED: &str = "status <> 'completed'";
/// A queue's open executions, counted by type and status.
const OPEN_COUNTS: &str = "SELECT activity_type, status, COUNT(*) FROM executions
    WHERE status IN ('scheduled', 'started') AND status <> 'completed' AND task_queue = ?1
    GROUP BY activity_type, status ORDER BY activity_type, status";

/// Started attempts whose worker name matches a LIKE pattern.
fn started_by_sql() -> String {
    format!("{SELECT} WHERE status = 'started' AND {INDEXED} AND worker LIKE ?1 ESCAPE '\\'")
}

/// An execution row as read, decoded off the row by `decode`.
struct Raw {
    fixed: Fixed,
    options: String,
    state: String,
    version: u64,
}

fn row_exec(row: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        fixed: Fixed {
            run_id: row.get(0)?,
            activity_id: row.get(1)?,
            activity_type: row.get(2)?,
            task_queue: row.get(3)?,
            priority: row.get(4)?,
            request_id: row.get(5)?,
            input: Payload { encoding: row.get(6)?, data: row.get(7)? },
        },
        options: row.get(8)?,
        state: row.get(9)?,
        version: row.get::<_, i64>(10)? as u64,
    })
}

fn decode(raw: Raw) -> Result<Versioned<Execution>, StoreError> {
    Ok(Versioned { value: record::assemble(raw.fixed, &raw.options, &raw.state)?, version: raw.version })
}

fn collect(rows: impl Iterator<Item = rusqlite::Result<Raw>>) -> Result<Vec<Versioned<Execution>>, StoreError> {
    rows.map(|r| decode(r?)).collect()
}

/// Inserts a new run with its first history entries (`history`, a JSON
/// array of `entries`).
fn insert(conn: &Connection, e: &Encoded, history: &str, entries: i64) -> Result<(), StoreError> {
    let exec = &e.exec;
    conn.prepare_cached(
        "INSERT INTO executions (run_id, activity_id, activity_type, task_queue, status, priority,
            request_id, dispatch_at, deadline_at, worker, version, state, history, options, input_encoding, input,
            closed_at, fairness_key, history_len)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        exec.run_id,
        exec.activity_id,
        exec.activity_type,
        exec.task_queue,
        exec.status.as_str(),
        exec.priority,
        exec.request_id,
        exec.dispatchable_at().map(|t| t as i64),
        exec.next_deadline().map(|t| t as i64),
        exec.worker,
        e.state,
        history,
        e.options,
        exec.input.encoding,
        exec.input.data,
        exec.closed_at.map(|t| t as i64),
        exec.fairness.as_ref().map_or("", |f| f.key.as_str()),
        entries,
    ])?;
    Ok(())
}

/// Rewrites a run's row if it is still at `version`, appending `entry` (a
/// JSON object) to its history: as text, without parsing the array, until
/// the history is full; then the oldest entry after the first is dropped.
fn write(conn: &Connection, row: &Row, version: u64, entry: Option<&str>) -> Result<u64, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE executions SET status = ?1, dispatch_at = ?2, deadline_at = ?3, worker = ?4,
                version = version + 1, state = ?5,
                history = CASE
                    WHEN ?8 IS NULL THEN history
                    WHEN COALESCE(history_len, json_array_length(history)) >= ?9
                        THEN json_insert(json_remove(history, '$[1]'), '$[#]', json(?8))
                    WHEN history = '[]' THEN '[' || ?8 || ']'
                    ELSE substr(history, 1, length(history) - 1) || ',' || ?8 || ']' END,
                history_len = CASE
                    WHEN ?8 IS NULL THEN history_len
                    ELSE min(COALESCE(history_len, json_array_length(history)) + 1, ?9) END,
                task_queue = ?10, priority = ?11, options = COALESCE(?12, options), closed_at = ?13
             WHERE run_id = ?6 AND version = ?7",
        )?
        .execute(params![
            row.status,
            row.dispatch_at,
            row.deadline_at,
            row.worker,
            row.state,
            row.run_id,
            version as i64,
            entry,
            MAX_HISTORY,
            row.task_queue,
            row.priority,
            row.options,
            row.closed_at,
        ])?;
    if changed == 0 {
        return Err(StoreError::Conflict(row.run_id.clone()));
    }
    Ok(version + 1)
}

fn insert_logs(conn: &Connection, run_id: &str, logs: &[(LogEntry, String)]) -> Result<(), StoreError> {
    if logs.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO logs (exec_seq, at, attempt, level, message, fields)
         SELECT seq, ?2, ?3, ?4, ?5, ?6 FROM executions WHERE run_id = ?1",
    )?;
    for (l, fields) in logs {
        stmt.execute(params![run_id, l.at as i64, l.attempt, l.level, l.message, fields])?;
    }
    Ok(())
}

/// Deletes runs (their history is in the row) and their logs.
fn delete_seqs(conn: &Connection, seqs: &[i64]) -> Result<(), StoreError> {
    let mut logs = conn.prepare_cached("DELETE FROM logs WHERE exec_seq = ?1")?;
    let mut runs = conn.prepare_cached("DELETE FROM executions WHERE seq = ?1")?;
    for seq in seqs {
        logs.execute([seq])?;
        runs.execute([seq])?;
    }
    Ok(())
}

/// The fairness keys of a queue with waiting attempts: a skip scan of the
/// dispatch index, one seek per key.
const QUEUE_KEYS: &str = "WITH RECURSIVE k(key) AS (
        SELECT MIN(fairness_key) FROM executions WHERE task_queue = ?1 AND dispatch_at IS NOT NULL
        UNION ALL
        SELECT (SELECT MIN(fairness_key) FROM executions
                WHERE task_queue = ?1 AND dispatch_at IS NOT NULL AND fairness_key > k.key)
        FROM k WHERE k.key IS NOT NULL LIMIT 1000
    ) SELECT key FROM k WHERE key IS NOT NULL";

/// Up to `limit` dispatchable attempts of `queue`, in fair order (see
/// `store::fair`), with each key's standing updated.
fn fair_heads(
    conn: &Connection,
    queue: &str,
    types: &Option<Vec<String>>,
    limit: usize,
    now: Millis,
) -> Result<Vec<Versioned<Execution>>, StoreError> {
    let keys: Vec<String> =
        conn.prepare_cached(QUEUE_KEYS)?.query_map([queue], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let sql = format!(
        "{SELECT} WHERE task_queue = ?1 AND fairness_key = ?2 AND dispatch_at IS NOT NULL AND dispatch_at <= ?3{}
         ORDER BY priority, dispatch_at, seq LIMIT ?4",
        types_clause(types, 5)
    );
    // One key has nothing to share: its standing is neither read nor kept.
    let several = keys.len() > 1;
    let mut lanes = Vec::with_capacity(keys.len());
    for key in keys {
        let mut values: Vec<rusqlite::types::Value> =
            vec![queue.to_string().into(), key.clone().into(), (now as i64).into(), (limit as i64).into()];
        values.extend(types.iter().flatten().map(|t| t.clone().into()));
        let rows = collect(conn.prepare_cached(&sql)?.query_map(rusqlite::params_from_iter(values), row_exec)?)?;
        let Some(head) = rows.first() else { continue };
        let weight = head.value.fairness.as_ref().map_or(1.0, |f| f.weight);
        let served = match several {
            true => conn
                .prepare_cached("SELECT served FROM fairness WHERE task_queue = ?1 AND fairness_key = ?2")?
                .query_row([queue, &key], |r| r.get(0))
                .optional()?,
            false => None,
        };
        let rows = rows.into_iter().map(|v| (v.value.priority, v)).collect();
        lanes.push(Lane { key, weight, served, rows });
    }
    let (picked, standing) = fair::interleave(lanes, limit);
    let mut keep = conn.prepare_cached(
        "INSERT INTO fairness (task_queue, fairness_key, served) VALUES (?1, ?2, ?3)
         ON CONFLICT (task_queue, fairness_key) DO UPDATE SET served = excluded.served",
    )?;
    for (key, served) in standing {
        keep.execute(params![queue, key, served])?;
    }
    Ok(picked)
}

/// `AND activity_type IN (...)` for an optional type filter, with its params
/// numbered from `first`.
fn types_clause(types: &Option<Vec<String>>, first: usize) -> String {
    match types {
        Some(t) => {
            let marks: Vec<String> = (0..t.len()).map(|i| format!("?{}", first + i)).collect();
            format!(" AND activity_type IN ({})", marks.join(","))
        }
        None => String::new(),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn start_many(&self, starts: Vec<NewStart>) -> Result<Vec<StartOutcome>, StoreError> {
        let encoded = starts
            .into_iter()
            .map(|s| {
                let transition = Transition::new(Change::Scheduled, &s.exec, s.exec.scheduled_at);
                let history = first_history(&transition, s.started.as_ref())?;
                Ok((Encoded::new(s.exec)?, transition, history, s.conflict, s.reuse))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.writer
            .exec(move |conn| {
                let mut outcomes = Vec::with_capacity(encoded.len());
                for (encoded, transition, (history, entries), conflict, reuse) in encoded {
                    let exec = &encoded.exec;
                    let latest = conn
                        .prepare_cached(LATEST)?
                        .query_row([&exec.activity_id], row_exec)
                        .optional()?
                        .map(decode)
                        .transpose()?;
                    outcomes.push(
                        match admit(latest.as_ref().map(|v| &v.value), exec.request_id.as_deref(), conflict, reuse) {
                            Admission::New => {
                                insert(conn, &encoded, &history, entries)?;
                                StartOutcome::Created(Committed { value: encoded.exec, version: 1, transition })
                            }
                            Admission::Existing { .. } => {
                                StartOutcome::Existing(latest.expect("admitted an existing run"))
                            }
                            Admission::Rejected(reason) => StartOutcome::Rejected(reason),
                        },
                    );
                }
                Ok(outcomes)
            })
            .await
    }

    async fn update(
        &self,
        exec: &Execution,
        version: u64,
        history: Option<&HistoryEntry>,
        logs: &[LogEntry],
    ) -> Result<u64, StoreError> {
        let row = Row::new(exec, history.is_some_and(|h| h.kind == HistoryKind::OptionsUpdated))?;
        let history = encoded_history(history)?;
        let logs = encoded_logs(logs)?;
        self.writer
            .exec(move |conn| {
                // The version check comes first: a conflict writes nothing.
                let version = write(conn, &row, version, history.as_deref())?;
                insert_logs(conn, &row.run_id, &logs)?;
                Ok(version)
            })
            .await
    }

    async fn claim(
        &self,
        queue: &str,
        types: Option<Vec<String>>,
        worker: &str,
        versions: CurrentVersions,
        limit: usize,
        now: Millis,
    ) -> Result<Vec<Committed>, StoreError> {
        let queue = queue.to_string();
        let worker = worker.to_string();
        // Answered at commit, before the fsync: a claim a crash undoes is
        // dispatched again (at least once either way), and the attempt's
        // outcome, fsynced, makes the claim before it durable too.
        self.writer
            .exec_committed(move |conn| {
                let found = fair_heads(conn, &queue, &types, limit, now)?;
                let mut claimed = Vec::with_capacity(found.len());
                for Versioned { mut value, version } in found {
                    // Selected rows are dispatchable: `start` refuses nothing here.
                    let current = versions.get(&value.activity_type).map(String::as_str);
                    let Ok(change) = value.start(&worker, current, now) else { continue };
                    let transition = Transition::new(change, &value, now);
                    let history = encoded_history(transition.history.as_ref())?;
                    let version = write(conn, &Row::new(&value, false)?, version, history.as_deref())?;
                    claimed.push(Committed { value, version, transition });
                }
                Ok(claimed)
            })
            .await
    }

    async fn renew_lease(&self, host: &str, until: Millis) -> Result<(), StoreError> {
        let host = host.to_string();
        self.writer
            .exec(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO hosts (host_id, lease_until) VALUES (?1, ?2)
                     ON CONFLICT (host_id) DO UPDATE SET lease_until = excluded.lease_until",
                )?
                .execute(params![host, until as i64])?;
                Ok(())
            })
            .await
    }

    async fn expired_hosts(&self, now: Millis) -> Result<Vec<String>, StoreError> {
        self.writer
            .exec(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT host_id FROM hosts WHERE lease_until < ?1 ORDER BY host_id")?;
                Ok(stmt.query_map([now as i64], |r| r.get(0))?.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn forget_host(&self, host: &str, expired_before: Option<Millis>) -> Result<(), StoreError> {
        let host = host.to_string();
        let before = expired_before.map_or(i64::MAX, |t| t as i64);
        self.writer
            .exec(move |conn| {
                conn.prepare_cached("DELETE FROM hosts WHERE host_id = ?1 AND lease_until < ?2")?
                    .execute(params![host, before])?;
                Ok(())
            })
            .await
    }

    async fn take_tokens(&self, queue: &str, bucket: Bucket, want: u32, now: Millis) -> Result<Tokens, StoreError> {
        let queue = queue.to_string();
        self.writer
            .exec_committed(move |conn| {
                let stored: Option<(f64, i64)> = conn
                    .prepare_cached("SELECT tokens, at FROM rate_buckets WHERE task_queue = ?1")?
                    .query_row([&queue], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let (tokens, left) = bucket.draw(stored.map(|(t, at)| (t, at as Millis)), want, now);
                conn.prepare_cached(
                    "INSERT INTO rate_buckets (task_queue, tokens, at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (task_queue) DO UPDATE SET tokens = excluded.tokens, at = excluded.at",
                )?
                .execute(params![queue, left, now as i64])?;
                Ok(tokens)
            })
            .await
    }

    async fn next_dispatch(&self, queue: &str, types: Option<Vec<String>>) -> Result<Option<Millis>, StoreError> {
        let queue = queue.to_string();
        self.writer
            .exec(move |conn| {
                let sql = format!(
                    "SELECT MIN(dispatch_at) FROM executions WHERE task_queue = ?1 AND dispatch_at IS NOT NULL{}",
                    types_clause(&types, 2)
                );
                let mut values: Vec<rusqlite::types::Value> = vec![queue.into()];
                values.extend(types.iter().flatten().map(|t| t.clone().into()));
                let t: Option<i64> =
                    conn.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(values), |r| r.get(0))?;
                Ok(t.map(|t| t as Millis))
            })
            .await
    }

    async fn due(&self, now: Millis, limit: usize) -> Result<Vec<Versioned<Execution>>, StoreError> {
        self.writer
            .exec(move |conn| {
                let mut stmt = conn.prepare_cached(&format!(
                    "{SELECT} WHERE deadline_at IS NOT NULL AND deadline_at <= ?1 ORDER BY deadline_at LIMIT ?2"
                ))?;
                collect(stmt.query_map(params![now as i64, limit as i64], row_exec)?)
            })
            .await
    }

    async fn next_deadline(&self) -> Result<Option<Millis>, StoreError> {
        self.writer
            .exec(|conn| {
                let t: Option<i64> = conn
                    .prepare_cached("SELECT MIN(deadline_at) FROM executions WHERE deadline_at IS NOT NULL")?
                    .query_row([], |r| r.get(0))?;
                Ok(t.map(|t| t as Millis))
            })
            .await
    }

    async fn get(&self, activity_id: &str, run_id: Option<&str>) -> Result<Option<Versioned<Execution>>, StoreError> {
        let activity_id = activity_id.to_string();
        let run_id = run_id.map(str::to_string);
        self.writer.exec(move |conn| read::get(conn, &activity_id, run_id.as_deref())).await
    }

    async fn list(&self, filter: ListFilter) -> Result<(Vec<Execution>, Option<String>), StoreError> {
        let before = filter.position()?;
        self.writer
            .exec(move |conn| {
                let mut sql = String::from(concat!("SELECT ", columns!(), ", seq FROM executions WHERE 1 = 1"));
                if filter.open {
                    sql.push_str(" AND closed_at IS NULL");
                }
                let mut values: Vec<rusqlite::types::Value> = Vec::new();
                let mut add = |clause: &str, v: rusqlite::types::Value| {
                    values.push(v);
                    sql.push_str(&format!(" AND {clause} ?{}", values.len()));
                };
                if let Some(s) = filter.status {
                    let clause = match s {
                        Status::Completed => "status =".to_string(),
                        _ => format!("{INDEXED} AND status ="),
                    };
                    add(&clause, s.as_str().to_string().into());
                }
                if let Some(t) = &filter.activity_type {
                    add("activity_type =", t.clone().into());
                }
                if let Some(q) = &filter.task_queue {
                    add("task_queue =", q.clone().into());
                }
                if let Some(p) = &filter.id_prefix {
                    // Ranged on the id index: ids from the prefix up to the next one.
                    add("activity_id >=", p.clone().into());
                    add(&format!("substr(activity_id, 1, {}) =", p.chars().count()), p.clone().into());
                }
                if let Some(t) = filter.scheduled_after {
                    add("json_extract(options, '$.scheduled_at') >=", (t as i64).into());
                }
                if let Some(t) = filter.scheduled_before {
                    add("json_extract(options, '$.scheduled_at') <", (t as i64).into());
                }
                if let Some(b) = before {
                    add("seq <", b.into());
                }
                let size = filter.page_size.max(1);
                sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", size + 1));
                let mut stmt = conn.prepare(&sql)?;
                let rows =
                    stmt.query_map(rusqlite::params_from_iter(values), |r| Ok((row_exec(r)?, r.get::<_, i64>(11)?)))?;
                let mut page = Vec::new();
                let mut next = None;
                for row in rows {
                    let (raw, seq) = row?;
                    if page.len() == size {
                        next = Some(filter.page_token_after(seq + 1));
                        break;
                    }
                    page.push(decode(raw)?.value);
                }
                Ok((page, next))
            })
            .await
    }

    async fn append_logs(&self, run_id: &str, logs: Vec<LogEntry>) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        let run_id = run_id.to_string();
        let logs = encoded_logs(&logs)?;
        self.writer.exec(move |conn| insert_logs(conn, &run_id, &logs)).await
    }

    async fn describe(
        &self,
        activity_id: &str,
        run_id: Option<&str>,
        logs: LogPage,
    ) -> Result<Option<Described>, StoreError> {
        let activity_id = activity_id.to_string();
        let run_id = run_id.map(str::to_string);
        let after = logs.after()?.unwrap_or(0);
        self.writer
            .exec(move |conn| {
                let Some(exec) = read::get(conn, &activity_id, run_id.as_deref())? else { return Ok(None) };
                let history = read::history(conn, &exec.value.run_id)?;
                let (logs, next_logs) = read::logs(conn, &exec.value.run_id, after, logs.size.max(1))?;
                Ok(Some(Described { exec, history, logs, next_logs }))
            })
            .await
    }

    async fn started_by(&self, prefix: &str) -> Result<Vec<Versioned<Execution>>, StoreError> {
        let pattern = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
        self.writer
            .exec(move |conn| {
                let mut stmt = conn.prepare_cached(&started_by_sql())?;
                collect(stmt.query_map([&pattern], row_exec)?)
            })
            .await
    }

    async fn queue_stats(&self, queue: &str, closed: bool) -> Result<QueueStats, StoreError> {
        let queue = queue.to_string();
        self.writer
            .exec(move |conn| {
                // Open executions are found by the status index: cheap
                // enough to poll. Closed ones are every retained row.
                let sql = if closed {
                    "SELECT activity_type, status, COUNT(*) FROM executions WHERE task_queue = ?1
                     GROUP BY activity_type, status ORDER BY activity_type, status"
                } else {
                    OPEN_COUNTS
                };
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt.query_map([&queue], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })?;
                let mut stats = QueueStats::default();
                for row in rows {
                    let (ty, status, n) = row?;
                    stats.add(ty, &status, n as u64);
                }
                Ok(stats)
            })
            .await
    }

    async fn delete(&self, run_id: &str) -> Result<bool, StoreError> {
        let run_id = run_id.to_string();
        self.writer
            .exec(move |conn| {
                let seq: Option<i64> = conn
                    .prepare_cached("SELECT seq FROM executions WHERE run_id = ?1 AND closed_at IS NOT NULL")?
                    .query_row([&run_id], |r| r.get(0))
                    .optional()?;
                let Some(seq) = seq else { return Ok(false) };
                delete_seqs(conn, &[seq])?;
                Ok(true)
            })
            .await
    }

    async fn delete_closed_before(&self, cutoff: Millis, limit: usize) -> Result<usize, StoreError> {
        self.writer
            .exec(move |conn| {
                let seqs: Vec<i64> = conn
                    .prepare_cached(
                        "SELECT seq FROM executions WHERE closed_at IS NOT NULL AND closed_at < ?1
                         ORDER BY closed_at LIMIT ?2",
                    )?
                    .query_map(params![cutoff as i64, limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                delete_seqs(conn, &seqs)?;
                Ok(seqs.len())
            })
            .await
    }

    async fn types(&self) -> Result<Vec<TypeRecord>, StoreError> {
        self.writer.exec(|conn| types::read(conn, None)).await
    }

    async fn change_type(&self, change: TypeChange) -> Result<TypeRecord, StoreError> {
        self.writer.exec(move |conn| types::change(conn, &change)).await
    }

    async fn secret(&self) -> Result<Vec<u8>, StoreError> {
        self.writer
            .exec(|conn| {
                let existing: Option<Vec<u8>> =
                    conn.query_row("SELECT value FROM meta WHERE key = 'token-secret'", [], |r| r.get(0)).optional()?;
                if let Some(s) = existing {
                    return Ok(s);
                }
                let mut secret = vec![0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
                conn.execute("INSERT INTO meta (key, value) VALUES ('token-secret', ?1)", [&secret])?;
                Ok(secret)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        let values = vec![rusqlite::types::Value::Null; n];
        let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn open_and_by_worker_queries_use_the_status_index_that_leaves_completed_runs_out() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        assert!(plan(&conn, &started_by_sql()).contains("executions_status"), "{}", plan(&conn, &started_by_sql()));
        assert!(plan(&conn, OPEN_COUNTS).contains("executions_status"), "{}", plan(&conn, OPEN_COUNTS));
    }
}
