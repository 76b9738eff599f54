//! The SQLite schema and its versioned migrations (`PRAGMA user_version`).

use rusqlite::Connection;

use crate::store::record;

/// Rewrites rows to the layout a migration's SQL introduced.
type DataStep = fn(&Connection) -> Result<(), String>;

/// One schema change: SQL, then (optionally) a step that rewrites the data.
struct Migration {
    sql: &'static str,
    data: Option<DataStep>,
}

/// Migration N (1-based) brings the schema from version N-1 to N. Append
/// only; never edit a released migration.
const MIGRATIONS: &[Migration] = &[
    Migration {
    sql:
    // 1: executions (with their history, a JSON array in the row: no extra
    // B-tree writes per transition), logs, meta. Logs hang off the
    // execution's seq (not its random run id) so their inserts land at the
    // right edge of their index.
    "CREATE TABLE executions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        activity_id TEXT NOT NULL,
        activity_type TEXT NOT NULL,
        task_queue TEXT NOT NULL,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        request_id TEXT,
        dispatch_at INTEGER,
        deadline_at INTEGER,
        worker TEXT,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        history TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX executions_by_id ON executions (activity_id, seq);
    CREATE INDEX executions_dispatch ON executions (task_queue, priority, dispatch_at, seq)
        WHERE dispatch_at IS NOT NULL;
    CREATE INDEX executions_deadline ON executions (deadline_at) WHERE deadline_at IS NOT NULL;
    CREATE INDEX executions_status ON executions (status, seq);
    CREATE TABLE logs (
        exec_seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        fields TEXT NOT NULL
    );
    CREATE INDEX logs_by_exec ON logs (exec_seq);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
    data: None,
},
    Migration {
        // 2: what is fixed at start is written once, in its own columns (the
        // input as bytes, the options as JSON); `state` keeps what transitions
        // change. Existing rows are split.
        sql: "ALTER TABLE executions ADD COLUMN options TEXT;
    ALTER TABLE executions ADD COLUMN input_encoding TEXT;
    ALTER TABLE executions ADD COLUMN input BLOB;",
        data: Some(split_fixed_from_state),
    },
    Migration {
        // 3: when a run closed, as a column, so retention finds old runs by an
        // index; activity types and their deployed component versions.
        sql: "ALTER TABLE executions ADD COLUMN closed_at INTEGER;
    UPDATE executions SET closed_at = json_extract(state, '$.closed_at');
    CREATE INDEX executions_closed ON executions (closed_at) WHERE closed_at IS NOT NULL;
    CREATE TABLE activity_types (
        name TEXT PRIMARY KEY,
        current_version TEXT,
        settings TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE type_versions (
        activity_type TEXT NOT NULL,
        label TEXT NOT NULL,
        hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        deployed_at INTEGER NOT NULL,
        deployed_by TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (activity_type, label)
    );",
        data: None,
    },
    Migration {
        // 4: fairness keys (claims read each key's head by the dispatch
        // index) and each key's standing; host leases; global token buckets.
        sql: "ALTER TABLE executions ADD COLUMN fairness_key TEXT NOT NULL DEFAULT '';
    DROP INDEX executions_dispatch;
    CREATE INDEX executions_dispatch ON executions (task_queue, fairness_key, priority, dispatch_at, seq)
        WHERE dispatch_at IS NOT NULL;
    CREATE TABLE fairness (
        task_queue TEXT NOT NULL,
        fairness_key TEXT NOT NULL,
        served REAL NOT NULL,
        PRIMARY KEY (task_queue, fairness_key)
    );
    CREATE TABLE hosts (host_id TEXT PRIMARY KEY, lease_until INTEGER NOT NULL);
    CREATE TABLE rate_buckets (task_queue TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL);",
        data: None,
    },
    Migration {
        // 5: cheaper writes per transition. The history's length as a
        // column, so an entry is appended as text without parsing the array
        // (NULL in older rows: counted once, at their next append). Completed
        // runs, most rows, leave the status index: listing them scans by
        // seq, where nearly every row matches anyway.
        sql: "ALTER TABLE executions ADD COLUMN history_len INTEGER;
    DROP INDEX executions_status;
    CREATE INDEX executions_status ON executions (status, seq) WHERE status <> 'completed';",
        data: None,
    },
];

/// Migration 2's data step: rows whose `state` holds the whole execution.
fn split_fixed_from_state(conn: &Connection) -> Result<(), String> {
    let rows: Vec<(i64, String)> = {
        let mut stmt =
            conn.prepare("SELECT seq, state FROM executions WHERE options IS NULL").map_err(|e| e.to_string())?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())?
    };
    // Dispatch times and deadlines are recomputed too: earlier builds could
    // store overflowed (negative) ones.
    let mut update = conn
        .prepare(
            "UPDATE executions SET options = ?1, input_encoding = ?2, input = ?3, state = ?4, dispatch_at = ?5,
                deadline_at = ?6 WHERE seq = ?7",
        )
        .map_err(|e| e.to_string())?;
    for (seq, state) in rows {
        let e: crate::activity::Execution =
            serde_json::from_str(&state).map_err(|e| format!("execution {seq}: {e}"))?;
        let split = (record::options_json(&e), record::state_json(&e));
        let (Ok(options), Ok(state)) = split else { return Err(format!("execution {seq} cannot be encoded")) };
        let (dispatch_at, deadline_at) = (e.dispatchable_at().map(|t| t as i64), e.next_deadline().map(|t| t as i64));
        update
            .execute(rusqlite::params![options, e.input.encoding, e.input.data, state, dispatch_at, deadline_at, seq])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to `VERSION`; refuses a newer database.
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| e.to_string())?;
    if current > VERSION {
        return Err(format!(
            "the store has schema version {current}, newer than this sluice understands ({VERSION}); upgrade sluice"
        ));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(m.sql).map_err(|e| format!("migration {}: {e}", i + 1))?;
        if let Some(data) = m.data {
            data(&tx).map_err(|e| format!("migration {}: {e}", i + 1))?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
    verify(conn)
}

/// Checks that every table has the columns this build's migrations create,
/// so a store written by a build whose migration differed is refused at
/// open with the reason, not on first use.
fn verify(conn: &Connection) -> Result<(), String> {
    let expected = Connection::open_in_memory().map_err(|e| e.to_string())?;
    for m in MIGRATIONS {
        expected.execute_batch(m.sql).map_err(|e| e.to_string())?;
    }
    let tables = names(&expected, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?;
    for table in tables {
        let columns = format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid");
        let (want, have) = (names(&expected, &columns)?, names(conn, &columns)?);
        if want != have {
            return Err(format!(
                "table {table} has columns [{}], but schema version {VERSION} has [{}]; \
                 the store was written by an incompatible build of sluice: move it aside",
                have.join(", "),
                want.join(", ")
            ));
        }
    }
    Ok(())
}

fn names(conn: &Connection, sql: &str) -> Result<Vec<String>, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::activity::{Execution, NewExecution, Status, Timeouts};
    use crate::payload::Payload;

    /// Run "r" of activity "a", scheduled at 1 s with a 9 s start-to-close.
    fn execution(input: Payload, request_id: Option<&str>) -> Execution {
        let new = NewExecution {
            activity_id: "a".into(),
            run_id: "r".into(),
            activity_type: "t".into(),
            task_queue: "q".into(),
            input,
            priority: 2,
            request_id: request_id.map(Into::into),
            timeouts: Timeouts { start_to_close: Some(Duration::from_secs(9)), ..Timeouts::default() },
            retry: Default::default(),
            cancel_grace: Duration::from_secs(3),
            pinned_version: None,
            trace: None,
            fairness: None,
        };
        Execution::new(new, 1_000).unwrap()
    }

    #[test]
    fn a_version_1_store_is_migrated_with_every_execution_intact() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].sql).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let mut e = execution(Payload::json(&"x".repeat(1000)), Some("req"));
        e.start("w", None, 2_000).unwrap();
        e.heartbeat(1, Some(Payload::json(&7)), 2_500).unwrap();
        // Version 1 kept the whole execution, input included, in `state`.
        conn.execute(
            "INSERT INTO executions (run_id, activity_id, activity_type, task_queue, status, priority, request_id,
                version, state, deadline_at)
             VALUES ('r', 'a', 't', 'q', 'started', 2, 'req', 4, ?1, -1)",
            [serde_json::to_string(&e).unwrap()],
        )
        .unwrap();

        migrate(&mut conn).unwrap();
        let raw = conn.query_row(&format!("{} WHERE run_id = 'r'", super::super::SELECT), [], super::super::row_exec);
        let read = super::super::decode(raw.unwrap()).unwrap();
        assert_eq!((read.value.clone(), read.version), (e, 4));
        assert_eq!(read.value.status, Status::Started);
        let deadline: i64 = conn.query_row("SELECT deadline_at FROM executions", [], |r| r.get(0)).unwrap();
        assert_eq!(deadline, 11_000, "an overflowed deadline is recomputed: started at 2 s + 9 s");
        let state: String = conn.query_row("SELECT state FROM executions", [], |r| r.get(0)).unwrap();
        assert!(!state.contains("input") && state.len() < 200, "the input is no longer in the state: {state}");
    }

    #[test]
    fn a_history_written_before_version_5_is_counted_at_its_next_append() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let e = execution(Payload::json(&1), None);
        let encoded = crate::store::rows::Encoded::new(e.clone()).unwrap();
        super::super::insert(&conn, &encoded, r#"[{"n":1}]"#, 1).unwrap();
        // As an older build left it: entries, no count.
        conn.execute(r#"UPDATE executions SET history = '[{"n":1},{"n":2}]', history_len = NULL"#, []).unwrap();
        let row = crate::store::rows::Row::new(&e, false).unwrap();
        let v = super::super::write(&conn, &row, 1, Some(r#"{"n":3}"#)).unwrap();
        super::super::write(&conn, &row, v, None).unwrap();
        let (history, len): (String, i64) =
            conn.query_row("SELECT history, history_len FROM executions", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((history.as_str(), len), (r#"[{"n":1},{"n":2},{"n":3}]"#, 3));
    }
}
