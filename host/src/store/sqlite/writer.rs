//! The group-commit writer: one thread owns the SQLite connection and runs
//! every operation; operations that arrive together share one transaction
//! (and one fsync). Replies go out only after the commit.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

/// Most operations committed together.
const MAX_BATCH: usize = 2048;

trait Job: Send {
    /// Runs inside the batch transaction; false if it failed (its writes
    /// are rolled back to its savepoint).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Called after the commit (or its failure).
    fn reply(self: Box<Self>, commit: Result<(), String>);
}

struct Op<R, F> {
    f: Option<F>,
    result: Option<Result<R, StoreError>>,
    tx: oneshot::Sender<Result<R, StoreError>>,
}

impl<R: Send, F: FnOnce(&Connection) -> Result<R, StoreError> + Send> Job for Op<R, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        let f = self.f.take().expect("job runs once");
        let result = f(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn reply(self: Box<Self>, commit: Result<(), String>) {
        let result = match commit {
            Ok(()) => self.result.expect("job ran"),
            Err(e) => Err(StoreError::Backend(format!("commit failed: {e}"))),
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
    pub fn spawn(conn: Connection) -> Writer {
        let (jobs, rx) = mpsc::channel::<Box<dyn Job>>();
        thread::Builder::new()
            .name("sluice-store".into())
            .spawn(move || run(conn, rx))
            .expect("cannot spawn the store writer thread");
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

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let commit = run_batch(&conn, &mut batch);
        for job in batch {
            job.reply(commit.clone());
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        let step = (|| -> rusqlite::Result<()> {
            conn.execute_batch("SAVEPOINT op")?;
            if !job.run(conn) {
                conn.execute_batch("ROLLBACK TO op")?;
            }
            conn.execute_batch("RELEASE op")
        })();
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.to_string());
        }
    }
    conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    })
}
