//! The group-commit writer: one thread owns the SQLite connection and runs
//! every operation; operations that arrive together share one transaction
//! (and one fsync). Replies go out only after the commit.
//!
//! Durability is pipelined: SQLite commits without fsync (WAL,
//! synchronous=NORMAL) and a second thread fsyncs the WAL file, replying to
//! a batch's jobs only once an fsync that began after its commit is done.
//! The writer meanwhile runs the next batch, and one fsync covers every
//! batch committed before it.
//!
//! Jobs write no savepoints (they cost a copy of every page touched): a
//! job's expected errors (`Conflict`, `BadPageToken`) happen before it
//! writes anything, and any other error aborts the whole batch, whose jobs
//! all get that error and none of whose writes are committed.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

/// Most operations committed together.
const MAX_BATCH: usize = 2048;

trait Job: Send {
    /// Runs inside the batch transaction; the error if it must abort the
    /// batch (a backend failure).
    fn run(&mut self, conn: &Connection) -> Result<(), String>;
    /// Called after the commit (or its failure).
    fn reply(self: Box<Self>, commit: Result<(), String>);
}

struct Op<R, F> {
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
        let (synced, to_sync) = mpsc::channel::<Vec<Box<dyn Job>>>();
        thread::Builder::new()
            .name("sluice-store".into())
            .spawn(move || run(conn, rx, synced))
            .expect("cannot spawn the store writer thread");
        thread::Builder::new()
            .name("sluice-fsync".into())
            .spawn(move || sync(wal, to_sync))
            .expect("cannot spawn the store fsync thread");
        Writer { jobs }
    }

    /// Runs `f` in the next batch; resolves once its batch is committed.
    pub async fn exec<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(Op { f: Some(f), result: None, tx }))
            .map_err(|_| StoreError::Backend("the store writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Backend("the store writer has stopped".into()))?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>, synced: mpsc::Sender<Vec<Box<dyn Job>>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        drain(&rx, &mut batch);
        match run_batch(&conn, &mut batch) {
            Ok(()) => {
                if let Err(mpsc::SendError(batch)) = synced.send(batch) {
                    reply_all(batch, Err("the store's fsync thread has stopped".into()));
                }
            }
            Err(e) => reply_all(batch, Err(e)),
        }
    }
}

fn reply_all(batch: Vec<Box<dyn Job>>, result: Result<(), String>) {
    for job in batch {
        job.reply(result.clone());
    }
}

/// Makes committed batches durable, then replies to their jobs.
fn sync(wal: PathBuf, to_sync: mpsc::Receiver<Vec<Box<dyn Job>>>) {
    let mut file: Option<File> = None;
    while let Ok(first) = to_sync.recv() {
        let mut batches = vec![first];
        while let Ok(more) = to_sync.try_recv() {
            batches.push(more);
        }
        if file.is_none() {
            file = File::open(&wal).ok();
        }
        let result = match &file {
            Some(f) => f.sync_data().map_err(|e| format!("fsync of {}: {e}", wal.display())),
            None => Err(format!("cannot open {} to fsync it", wal.display())),
        };
        for batch in batches {
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
