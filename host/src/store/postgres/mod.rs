//! The shared store: PostgreSQL, for several `sluice serve` hosts at once.
//! Starts, updates and claims go through the write batcher (`batch`);
//! reads and the rarer writes use the connection pool, one transaction
//! each. Committed transitions are announced with NOTIFY (`listen` turns
//! them into hints for the other hosts). Every committed write is durable
//! before it is answered (PostgreSQL's default `synchronous_commit`).

mod batch;
mod listen;
mod schema;
mod types;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::NoTls;

use super::record::{self, Fixed};
use super::rows::{Encoded, Row, encoded_history, encoded_logs, first_history};
use super::{
    Bucket, Committed, CurrentVersions, Described, Hint, ListFilter, LogEntry, LogPage, NewStart, QueueStats,
    StartOutcome, Store, StoreError, Tokens, TypeChange, TypeRecord, Versioned,
};
use crate::activity::{Change, Execution, HistoryEntry, HistoryKind, Millis, Transition};
use crate::payload::Payload;
use batch::Job;

/// Connections the write batcher uses (one commits while the other gathers).
const WRITERS: usize = 2;

/// The columns an execution is read from, in `decode`'s order.
const COLUMNS: &str = "run_id, activity_id, activity_type, task_queue, priority, request_id, input_encoding, input, \
                       options, state, version";
const SELECT: &str = "SELECT run_id, activity_id, activity_type, task_queue, priority, request_id, input_encoding, \
                      input, options, state, version FROM executions";

pub struct PostgresStore {
    /// Reads and the rarer writes.
    pool: Pool,
    writes: mpsc::UnboundedSender<Job>,
    hints: broadcast::Sender<Hint>,
}

impl PostgresStore {
    /// Connects to `url` (migrating the schema if this is the first host),
    /// with a pool of `pool_size` connections for reads, and starts
    /// listening for what other hosts commit. `origin` names this host in
    /// what it announces.
    pub async fn open(url: &str, pool_size: usize, origin: &str) -> Result<PostgresStore, StoreError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Backend(format!("store.url is not a PostgreSQL URL: {e}")))?;
        let pool = make_pool(&config, pool_size)?;
        let mut client =
            pool.get().await.map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        schema::migrate(&mut client).await.map_err(StoreError::Backend)?;
        drop(client);
        let writes = batch::spawn(make_pool(&config, WRITERS)?, origin.to_string(), WRITERS);
        let hints = listen::spawn(config, origin.to_string());
        Ok(PostgresStore { pool, writes, hints })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Backend(format!("no connection to PostgreSQL: {e}")))
    }

    async fn write<R>(&self, job: impl FnOnce(oneshot::Sender<Result<R, StoreError>>) -> Job) -> Result<R, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writes.send(job(tx)).map_err(|_| StoreError::Backend("the store writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Backend("the store writer has stopped".into()))?
    }
}

fn make_pool(config: &tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    let manager =
        Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(30)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Backend(format!("cannot make a PostgreSQL pool: {e}")))
}

/// A PostgreSQL error with its detail (the driver's `Display` says only
/// "db error").
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL: {}", db.message()),
        None => format!("PostgreSQL: {e}"),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Backend(pg_error(&e))
    }
}

fn decode(row: &tokio_postgres::Row) -> Result<Versioned<Execution>, StoreError> {
    let fixed = Fixed {
        run_id: row.try_get(0)?,
        activity_id: row.try_get(1)?,
        activity_type: row.try_get(2)?,
        task_queue: row.try_get(3)?,
        priority: row.try_get::<_, i16>(4)? as u8,
        request_id: row.try_get(5)?,
        input: Payload { encoding: row.try_get(6)?, data: row.try_get(7)? },
    };
    let (options, state): (&str, &str) = (row.try_get(8)?, row.try_get(9)?);
    Ok(Versioned { value: record::assemble(fixed, options, state)?, version: row.try_get::<_, i64>(10)? as u64 })
}

fn decode_all(rows: &[tokio_postgres::Row]) -> Result<Vec<Versioned<Execution>>, StoreError> {
    rows.iter().map(decode).collect()
}

/// Inserts log records after their execution's row (by run id).
async fn insert_logs(
    client: &impl deadpool_postgres::GenericClient,
    logs: &[(&str, &LogEntry, &str)],
) -> Result<(), StoreError> {
    if logs.is_empty() {
        return Ok(());
    }
    let stmt = client
        .prepare_cached(
            "INSERT INTO logs (exec_seq, at, attempt, level, message, fields)
             SELECT e.seq, u.at, u.attempt, u.level, u.message, u.fields
             FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[])
                WITH ORDINALITY AS u(run_id, at, attempt, level, message, fields, ord)
             JOIN executions e ON e.run_id = u.run_id ORDER BY u.ord",
        )
        .await?;
    let runs: Vec<&str> = logs.iter().map(|(r, _, _)| *r).collect();
    let at: Vec<i64> = logs.iter().map(|(_, l, _)| l.at as i64).collect();
    let attempts: Vec<i32> = logs.iter().map(|(_, l, _)| l.attempt as i32).collect();
    let levels: Vec<&str> = logs.iter().map(|(_, l, _)| l.level.as_str()).collect();
    let messages: Vec<&str> = logs.iter().map(|(_, l, _)| l.message.as_str()).collect();
    let fields: Vec<&str> = logs.iter().map(|(_, _, f)| *f).collect();
    client.execute(&stmt, &[&runs, &at, &attempts, &levels, &messages, &fields]).await?;
    Ok(())
}

/// The given run, or the latest run of the id.
async fn get(
    client: &impl deadpool_postgres::GenericClient,
    activity_id: &str,
    run_id: Option<&str>,
) -> Result<Option<Versioned<Execution>>, StoreError> {
    let row = match run_id {
        Some(run) => {
            let stmt = client.prepare_cached(&format!("{SELECT} WHERE run_id = $1 AND activity_id = $2")).await?;
            client.query_opt(&stmt, &[&run, &activity_id]).await?
        }
        None => {
            let stmt =
                client.prepare_cached(&format!("{SELECT} WHERE activity_id = $1 ORDER BY seq DESC LIMIT 1")).await?;
            client.query_opt(&stmt, &[&activity_id]).await?
        }
    };
    row.as_ref().map(decode).transpose()
}

#[async_trait]
impl Store for PostgresStore {
    async fn start_many(&self, starts: Vec<NewStart>) -> Result<Vec<StartOutcome>, StoreError> {
        let jobs = starts
            .into_iter()
            .map(|s| {
                let transition = Transition::new(Change::Scheduled, &s.exec, s.exec.scheduled_at);
                let (history, _) = first_history(&transition, s.started.as_ref())?;
                Ok(batch::StartJob {
                    encoded: Encoded::new(s.exec)?,
                    transition,
                    started: s.started,
                    history,
                    conflict: s.conflict,
                    reuse: s.reuse,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(|tx| Job::Start(jobs, tx)).await
    }

    async fn update(
        &self,
        exec: &Execution,
        version: u64,
        history: Option<&HistoryEntry>,
        logs: &[LogEntry],
    ) -> Result<u64, StoreError> {
        let job = batch::UpdateJob {
            row: Row::new(exec, history.is_some_and(|h| h.kind == HistoryKind::OptionsUpdated))?,
            version,
            entry: encoded_history(history)?,
            logs: encoded_logs(logs)?,
            // Transitions, and the heartbeats an attempt's watchers elsewhere follow.
            hint: Some(batch::hint(exec, history)),
        };
        self.write(|tx| Job::Update(Box::new(job), tx)).await
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
        let job = batch::ClaimJob { queue: queue.into(), types, worker: worker.into(), versions, limit, now };
        self.write(|tx| Job::Claim(job, tx)).await
    }

    async fn next_dispatch(&self, queue: &str, types: Option<Vec<String>>) -> Result<Option<Millis>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT MIN(dispatch_at) FROM executions WHERE task_queue = $1 AND dispatch_at IS NOT NULL
                   AND ($2::text[] IS NULL OR activity_type = ANY($2))",
            )
            .await?;
        let t: Option<i64> = client.query_one(&stmt, &[&queue, &types]).await?.get(0);
        Ok(t.map(|t| t as Millis))
    }

    async fn due(&self, now: Millis, limit: usize) -> Result<Vec<Versioned<Execution>>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "{SELECT} WHERE deadline_at IS NOT NULL AND deadline_at <= $1 ORDER BY deadline_at LIMIT $2"
            ))
            .await?;
        decode_all(&client.query(&stmt, &[&(now as i64), &(limit as i64)]).await?)
    }

    async fn next_deadline(&self) -> Result<Option<Millis>, StoreError> {
        let client = self.client().await?;
        let stmt =
            client.prepare_cached("SELECT MIN(deadline_at) FROM executions WHERE deadline_at IS NOT NULL").await?;
        let t: Option<i64> = client.query_one(&stmt, &[]).await?.get(0);
        Ok(t.map(|t| t as Millis))
    }

    async fn get(&self, activity_id: &str, run_id: Option<&str>) -> Result<Option<Versioned<Execution>>, StoreError> {
        get(&self.client().await?, activity_id, run_id).await
    }

    async fn list(&self, filter: ListFilter) -> Result<(Vec<Execution>, Option<String>), StoreError> {
        let before = filter.position()?;
        let mut sql = format!("SELECT {COLUMNS}, seq FROM executions WHERE true");
        if filter.open {
            sql.push_str(" AND closed_at IS NULL");
        }
        let mut params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = Vec::new();
        let mut add = |clause: &str, v: Box<dyn tokio_postgres::types::ToSql + Sync + Send>| {
            params.push(v);
            sql.push_str(&format!(" AND {clause} ${}", params.len()));
        };
        if let Some(s) = filter.status {
            add("status =", Box::new(s.as_str().to_string()));
        }
        if let Some(t) = &filter.activity_type {
            add("activity_type =", Box::new(t.clone()));
        }
        if let Some(q) = &filter.task_queue {
            add("task_queue =", Box::new(q.clone()));
        }
        if let Some(p) = &filter.id_prefix {
            // Ranged on the id index: ids from the prefix up to the next one.
            add("activity_id >=", Box::new(p.clone()));
            add(&format!("left(activity_id, {}) =", p.chars().count()), Box::new(p.clone()));
        }
        if let Some(t) = filter.scheduled_after {
            add("(options::jsonb->>'scheduled_at')::bigint >=", Box::new(t as i64));
        }
        if let Some(t) = filter.scheduled_before {
            add("(options::jsonb->>'scheduled_at')::bigint <", Box::new(t as i64));
        }
        if let Some(b) = before {
            add("seq <", Box::new(b));
        }
        let size = filter.page_size.max(1);
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", size + 1));
        let client = self.client().await?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            params.iter().map(|p| &**p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        let rows = client.query(&sql, &refs).await?;
        let mut page = Vec::new();
        let mut next = None;
        for row in &rows {
            if page.len() == size {
                let seq: i64 = row.get(11);
                next = Some(filter.page_token_after(seq + 1));
                break;
            }
            page.push(decode(row)?.value);
        }
        Ok((page, next))
    }

    async fn append_logs(&self, run_id: &str, logs: Vec<LogEntry>) -> Result<(), StoreError> {
        let encoded = encoded_logs(&logs)?;
        let rows: Vec<(&str, &LogEntry, &str)> = encoded.iter().map(|(l, f)| (run_id, l, f.as_str())).collect();
        insert_logs(&self.client().await?, &rows).await
    }

    async fn describe(
        &self,
        activity_id: &str,
        run_id: Option<&str>,
        logs: LogPage,
    ) -> Result<Option<Described>, StoreError> {
        let after = logs.after()?.unwrap_or(0);
        let mut client = self.client().await?;
        // One snapshot: the execution, its history and its logs agree.
        let tx =
            client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).start().await?;
        let Some(exec) = get(&tx, activity_id, run_id).await? else { return Ok(None) };
        let history: String =
            tx.query_one("SELECT history::text FROM executions WHERE run_id = $1", &[&exec.value.run_id]).await?.get(0);
        let history: Vec<HistoryEntry> = serde_json::from_str(&history)?;
        let size = logs.size.max(1);
        let rows = tx
            .query(
                "SELECT l.at, l.attempt, l.level, l.message, l.fields, l.id FROM logs l
                 WHERE l.exec_seq = (SELECT seq FROM executions WHERE run_id = $1) AND l.id > $2
                 ORDER BY l.id LIMIT $3",
                &[&exec.value.run_id, &after, &(size as i64 + 1)],
            )
            .await?;
        let mut entries = Vec::new();
        let mut last = None;
        let mut next_logs = None;
        for r in &rows {
            if entries.len() == size {
                next_logs = last.map(LogPage::token_after);
                break;
            }
            last = Some(r.get::<_, i64>(5));
            let fields: &str = r.get(4);
            entries.push(LogEntry {
                at: r.get::<_, i64>(0) as Millis,
                attempt: r.get::<_, i32>(1) as u32,
                level: r.get(2),
                message: r.get(3),
                fields: serde_json::from_str(fields)?,
            });
        }
        tx.commit().await?;
        Ok(Some(Described { exec, history, logs: entries, next_logs }))
    }

    async fn started_by(&self, prefix: &str) -> Result<Vec<Versioned<Execution>>, StoreError> {
        let pattern = format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let client = self.client().await?;
        let stmt = client.prepare_cached(&format!("{SELECT} WHERE status = 'started' AND worker LIKE $1")).await?;
        decode_all(&client.query(&stmt, &[&pattern]).await?)
    }

    async fn queue_stats(&self, queue: &str, closed: bool) -> Result<QueueStats, StoreError> {
        let client = self.client().await?;
        let sql = if closed {
            "SELECT activity_type, status, COUNT(*) FROM executions WHERE task_queue = $1
             GROUP BY activity_type, status ORDER BY activity_type, status"
        } else {
            "SELECT activity_type, status, COUNT(*) FROM executions
             WHERE status IN ('scheduled', 'started') AND task_queue = $1
             GROUP BY activity_type, status ORDER BY activity_type, status"
        };
        let stmt = client.prepare_cached(sql).await?;
        let mut stats = QueueStats::default();
        for row in client.query(&stmt, &[&queue]).await? {
            stats.add(row.get(0), row.get(1), row.get::<_, i64>(2) as u64);
        }
        Ok(stats)
    }

    async fn delete(&self, run_id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let seq: Option<i64> = tx
            .query_opt("SELECT seq FROM executions WHERE run_id = $1 AND closed_at IS NOT NULL FOR UPDATE", &[&run_id])
            .await?
            .map(|r| r.get(0));
        let Some(seq) = seq else { return Ok(false) };
        delete_seqs(&tx, &[seq]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_closed_before(&self, cutoff: Millis, limit: usize) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let seqs: Vec<i64> = tx
            .query(
                "SELECT seq FROM executions WHERE closed_at IS NOT NULL AND closed_at < $1
                 ORDER BY closed_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&(cutoff as i64), &(limit as i64)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        delete_seqs(&tx, &seqs).await?;
        tx.commit().await?;
        Ok(seqs.len())
    }

    async fn types(&self) -> Result<Vec<TypeRecord>, StoreError> {
        types::read(&self.client().await?, None).await
    }

    async fn change_type(&self, change: TypeChange) -> Result<TypeRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let record = types::change(&tx, &change).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn secret(&self) -> Result<Vec<u8>, StoreError> {
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| StoreError::Backend(format!("no randomness: {e}")))?;
        let client = self.client().await?;
        // The first host's secret wins: every host signs and checks tokens alike.
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ('token-secret', $1) ON CONFLICT (key) DO NOTHING",
                &[&secret],
            )
            .await?;
        Ok(client.query_one("SELECT value FROM meta WHERE key = 'token-secret'", &[]).await?.get(0))
    }

    async fn renew_lease(&self, host: &str, until: Millis) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO hosts (host_id, lease_until) VALUES ($1, $2)
                 ON CONFLICT (host_id) DO UPDATE SET lease_until = excluded.lease_until",
                &[&host, &(until as i64)],
            )
            .await?;
        Ok(())
    }

    async fn expired_hosts(&self, now: Millis) -> Result<Vec<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT host_id FROM hosts WHERE lease_until < $1 ORDER BY host_id", &[&(now as i64)])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn forget_host(&self, host: &str, expired_before: Option<Millis>) -> Result<(), StoreError> {
        let before = expired_before.map_or(i64::MAX, |t| t as i64);
        self.client()
            .await?
            .execute("DELETE FROM hosts WHERE host_id = $1 AND lease_until < $2", &[&host, &before])
            .await?;
        Ok(())
    }

    async fn take_tokens(&self, queue: &str, bucket: Bucket, want: u32, now: Millis) -> Result<Tokens, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO rate_buckets (task_queue, tokens, at) VALUES ($1, 1, $2) ON CONFLICT (task_queue) DO NOTHING",
            &[&queue, &(now as i64)],
        )
        .await?;
        let row =
            tx.query_one("SELECT tokens, at FROM rate_buckets WHERE task_queue = $1 FOR UPDATE", &[&queue]).await?;
        let stored: (f64, i64) = (row.get(0), row.get(1));
        // Hosts' clocks differ a little: a draw never moves the bucket back.
        let now = now.max(stored.1 as Millis);
        let (tokens, left) = bucket.draw(Some((stored.0, stored.1 as Millis)), want, now);
        tx.execute(
            "UPDATE rate_buckets SET tokens = $2, at = $3 WHERE task_queue = $1",
            &[&queue, &left, &(now as i64)],
        )
        .await?;
        tx.commit().await?;
        Ok(tokens)
    }

    async fn put_component(&self, hash: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO components (hash, bytes) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                &[&hash, &bytes],
            )
            .await?;
        Ok(())
    }

    async fn component(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self.client().await?.query_opt("SELECT bytes FROM components WHERE hash = $1", &[&hash]).await?;
        Ok(row.map(|r| r.get(0)))
    }

    fn shared(&self) -> bool {
        true
    }

    fn hints(&self) -> Option<broadcast::Receiver<Hint>> {
        Some(self.hints.subscribe())
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// Deletes runs (their history is in the row) and their logs.
async fn delete_seqs(tx: &deadpool_postgres::Transaction<'_>, seqs: &[i64]) -> Result<(), StoreError> {
    if seqs.is_empty() {
        return Ok(());
    }
    tx.execute("DELETE FROM logs WHERE exec_seq = ANY($1)", &[&seqs]).await?;
    tx.execute("DELETE FROM executions WHERE seq = ANY($1)", &[&seqs]).await?;
    Ok(())
}
