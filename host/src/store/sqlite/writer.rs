//! The group-commit writer: one thread owns the SQLite connection and runs
//! every operation; operations that arrive together share one transaction
//! (and one fsync). Replies go out only after the commit.
//!
//! Durability is pipelined: SQLite commits without fsync (WAL,
//! synchronous=NORMAL) and the WAL file is fsynced before a batch's jobs
//! get their replies. Under load a second thread fsyncs while the writer
//! runs the next batch, one fsync covering every batch committed before
//! it; when nothing else waits, the writer fsyncs itself (no hand-off on
//! an idle host's critical path). A batch that wrote nothing, with nothing
//! committed still unsynced, needs no fsync at all. A job may also ask for
//! its reply at commit (`exec_committed`), before the fsync.
//!
//! Jobs write no savepoints (they cost a copy of every page touched): a
//! job's expected errors (`Conflict`, `BadPageToken`) happen before it
//! writes anything, and any other error aborts the whole batch, whose jobs
//! all get that error and none of whose writes are committed.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

/// Most operations committed together.
const MAX_BATCH: usize = 2048;
/// How long an idle writer looks for its next job before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(300);

trait Job: Send {
    /// Runs inside the batch transaction; the error if it must abort the
    /// batch (a backend failure).
    fn run(&mut self, conn: &Connection) -> Result<(), String>;
    /// Called after the commit (or its failure).
    fn reply(self: Box<Self>, commit: Result<(), String>);
    /// Whether the reply waits for the fsync.
    fn durable(&self) -> bool;
}

struct Op<R, F> {
    durable: bool,
    f: Option<F>,
    result: Option<Result<R, StoreError>>,
    tx: oneshot::Sender<Result<R, StoreError>>,
}

impl<R: Send, F: FnOnce(&Connection) -> Result<R, StoreError> + Send> Job for Op<R, F> {
    fn run(&mut self, conn: &Connection) -> Result<(), String> {
        let f = self.f.take().expect("job runs once");
        let result = f(conn);
        let fatal = match &result {
            Err(StoreError::Backend(e)) => Err(e.clone()),
            _ => Ok(()),
        };
        self.result = Some(result);
        fatal
    }

    fn reply(self: Box<Self>, commit: Result<(), String>) {
        let result = match commit {
            Ok(()) => self.result.expect("job ran"),
            Err(e) => Err(StoreError::Backend(format!("the batch was not committed: {e}"))),
        };
        let _ = self.tx.send(result);
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// `wal` is the database's write-ahead log, fsynced before replies.
    pub fn spawn(conn: Connection, wal: PathBuf) -> Writer {
        let (jobs, rx) = mpsc::channel::<Box<dyn Job>>();
        let (to_sync, synced_rx) = mpsc::channel::<(u64, Vec<Box<dyn Job>>)>();
        let synced = Arc::new(AtomicU64::new(0));
        let wal_file = Durability { wal: wal.clone(), file: None, synced: synced.clone() };
        thread::Builder::new()
            .name("sluice-store".into())
            .spawn(move || run(conn, rx, to_sync, wal_file))
            .expect("cannot spawn the store writer thread");
        thread::Builder::new()
            .name("sluice-fsync".into())
            .spawn(move || sync(Durability { wal, file: None, synced }, synced_rx))
            .expect("cannot spawn the store fsync thread");
        Writer { jobs }
    }

    /// Runs `f` in the next batch; resolves once its batch is committed
    /// and on disk.
    pub async fn exec<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(true, f).await
    }

    /// Runs `f` in the next batch; resolves once its batch is committed,
    /// maybe before it is on disk (a crash may undo it).
    pub async fn exec_committed<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(false, f).await
    }

    async fn submit<R, F>(&self, durable: bool, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(Op { durable, f: Some(f), result: None, tx }))
            .map_err(|_| StoreError::Backend("the store writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Backend("the store writer has stopped".into()))?
    }
}

/// The WAL file, fsynced by whichever thread gets to it, and the number of
/// the last writing batch known to be on disk.
struct Durability {
    wal: PathBuf,
    file: Option<File>,
    synced: Arc<AtomicU64>,
}

impl Durability {
    /// Fsyncs every batch committed so far (`through` is the last one).
    fn sync(&mut self, through: u64) -> Result<(), String> {
        if self.file.is_none() {
            self.file = File::open(&self.wal).ok();
        }
        let started = std::time::Instant::now();
        let result = match &self.file {
            Some(f) => f.sync_data().map_err(|e| format!("fsync of {}: {e}", self.wal.display())),
            None => Err(format!("cannot open {} to fsync it", self.wal.display())),
        };
        crate::metrics::metrics().store_fsync.observe(started.elapsed().as_secs_f64());
        if result.is_ok() {
            self.synced.fetch_max(through, Ordering::AcqRel);
        }
        result
    }
}

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    to_sync: mpsc::Sender<(u64, Vec<Box<dyn Job>>)>,
    mut disk: Durability,
) {
    // How many batches have written something: the number of the last.
    let mut written = 0u64;
    let mut next = None;
    loop {
        let first = match next.take().or_else(|| spin(&rx)) {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut batch = vec![first];
        drain(&rx, &mut batch);
        let changes = conn.total_changes();
        if let Err(e) = run_batch(&conn, &mut batch) {
            reply_all(batch, Err(e));
            continue;
        }
        if conn.total_changes() != changes {
            written += 1;
        }
        let (durable, committed): (Vec<_>, Vec<_>) = batch.into_iter().partition(|j| j.durable());
        reply_all(committed, Ok(()));
        if durable.is_empty() {
            continue;
        }
        if disk.synced.load(Ordering::Acquire) >= written {
            // Everything these jobs read or wrote is on disk already.
            reply_all(durable, Ok(()));
            continue;
        }
        next = rx.try_recv().ok();
        if next.is_none() {
            // Nothing waits: fsync here rather than wake another thread.
            let result = disk.sync(written);
            reply_all(durable, result);
        } else if let Err(mpsc::SendError((_, batch))) = to_sync.send((written, durable)) {
            reply_all(batch, Err("the store's fsync thread has stopped".into()));
        }
    }
}

/// Waits briefly for the next job without sleeping: one activity's jobs
/// (its start, then its outcome after a short guest) follow each other
/// within a few hundred microseconds, and parking the thread and waking it
/// again costs tens of them, more on a virtual machine. Yielding leaves the
/// core to any thread with work.
fn spin(rx: &mpsc::Receiver<Box<dyn Job>>) -> Option<Box<dyn Job>> {
    let until = std::time::Instant::now() + SPIN;
    loop {
        if let Ok(job) = rx.try_recv() {
            return Some(job);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        thread::yield_now();
    }
}

fn reply_all(batch: Vec<Box<dyn Job>>, result: Result<(), String>) {
    for job in batch {
        job.reply(result.clone());
    }
}

/// Makes committed batches durable while the writer goes on, then replies
/// to their jobs.
fn sync(mut disk: Durability, to_sync: mpsc::Receiver<(u64, Vec<Box<dyn Job>>)>) {
    while let Ok(first) = to_sync.recv() {
        let mut batches = vec![first];
        while let Ok(more) = to_sync.try_recv() {
            batches.push(more);
        }
        let through = batches.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let result = disk.sync(through);
        for (_, batch) in batches {
            reply_all(batch, result.clone());
        }
    }
}

/// Runs a transaction-control statement through the statement cache (no
/// re-parsing per batch).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn drain(rx: &mpsc::Receiver<Box<dyn Job>>, batch: &mut Vec<Box<dyn Job>>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    let started = std::time::Instant::now();
    let result = run_batch_inner(conn, batch);
    crate::metrics::metrics().store_commit.observe(started.elapsed().as_secs_f64());
    result
}

fn run_batch_inner(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    control(conn, "BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        if let Err(e) = job.run(conn) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    control(conn, "COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &std::path::Path) -> Writer {
        let path = dir.join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        let mut wal = path.into_os_string();
        wal.push("-wal");
        Writer::spawn(conn, wal.into())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_job_is_answered_once_its_batch_is_committed_whichever_thread_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(dir.path());
        // Many writers at once (batches handed to the fsync thread), some
        // answered at commit, with reads between them (no fsync needed).
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move {
                    let insert = move |c: &Connection| Ok(c.execute("INSERT INTO t VALUES (?1)", [i])?);
                    match i % 3 {
                        0 => w.exec(insert).await,
                        1 => w.exec_committed(insert).await,
                        _ => {
                            w.exec(|c| {
                                Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)).map(|_| 1)?)
                            })
                            .await
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 1);
        }
        let n: i64 = w.exec(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(n, 134, "every insert was committed");
        // One at a time: each fsynced by the writer itself.
        for i in 0..5 {
            w.exec(move |c| Ok(c.execute("INSERT INTO t VALUES (?1)", [i])?)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_failing_job_fails_its_whole_batch_and_nothing_of_it_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(dir.path());
        let bad = w.exec(|c| Ok(c.execute("INSERT INTO missing VALUES (1)", [])?)).await;
        assert!(matches!(bad, Err(StoreError::Backend(m)) if m.contains("no such table: missing")));
        let n: i64 = w.exec(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(n, 0);
    }
}
