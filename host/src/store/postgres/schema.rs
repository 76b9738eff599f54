//! The PostgreSQL schema and its versioned migrations, applied by the first
//! host to start (under an advisory lock, so hosts starting together wait
//! for each other).

use tokio_postgres::Client;

/// Migration N (1-based) brings the schema from version N-1 to N. Append
/// only; never edit a released migration.
const MIGRATIONS: &[&str] = &[
    // 1: the SQLite schema's equivalent (history as a JSON array in the
    // row), plus the components' bytes, which every host must be able to
    // fetch.
    "CREATE TABLE executions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        activity_id TEXT NOT NULL,
        activity_type TEXT NOT NULL,
        task_queue TEXT NOT NULL,
        status TEXT NOT NULL,
        priority SMALLINT NOT NULL,
        request_id TEXT,
        dispatch_at BIGINT,
        deadline_at BIGINT,
        worker TEXT,
        version BIGINT NOT NULL,
        state TEXT NOT NULL,
        history JSONB NOT NULL,
        options TEXT NOT NULL,
        input_encoding TEXT NOT NULL,
        input BYTEA NOT NULL,
        closed_at BIGINT,
        fairness_key TEXT NOT NULL
    );
    CREATE INDEX executions_by_id ON executions (activity_id, seq);
    CREATE INDEX executions_dispatch ON executions (task_queue, fairness_key, priority, dispatch_at, seq)
        WHERE dispatch_at IS NOT NULL;
    CREATE INDEX executions_deadline ON executions (deadline_at) WHERE deadline_at IS NOT NULL;
    CREATE INDEX executions_status ON executions (status, seq);
    CREATE INDEX executions_closed ON executions (closed_at) WHERE closed_at IS NOT NULL;
    CREATE INDEX executions_started ON executions (worker text_pattern_ops) WHERE status = 'started';
    CREATE TABLE logs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        exec_seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        attempt INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        fields TEXT NOT NULL
    );
    CREATE INDEX logs_by_exec ON logs (exec_seq, id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
    CREATE TABLE activity_types (
        name TEXT PRIMARY KEY,
        current_version TEXT,
        settings TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE type_versions (
        activity_type TEXT NOT NULL,
        label TEXT NOT NULL,
        hash TEXT NOT NULL,
        size BIGINT NOT NULL,
        deployed_at BIGINT NOT NULL,
        deployed_by TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (activity_type, label)
    );
    CREATE TABLE components (hash TEXT PRIMARY KEY, bytes BYTEA NOT NULL);
    CREATE TABLE fairness (
        task_queue TEXT NOT NULL,
        fairness_key TEXT NOT NULL,
        served DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (task_queue, fairness_key)
    );
    CREATE TABLE hosts (host_id TEXT PRIMARY KEY, lease_until BIGINT NOT NULL);
    CREATE TABLE rate_buckets (task_queue TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, at BIGINT NOT NULL);",
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// An arbitrary constant: the advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x51_1CE;

/// Brings the database up to `VERSION`; refuses a newer database.
pub async fn migrate(client: &mut Client) -> Result<(), String> {
    let e = |e: tokio_postgres::Error| e.to_string();
    let tx = client.transaction().await.map_err(e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(e)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS sluice_schema (version BIGINT NOT NULL)").await.map_err(e)?;
    let current: i64 = tx.query_opt("SELECT version FROM sluice_schema", &[]).await.map_err(e)?.map_or(0, |r| r.get(0));
    if current > VERSION {
        return Err(format!(
            "the store has schema version {current}, newer than this sluice understands ({VERSION}); upgrade sluice"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await.map_err(|err| format!("migration {}: {err}", i + 1))?;
    }
    if current < VERSION {
        tx.execute("DELETE FROM sluice_schema", &[]).await.map_err(e)?;
        tx.execute("INSERT INTO sluice_schema (version) VALUES ($1)", &[&VERSION]).await.map_err(e)?;
    }
    tx.commit().await.map_err(e)
}
