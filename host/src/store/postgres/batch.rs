//! The write batcher: starts, versioned updates and claims that arrive
//! together share one transaction, written set-wise (one `INSERT … SELECT
//! FROM unnest`, one `UPDATE … FROM unnest`), so a host pays one commit
//! (and one WAL flush) per batch, not per operation. Two writer tasks
//! alternate: one commits while the other gathers the next batch.
//!
//! A batch is plain data, so it can run again: when PostgreSQL aborts it
//! for a deadlock or a serialization failure (two hosts' batches touching
//! the same rows in different orders), it is retried whole. Expected
//! refusals (a version conflict, a rejected start) are per operation and
//! write nothing; any other error fails the whole batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::error::SqlState;

use super::{COLUMNS, SELECT, decode};
use crate::activity::{Admission, ConflictPolicy, Execution, HistoryEntry, Millis, ReusePolicy, Transition, admit};
use crate::store::fair::{self, Lane};
use crate::store::rows::{Encoded, MAX_HISTORY, Row, encoded_history};
use crate::store::{Committed, CurrentVersions, LogEntry, StartOutcome, StoreError, Versioned};

/// Most operations written together.
const MAX_BATCH: usize = 1024;
/// Tries of a batch PostgreSQL aborted for a deadlock or serialization failure.
const TRIES: usize = 8;
/// Largest NOTIFY payload sent (PostgreSQL's limit is 8000 bytes).
const MAX_NOTIFY: usize = 7500;

/// One start, encoded.
pub struct StartJob {
    pub encoded: Encoded,
    pub transition: Transition,
    /// An eager start's `started` transition, already applied.
    pub started: Option<Transition>,
    /// The first entries, a JSON array.
    pub history: String,
    pub conflict: ConflictPolicy,
    pub reuse: ReusePolicy,
}

/// One versioned update, encoded.
pub struct UpdateJob {
    pub row: Row,
    pub version: u64,
    pub entry: Option<String>,
    pub logs: Vec<(LogEntry, String)>,
    /// What other hosts are told.
    pub hint: Option<String>,
}

pub struct ClaimJob {
    pub queue: String,
    pub types: Option<Vec<String>>,
    pub worker: String,
    pub versions: CurrentVersions,
    pub limit: usize,
    pub now: Millis,
}

pub enum Job {
    Start(Vec<StartJob>, oneshot::Sender<Result<Vec<StartOutcome>, StoreError>>),
    Update(Box<UpdateJob>, oneshot::Sender<Result<u64, StoreError>>),
    Claim(ClaimJob, oneshot::Sender<Result<Vec<Committed>, StoreError>>),
}

enum Reply {
    Start(Vec<StartOutcome>),
    Update(Result<u64, StoreError>),
    Claim(Vec<Committed>),
}

/// Why a batch did not commit.
enum Failed {
    /// PostgreSQL aborted it for a conflict with another transaction.
    Retry(String),
    Fatal(String),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE => {
                Failed::Retry(e.to_string())
            }
            _ => Failed::Fatal(super::pg_error(&e)),
        }
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Fatal(e.to_string())
    }
}

/// Starts the writer tasks; operations are sent on the returned channel.
pub fn spawn(pool: Pool, origin: String, writers: usize) -> mpsc::UnboundedSender<Job> {
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..writers {
        tokio::spawn(writer(pool.clone(), rx.clone(), origin.clone()));
    }
    tx
}

async fn writer(pool: Pool, jobs: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>, origin: String) {
    loop {
        let batch = {
            let mut jobs = jobs.lock().await;
            let Some(first) = jobs.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let started = std::time::Instant::now();
        let result = commit(&pool, &batch, &origin).await;
        crate::metrics::metrics().store_commit.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(replies) => {
                for (job, reply) in batch.into_iter().zip(replies) {
                    send(job, Ok(reply));
                }
            }
            Err(e) => {
                for job in batch {
                    send(job, Err(StoreError::Backend(format!("the batch was not committed: {e}"))));
                }
            }
        }
    }
}

fn send(job: Job, reply: Result<Reply, StoreError>) {
    match (job, reply) {
        (Job::Start(_, tx), Ok(Reply::Start(o))) => drop(tx.send(Ok(o))),
        (Job::Update(_, tx), Ok(Reply::Update(r))) => drop(tx.send(r)),
        (Job::Claim(_, tx), Ok(Reply::Claim(c))) => drop(tx.send(Ok(c))),
        (Job::Start(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (Job::Update(_, tx), Err(e)) => drop(tx.send(Err(e))),
        (Job::Claim(_, tx), Err(e)) => drop(tx.send(Err(e))),
        _ => unreachable!("a reply of another kind"),
    }
}

/// Runs the batch in one transaction, again while PostgreSQL aborts it
/// for a conflict with another host's transaction.
async fn commit(pool: &Pool, batch: &[Job], origin: &str) -> Result<Vec<Reply>, String> {
    let mut client = pool.get().await.map_err(|e| format!("no connection to PostgreSQL: {e}"))?;
    let mut last = String::new();
    for _ in 0..TRIES {
        let tx = client.transaction().await.map_err(|e| super::pg_error(&e))?;
        match run(&tx, batch, origin).await {
            Ok(replies) => match tx.commit().await {
                Ok(()) => return Ok(replies),
                Err(e) => match Failed::from(e) {
                    Failed::Retry(e) => last = e,
                    Failed::Fatal(e) => return Err(e),
                },
            },
            Err(Failed::Retry(e)) => last = e,
            Err(Failed::Fatal(e)) => return Err(e),
        }
    }
    Err(format!("aborted {TRIES} times by conflicts with other hosts: {last}"))
}

async fn run(tx: &Transaction<'_>, batch: &[Job], origin: &str) -> Result<Vec<Reply>, Failed> {
    let mut hints: Vec<String> = Vec::new();
    let starts: Vec<&StartJob> = batch
        .iter()
        .filter_map(|j| match j {
            Job::Start(s, _) => Some(s.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut outcomes = start_all(tx, &starts, &mut hints).await?.into_iter();
    let updates: Vec<&UpdateJob> = batch
        .iter()
        .filter_map(|j| match j {
            Job::Update(u, _) => Some(&**u),
            _ => None,
        })
        .collect();
    let mut updated = update_all(tx, &updates, &mut hints).await?.into_iter();
    let mut replies = Vec::with_capacity(batch.len());
    for job in batch {
        replies.push(match job {
            Job::Start(s, _) => Reply::Start(outcomes.by_ref().take(s.len()).collect()),
            Job::Update(..) => Reply::Update(updated.next().expect("one result per update")),
            // Claims come last: they see this batch's starts and updates.
            Job::Claim(c, _) => Reply::Claim(claim(tx, c, &mut hints).await?),
        });
    }
    notify(tx, origin, &hints).await?;
    Ok(replies)
}

/// Admits and inserts the batch's starts, in order: each id is locked
/// (sorted, so hosts never deadlock on them) and its latest run read once.
async fn start_all(
    tx: &Transaction<'_>,
    starts: &[&StartJob],
    hints: &mut Vec<String>,
) -> Result<Vec<StartOutcome>, Failed> {
    if starts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = starts.iter().map(|s| s.encoded.exec.activity_id.as_str()).collect();
    tx.execute(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(id, 0) AS k FROM unnest($1::text[]) id
         ORDER BY k) AS sorted",
        &[&ids],
    )
    .await?;
    let sql = format!(
        "SELECT DISTINCT ON (activity_id) {COLUMNS} FROM executions WHERE activity_id = ANY($1)
         ORDER BY activity_id, seq DESC"
    );
    let stmt = tx.prepare_cached(&sql).await?;
    let mut latest: HashMap<String, Versioned<Execution>> = HashMap::new();
    for row in tx.query(&stmt, &[&ids]).await? {
        let v = decode(&row)?;
        latest.insert(v.value.activity_id.clone(), v);
    }
    let mut outcomes = Vec::with_capacity(starts.len());
    let mut new: Vec<&StartJob> = Vec::new();
    for s in starts {
        let exec = &s.encoded.exec;
        let before = latest.get(&exec.activity_id);
        outcomes.push(match admit(before.map(|v| &v.value), exec.request_id.as_deref(), s.conflict, s.reuse) {
            Admission::New => {
                latest.insert(exec.activity_id.clone(), Versioned { value: exec.clone(), version: 1 });
                new.push(s);
                for t in std::iter::once(&s.transition).chain(&s.started) {
                    hints.extend(t.history.as_ref().map(|h| hint(exec, Some(h))));
                }
                StartOutcome::Created(Committed { value: exec.clone(), version: 1, transition: s.transition.clone() })
            }
            Admission::Existing { .. } => StartOutcome::Existing(before.expect("admitted an existing run").clone()),
            Admission::Rejected(reason) => StartOutcome::Rejected(reason),
        });
    }
    insert(tx, &new).await?;
    Ok(outcomes)
}

async fn insert(tx: &Transaction<'_>, new: &[&StartJob]) -> Result<(), Failed> {
    if new.is_empty() {
        return Ok(());
    }
    let e = |f: fn(&Execution) -> Option<i64>| new.iter().map(|s| f(&s.encoded.exec)).collect::<Vec<_>>();
    let text = |f: fn(&StartJob) -> &str| new.iter().map(|s| f(s)).collect::<Vec<&str>>();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO executions (run_id, activity_id, activity_type, task_queue, status, priority, request_id,
                dispatch_at, deadline_at, worker, version, state, history, options, input_encoding, input, closed_at,
                fairness_key)
             SELECT u.run_id, u.activity_id, u.activity_type, u.task_queue, u.status, u.priority, u.request_id,
                u.dispatch_at, u.deadline_at, u.worker, 1, u.state, u.entry::jsonb, u.options,
                u.input_encoding, u.input, u.closed_at, u.fairness_key
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::text[],
                $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                $15::bytea[], $16::bigint[], $17::text[])
                WITH ORDINALITY AS u(run_id, activity_id, activity_type, task_queue, status, priority, request_id,
                dispatch_at, deadline_at, worker, state, entry, options, input_encoding, input, closed_at,
                fairness_key, ord)
             ORDER BY u.ord",
        )
        .await?;
    let priorities: Vec<i16> = new.iter().map(|s| s.encoded.exec.priority as i16).collect();
    let request_ids: Vec<Option<&str>> = new.iter().map(|s| s.encoded.exec.request_id.as_deref()).collect();
    let workers: Vec<Option<&str>> = new.iter().map(|s| s.encoded.exec.worker.as_deref()).collect();
    let inputs: Vec<&[u8]> = new.iter().map(|s| s.encoded.exec.input.data.as_slice()).collect();
    let keys: Vec<&str> = new.iter().map(|s| s.encoded.exec.fairness.as_ref().map_or("", |f| f.key.as_str())).collect();
    tx.execute(
        &stmt,
        &[
            &text(|s| &s.encoded.exec.run_id),
            &text(|s| &s.encoded.exec.activity_id),
            &text(|s| &s.encoded.exec.activity_type),
            &text(|s| &s.encoded.exec.task_queue),
            &text(|s| s.encoded.exec.status.as_str()),
            &priorities,
            &request_ids,
            &e(|x| x.dispatchable_at().map(|t| t as i64)),
            &e(|x| x.next_deadline().map(|t| t as i64)),
            &workers,
            &text(|s| &s.encoded.state),
            &text(|s| &s.history),
            &text(|s| &s.encoded.options),
            &text(|s| &s.encoded.exec.input.encoding),
            &inputs,
            &e(|x| x.closed_at.map(|t| t as i64)),
            &keys,
        ],
    )
    .await?;
    Ok(())
}

/// Applies the batch's versioned updates in one statement; an update whose
/// version is stale (or that a batch-mate already changed) is a conflict
/// and writes nothing. Logs go in with their update.
async fn update_all(
    tx: &Transaction<'_>,
    updates: &[&UpdateJob],
    hints: &mut Vec<String>,
) -> Result<Vec<Result<u64, StoreError>>, Failed> {
    let mut seen = HashSet::new();
    // The first update of a run in the batch is tried; any later one read
    // the same version, so it conflicts whatever the first does.
    let first: Vec<bool> = updates.iter().map(|u| seen.insert(u.row.run_id.as_str())).collect();
    let tried: Vec<(&Row, u64, Option<&str>)> =
        updates.iter().zip(&first).filter(|(_, f)| **f).map(|(u, _)| (&u.row, u.version, u.entry.as_deref())).collect();
    let done = write_rows(tx, &tried).await?;
    let mut logs: Vec<(&str, &LogEntry, &str)> = Vec::new();
    let results = updates
        .iter()
        .zip(first)
        .map(|(u, first)| {
            if first && done.contains(u.row.run_id.as_str()) {
                logs.extend(u.logs.iter().map(|(l, fields)| (u.row.run_id.as_str(), l, fields.as_str())));
                hints.extend(u.hint.clone());
                Ok(u.version + 1)
            } else {
                Err(StoreError::Conflict(u.row.run_id.clone()))
            }
        })
        .collect();
    super::insert_logs(tx, &logs).await.map_err(Failed::from)?;
    Ok(results)
}

/// Rewrites rows still at their version; returns the run ids written.
async fn write_rows(tx: &Transaction<'_>, rows: &[(&Row, u64, Option<&str>)]) -> Result<HashSet<String>, Failed> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE executions e SET status = u.status, dispatch_at = u.dispatch_at, deadline_at = u.deadline_at,
                worker = u.worker, version = e.version + 1, state = u.state,
                history = CASE WHEN u.entry IS NULL THEN e.history ELSE
                    (CASE WHEN jsonb_array_length(e.history) >= $13 THEN e.history - 1 ELSE e.history END)
                    || jsonb_build_array(u.entry::jsonb) END,
                task_queue = u.task_queue, priority = u.priority, options = COALESCE(u.options, e.options),
                closed_at = u.closed_at
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                $8::text[], $9::text[], $10::smallint[], $11::text[], $12::bigint[])
                AS u(run_id, version, status, dispatch_at, deadline_at, worker, state, entry, task_queue, priority,
                options, closed_at)
             WHERE e.run_id = u.run_id AND e.version = u.version
             RETURNING e.run_id",
        )
        .await?;
    let run_ids: Vec<&str> = rows.iter().map(|(r, _, _)| r.run_id.as_str()).collect();
    let versions: Vec<i64> = rows.iter().map(|(_, v, _)| *v as i64).collect();
    let statuses: Vec<&str> = rows.iter().map(|(r, _, _)| r.status).collect();
    let dispatch: Vec<Option<i64>> = rows.iter().map(|(r, _, _)| r.dispatch_at).collect();
    let deadlines: Vec<Option<i64>> = rows.iter().map(|(r, _, _)| r.deadline_at).collect();
    let workers: Vec<Option<&str>> = rows.iter().map(|(r, _, _)| r.worker.as_deref()).collect();
    let states: Vec<&str> = rows.iter().map(|(r, _, _)| r.state.as_str()).collect();
    let entries: Vec<Option<&str>> = rows.iter().map(|(_, _, e)| *e).collect();
    let queues: Vec<&str> = rows.iter().map(|(r, _, _)| r.task_queue.as_str()).collect();
    let priorities: Vec<i16> = rows.iter().map(|(r, _, _)| r.priority as i16).collect();
    let options: Vec<Option<&str>> = rows.iter().map(|(r, _, _)| r.options.as_deref()).collect();
    let closed: Vec<Option<i64>> = rows.iter().map(|(r, _, _)| r.closed_at).collect();
    let written = tx
        .query(
            &stmt,
            &[
                &run_ids,
                &versions,
                &statuses,
                &dispatch,
                &deadlines,
                &workers,
                &states,
                &entries,
                &queues,
                &priorities,
                &options,
                &closed,
                &(MAX_HISTORY as i32),
            ],
        )
        .await?;
    Ok(written.iter().map(|r| r.get(0)).collect())
}

/// The fairness keys of a queue with waiting attempts (a skip scan).
const QUEUE_KEYS: &str = "WITH RECURSIVE k(key) AS (
        SELECT MIN(fairness_key) FROM executions WHERE task_queue = $1 AND dispatch_at IS NOT NULL
        UNION ALL
        SELECT (SELECT MIN(fairness_key) FROM executions
                WHERE task_queue = $1 AND dispatch_at IS NOT NULL AND fairness_key > k.key)
        FROM k WHERE k.key IS NOT NULL
    ) SELECT key FROM k WHERE key IS NOT NULL LIMIT 1000";

/// Claims up to `limit` dispatchable attempts, in fair order, skipping rows
/// other hosts hold, and starts them.
async fn claim(tx: &Transaction<'_>, c: &ClaimJob, hints: &mut Vec<String>) -> Result<Vec<Committed>, Failed> {
    let keys: Vec<String> =
        tx.query(&tx.prepare_cached(QUEUE_KEYS).await?, &[&c.queue]).await?.iter().map(|r| r.get(0)).collect();
    let heads = tx
        .prepare_cached(&format!(
            "{SELECT} WHERE task_queue = $1 AND fairness_key = $2 AND dispatch_at IS NOT NULL AND dispatch_at <= $3
               AND ($5::text[] IS NULL OR activity_type = ANY($5))
             ORDER BY priority, dispatch_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED"
        ))
        .await?;
    let standing = tx.prepare_cached("SELECT served FROM fairness WHERE task_queue = $1 AND fairness_key = $2").await?;
    let (now, limit) = (c.now as i64, c.limit as i64);
    // One key has nothing to share: its standing is neither read nor kept.
    let several = keys.len() > 1;
    let mut lanes = Vec::with_capacity(keys.len());
    for key in keys {
        let rows = tx.query(&heads, &[&c.queue, &key, &now, &limit, &c.types]).await?;
        let rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let Some(head) = rows.first() else { continue };
        let weight = head.value.fairness.as_ref().map_or(1.0, |f| f.weight);
        let served = match several {
            true => tx.query_opt(&standing, &[&c.queue, &key]).await?.map(|r| r.get::<_, f64>(0)),
            false => None,
        };
        lanes.push(Lane { key, weight, served, rows: rows.into_iter().map(|v| (v.value.priority, v)).collect() });
    }
    let (picked, standing) = fair::interleave(lanes, c.limit);
    if !standing.is_empty() {
        let keep = tx
            .prepare_cached(
                "INSERT INTO fairness (task_queue, fairness_key, served) VALUES ($1, $2, $3)
                 ON CONFLICT (task_queue, fairness_key) DO UPDATE SET served = excluded.served",
            )
            .await?;
        for (key, served) in standing {
            tx.execute(&keep, &[&c.queue, &key, &served]).await?;
        }
    }
    let mut claimed = Vec::with_capacity(picked.len());
    let mut rows = Vec::with_capacity(picked.len());
    for Versioned { mut value, version } in picked {
        let current = c.versions.get(&value.activity_type).map(String::as_str);
        let Ok(change) = value.start(&c.worker, current, c.now) else { continue };
        let transition = Transition::new(change, &value, c.now);
        let entry = encoded_history(transition.history.as_ref())?;
        hints.extend(transition.history.as_ref().map(|h| hint(&value, Some(h))));
        rows.push((Row::new(&value, false)?, version, entry));
        claimed.push(Committed { value, version: version + 1, transition });
    }
    let tried: Vec<(&Row, u64, Option<&str>)> = rows.iter().map(|(r, v, e)| (r, *v, e.as_deref())).collect();
    let written = write_rows(tx, &tried).await?;
    // The rows are locked by this transaction: every one is written.
    claimed.retain(|c| written.contains(&c.value.run_id));
    Ok(claimed)
}

/// The line other hosts receive about a transition, or (no entry) about a
/// heartbeat written (see `listen`).
pub fn hint(e: &Execution, h: Option<&HistoryEntry>) -> String {
    serde_json::json!([
        e.activity_id,
        e.run_id,
        e.task_queue,
        h.map_or(e.attempt, |h| h.attempt),
        h.map_or_else(|| e.last_heartbeat_at.unwrap_or_default(), |h| h.at),
        h.map_or("", |h| h.kind.as_str()),
        e.status.as_str(),
        e.next_deadline(),
        e.dispatchable_at().is_some()
    ])
    .to_string()
}

/// Tells the other hosts what the batch did, when it commits: one NOTIFY
/// per ~7.5 KB of hints, each naming the host it comes from.
async fn notify(tx: &Transaction<'_>, origin: &str, hints: &[String]) -> Result<(), Failed> {
    if hints.is_empty() {
        return Ok(());
    }
    let stmt = tx.prepare_cached("SELECT pg_notify('sluice', $1)").await?;
    let mut payload = String::from(origin);
    for h in hints {
        if payload.len() + h.len() + 1 > MAX_NOTIFY && payload.len() > origin.len() {
            tx.execute(&stmt, &[&payload]).await?;
            payload.truncate(origin.len());
        }
        payload.push('\n');
        payload.push_str(h);
    }
    tx.execute(&stmt, &[&payload]).await?;
    Ok(())
}
