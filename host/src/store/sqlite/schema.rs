//! The SQLite schema and its versioned migrations (`PRAGMA user_version`).

use rusqlite::Connection;

/// Migration N (1-based) brings the schema from version N-1 to N. Append
/// only; never edit a released migration.
const MIGRATIONS: &[&str] = &[
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
];

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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql).map_err(|e| format!("migration {}: {e}", i + 1))?;
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
    for sql in MIGRATIONS {
        expected.execute_batch(sql).map_err(|e| e.to_string())?;
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
